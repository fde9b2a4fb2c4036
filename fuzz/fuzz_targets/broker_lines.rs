//! The broker's request and answer lines and the capability status it reads. Body and checks: `zt_fuzz_bodies::broker::lines`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::broker::lines(data));
