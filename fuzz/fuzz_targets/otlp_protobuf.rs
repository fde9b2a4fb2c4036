//! OTLP/HTTP protobuf: scan, prefixes, decode, re-encode, the same request as OTLP/JSON. Body and checks: `zt_fuzz_bodies::otlp::protobuf`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::otlp::protobuf(data));
