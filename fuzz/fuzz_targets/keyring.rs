//! A keyring document: from_json, to_json, from_json again. Body and checks: `zt_fuzz_bodies::keyring::keyring`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::keyring::keyring(data));
