//! A capability token's text (or the JSON inside it): claims, verify, attenuate. Body and checks: `zt_fuzz_bodies::capability::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::capability::token(data));
