//! The whole verifier over one stream, empty keyring. Body and checks: `zt_fuzz_bodies::record::verify_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::record::verify_stream(data));
