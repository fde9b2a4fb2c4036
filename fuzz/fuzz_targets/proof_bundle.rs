//! A proof bundle, as verify-proof reads it: verify_offline under the v1 fixtures' keyring. Body and checks: `zt_fuzz_bodies::proof::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::proof::bundle(data));
