//! Proof bundles (`zt_anchor::proof`): what `zt-audit verify-proof` reads, checked offline
//! under a keyring the person verifying gives.

use std::sync::OnceLock;

use zt_anchor::proof::{verify_offline, ProofBundle};
use zt_core::chain::inspect;
use zt_core::keyring::Keyring;

use crate::shown::shown;

/// The keyring the v1 fixtures are signed under (`fixtures/v1/keyring.json`).
pub const V1_KEYRING: &str = include_str!("../../../fixtures/v1/keyring.json");

fn ring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        Keyring::from_json(V1_KEYRING.as_bytes())
            .unwrap_or_else(|e| panic!("fixtures/v1/keyring.json: {e}"))
    })
}

/// `proof_bundle`: a bundle's JSON, read as `verify-proof` reads it (`serde_json` into
/// `ProofBundle`), then `verify_offline` under the v1 fixtures' keyring.
///
/// - What verifies names the bundle's record (its hash as read), counts one record per text
///   and one signature per record, and names only keys the keyring holds.
/// - The bundle written back out (`serde_json`) reads as the same bundle and verifies the
///   same.
pub fn bundle(data: &[u8]) {
    let Ok(b) = serde_json::from_slice::<ProofBundle>(data) else {
        return;
    };
    let checked = verify_offline(&b, ring());
    let text = serde_json::to_string(&b)
        .unwrap_or_else(|e| panic!("a bundle that read does not write: {e}"));
    let back: ProofBundle = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a written bundle does not read: {e}"));
    assert_eq!(back, b, "a bundle changed through its JSON");
    let again = verify_offline(&back, ring());
    assert_eq!(
        checked.as_ref().ok(),
        again.as_ref().ok(),
        "a bundle and its re-written self check differently"
    );
    let Ok(c) = checked else { return };
    let first = inspect(b.record.as_bytes(), ring(), None)
        .unwrap_or_else(|e| panic!("a verified bundle's record does not read: {e}"));
    assert_eq!(c.record, first.envelope.current_hash);
    assert_eq!(c.records, 1 + b.links.len());
    assert_eq!(c.signatures, c.records);
    for k in &c.keys {
        assert!(
            ring().get(k).is_some(),
            "a verified bundle names key {k:?}, which the keyring does not hold\ninput: {}",
            shown(data)
        );
    }
}
