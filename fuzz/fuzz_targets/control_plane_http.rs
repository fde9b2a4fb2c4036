//! A control plane route body through the real server (first byte: the route). Body and checks: `zt_fuzz_bodies::control_plane::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| zt_fuzz_bodies::control_plane::http(data));
