//! The JSON Schemas of docs/schema against the Rust readers and writers. Body and checks: `zt_fuzz_bodies::schema::schemas`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::schema::schemas(data));
