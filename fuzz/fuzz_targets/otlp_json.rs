//! OTLP/JSON: estimate, then decode. Body and checks: `zt_fuzz_bodies::otlp::json`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::otlp::json(data));
