//! Keyrings (`zt_core::keyring::Keyring::from_json`): the trust root a person verifying gives.

use zt_core::crypto::PublicKey;
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::time::Timestamp;

use crate::shown::shown;

fn same(a: &KeyEntry, b: &KeyEntry) -> bool {
    a.key_id == b.key_id
        && a.public_key == b.public_key
        && a.not_before == b.not_before
        && a.not_after == b.not_after
        && a.revoked_at == b.revoked_at
        && a.chains == b.chains
}

/// `keyring`: a keyring document. What `from_json` accepts, `to_json` writes back as a
/// document that reads as the same keys (ids, keys, windows, chains); each key's PEM reads as
/// the same key; window checks and chain bindings answer at the window's own edges.
pub fn keyring(data: &[u8]) {
    let Ok(ring) = Keyring::from_json(data) else {
        return;
    };
    let doc = ring.to_json().to_string();
    let back = Keyring::from_json(doc.as_bytes()).unwrap_or_else(|e| {
        panic!(
            "a keyring that reads does not read back from its own document: {e}\ninput: {}\nwritten: {}",
            shown(data),
            shown(doc.as_bytes())
        )
    });
    assert_eq!(back.len(), ring.len());
    for e in ring.entries() {
        let b = back
            .get(&e.key_id)
            .unwrap_or_else(|| panic!("key {:?} lost in the round trip", e.key_id));
        assert!(
            same(e, b),
            "key {:?} changed in the round trip\ninput: {}\nwritten: {}",
            e.key_id,
            shown(data),
            shown(doc.as_bytes())
        );
        let pem = e.public_key.to_pem();
        assert!(PublicKey::from_pem(&pem).is_ok_and(|k| k == e.public_key));
        for t in [e.not_before, e.not_after, e.revoked_at]
            .into_iter()
            .flatten()
        {
            let _ = e.check_window(t);
            let just_before = Timestamp::from_unix_nanos(t.unix_nanos().saturating_sub(1));
            let _ = e.check_window(just_before);
        }
        if let Some(nb) = e.not_before {
            assert!(e
                .check_window(Timestamp::from_unix_nanos(nb.unix_nanos() - 1))
                .is_err());
        }
        if let Some(c) = &e.chains {
            for name in c {
                assert!(e.binds(Some(name)));
            }
            assert!(!e.binds(None));
        }
    }
}
