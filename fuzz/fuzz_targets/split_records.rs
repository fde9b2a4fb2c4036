//! The record splitter over a 1..=16-byte read buffer. Body and checks: `zt_fuzz_bodies::record::split_records`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::record::split_records(data));
