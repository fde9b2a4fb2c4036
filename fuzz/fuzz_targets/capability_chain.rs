//! A token built link by link from the input: verify accepts exactly the narrowing chains. Body and checks: `zt_fuzz_bodies::capability::chain`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::capability::chain(data));
