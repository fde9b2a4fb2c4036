//! One record: envelope, every profile's hash, RFC 8785 round trip, the answer shape. Body and checks: `zt_fuzz_bodies::record::parse_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::record::parse_record(data));
