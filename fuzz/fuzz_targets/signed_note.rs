//! Signed notes, verifier keys and checkpoints. Body and checks:
//! `zt_fuzz_bodies::note::signed_note`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::note::signed_note(data));
