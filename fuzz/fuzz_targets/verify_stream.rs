//! The whole verifier over one input stream, with an empty keyring and default options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::keyring::Keyring;
use zt_verifier::{Options, Verifier};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::new();
    let mut v = Verifier::new(&ring, Options::default());
    v.verify_reader("fuzz", std::io::BufReader::new(data), &mut |_| {})
        .expect("reading from a slice cannot fail");
    let r = v.finish();
    assert!(!r.ok || r.records > 0, "ok report with no records: {r:?}");
});
