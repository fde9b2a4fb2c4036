//! One record: envelope parsing, every profile's hash, profile detection, and the
//! RFC 8785 round trip (canonical form re-parses to a value with the same canonical form).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_core::envelope::Envelope;
use zt_core::json::{canonicalize, parse};
use zt_core::Profile;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::from_json(data) {
        for p in Profile::ALL {
            let _ = env.compute_hash(p);
        }
        let _ = env.detect_profile();
    }

    if let Ok(v) = parse(data) {
        let once = canonicalize(&v);
        let reparsed = match parse(&once) {
            Ok(r) => r,
            Err(e) => panic!(
                "canonical form does not re-parse: {e}\ninput: {:?}\ncanonical: {:?}",
                String::from_utf8_lossy(data),
                String::from_utf8_lossy(&once)
            ),
        };
        let twice = canonicalize(&reparsed);
        assert!(
            once == twice,
            "canonicalization is not a fixed point\ninput: {:?}\nonce:  {:?}\ntwice: {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&once),
            String::from_utf8_lossy(&twice)
        );
    }
});
