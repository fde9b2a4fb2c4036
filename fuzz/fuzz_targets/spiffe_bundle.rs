//! SPIFFE trust bundles and IDs. Body and checks: `zt_fuzz_bodies::spiffe::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::spiffe::bundle(data));
