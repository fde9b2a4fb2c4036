//! The keyring: which keys may sign, and when.
//!
//! File format (JSON): `{"keys":[{"key_id": "...", "public_key_pem": "-----BEGIN PUBLIC KEY-----...",
//! "not_before": "RFC 3339"?, "not_after": "RFC 3339"?, "revoked_at": "RFC 3339"?,
//! "chains": ["cp-east", "cp-east.admin"]?}]}`.
//!
//! `chains` binds a key to the v1 chains it signs: a record of any other chain (or a lineage
//! record, which names none) signed with it does not count, whatever its signature
//! ([`KeyEntry::binds`]). Without `chains` a key may sign any chain, as keyrings did before the
//! member existed; a report says when a keyring binds no key.
//!
//! A record signed at time `t` (its own `timestamp`) is inside its key's window when
//! `not_before <= t < not_after` and `t < revoked_at`. Revocation does not void signatures made
//! before it; a key holder who back-dates records is what anchoring catches.

use std::collections::HashMap;

use serde::Deserialize;

use crate::crypto::PublicKey;
use crate::error::KeyringError;
use crate::time::Timestamp;

/// One key and its validity window.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The id records name in `kms_signature.key_id`.
    pub key_id: String,
    /// The key.
    pub public_key: PublicKey,
    /// Not valid before this instant.
    pub not_before: Option<Timestamp>,
    /// Not valid from this instant on.
    pub not_after: Option<Timestamp>,
    /// Revoked from this instant on.
    pub revoked_at: Option<Timestamp>,
    /// The v1 chains it signs; `None`: any.
    pub chains: Option<Vec<String>>,
}

/// Why a key was not valid when a record was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowViolation {
    /// Signed before `not_before`.
    NotYetValid(Timestamp),
    /// Signed at or after `not_after`.
    Expired(Timestamp),
    /// Signed at or after `revoked_at`.
    Revoked(Timestamp),
}

impl std::fmt::Display for WindowViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotYetValid(t) => write!(f, "key not valid before {t}"),
            Self::Expired(t) => write!(f, "key expired at {t}"),
            Self::Revoked(t) => write!(f, "key revoked at {t}"),
        }
    }
}

impl KeyEntry {
    /// A key without a window.
    pub fn new(key_id: impl Into<String>, public_key: PublicKey) -> Self {
        Self {
            key_id: key_id.into(),
            public_key,
            not_before: None,
            not_after: None,
            revoked_at: None,
            chains: None,
        }
    }

    /// Binds the key to these chains only.
    #[must_use]
    pub fn bound_to(mut self, chains: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut c: Vec<String> = chains.into_iter().map(Into::into).collect();
        c.sort();
        c.dedup();
        self.chains = Some(c);
        self
    }

    /// Whether this key may sign a record of `chain` (a v1 `chain_id`; `None` for a lineage
    /// record): always without `chains`, else only a chain it lists.
    pub fn binds(&self, chain: Option<&str>) -> bool {
        match (&self.chains, chain) {
            (None, _) => true,
            (Some(list), Some(c)) => list.iter().any(|x| x == c),
            (Some(_), None) => false,
        }
    }

    /// Whether the key was valid at `t`.
    pub fn check_window(&self, t: Timestamp) -> Result<(), WindowViolation> {
        if let Some(nb) = self.not_before {
            if t < nb {
                return Err(WindowViolation::NotYetValid(nb));
            }
        }
        if let Some(r) = self.revoked_at {
            if t >= r {
                return Err(WindowViolation::Revoked(r));
            }
        }
        if let Some(na) = self.not_after {
            if t >= na {
                return Err(WindowViolation::Expired(na));
            }
        }
        Ok(())
    }

    /// The keyring-file JSON of this entry.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("key_id".into(), self.key_id.clone().into());
        m.insert("public_key_pem".into(), self.public_key.to_pem().into());
        for (name, t) in [
            ("not_before", self.not_before),
            ("not_after", self.not_after),
            ("revoked_at", self.revoked_at),
        ] {
            if let Some(t) = t {
                m.insert(name.into(), t.to_string().into());
            }
        }
        if let Some(c) = &self.chains {
            m.insert("chains".into(), c.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

/// Keys by id.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: HashMap<String, KeyEntry>,
}

#[derive(Deserialize)]
struct FileFormat {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFormat {
    key_id: String,
    public_key_pem: String,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    revoked_at: Option<String>,
    #[serde(default)]
    chains: Option<Vec<String>>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a keyring document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyringError> {
        let doc: FileFormat = serde_json::from_slice(bytes).map_err(|e| KeyringError::Format {
            reason: e.to_string(),
        })?;
        let mut ring = Self::new();
        for (index, raw) in doc.keys.into_iter().enumerate() {
            let key_id = raw
                .get("key_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let err = |reason: String| KeyringError::Entry {
                index,
                key_id: key_id.clone(),
                reason,
            };
            let e: EntryFormat = serde_json::from_value(raw).map_err(|e| err(e.to_string()))?;
            if e.key_id.is_empty() {
                return Err(err("key_id is empty".into()));
            }
            let public_key =
                PublicKey::from_pem(&e.public_key_pem).map_err(|x| err(x.to_string()))?;
            let time = |name: &str, v: Option<String>| -> Result<Option<Timestamp>, KeyringError> {
                v.map(|s| {
                    Timestamp::parse_rfc3339(&s)
                        .ok_or_else(|| err(format!("{name} {s:?} is not an RFC 3339 date-time")))
                })
                .transpose()
            };
            if let Some(c) = &e.chains {
                if c.is_empty() || c.iter().any(String::is_empty) {
                    return Err(err(
                        "chains must name at least one chain, none empty (leave the member out to let the key sign any chain)".into(),
                    ));
                }
            }
            let mut entry = KeyEntry {
                key_id: e.key_id,
                public_key,
                not_before: time("not_before", e.not_before)?,
                not_after: time("not_after", e.not_after)?,
                revoked_at: time("revoked_at", e.revoked_at)?,
                chains: None,
            };
            if let Some(c) = e.chains {
                entry = entry.bound_to(c);
            }
            ring.insert(entry)?;
        }
        Ok(ring)
    }

    /// Adds a key. The same id twice is allowed only for the same key (the later window wins).
    pub fn insert(&mut self, entry: KeyEntry) -> Result<(), KeyringError> {
        if let Some(old) = self.keys.get(&entry.key_id) {
            if old.public_key != entry.public_key {
                return Err(KeyringError::Conflict {
                    key_id: entry.key_id,
                });
            }
        }
        self.keys.insert(entry.key_id.clone(), entry);
        Ok(())
    }

    /// The key called `key_id`.
    pub fn get(&self, key_id: &str) -> Option<&KeyEntry> {
        self.keys.get(key_id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All keys, sorted by id.
    pub fn entries(&self) -> Vec<&KeyEntry> {
        let mut v: Vec<_> = self.keys.values().collect();
        v.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        v
    }

    /// Whether some key is bound to chains (a keyring where none is lets any key sign any
    /// chain, which a report says).
    pub fn binds_chains(&self) -> bool {
        self.keys.values().any(|k| k.chains.is_some())
    }

    /// The keyring document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.entries().iter().map(|e| e.to_json()).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    #[test]
    fn chains_bind_a_key_and_round_trip() {
        let pk = SigningKey::generate().public_key();
        let any = KeyEntry::new("k", pk.clone());
        assert!(any.binds(Some("cp-b")) && any.binds(None));
        let bound = KeyEntry::new("k", pk).bound_to(["cp-a.admin", "cp-a"]);
        assert!(bound.binds(Some("cp-a")) && bound.binds(Some("cp-a.admin")));
        assert!(!bound.binds(Some("cp-b")) && !bound.binds(None));
        let mut ring = Keyring::new();
        ring.insert(bound).unwrap();
        assert!(ring.binds_chains());
        let back = Keyring::from_json(ring.to_json().to_string().as_bytes()).unwrap();
        assert_eq!(
            back.get("k").unwrap().chains.as_deref(),
            Some(&["cp-a".to_owned(), "cp-a.admin".to_owned()][..])
        );
        let pem = SigningKey::generate().public_key().to_pem();
        for bad in [
            serde_json::json!([]),
            serde_json::json!([""]),
            serde_json::json!("cp-a"),
        ] {
            let doc = serde_json::json!({"keys": [{"key_id": "k", "public_key_pem": pem, "chains": bad}]});
            assert!(
                Keyring::from_json(doc.to_string().as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn windows() {
        let pk = SigningKey::generate().public_key();
        let t = |s| Timestamp::parse_rfc3339(s).unwrap();
        let mut e = KeyEntry::new("k", pk);
        e.not_before = Some(t("2026-01-01T00:00:00Z"));
        e.not_after = Some(t("2027-01-01T00:00:00Z"));
        e.revoked_at = Some(t("2026-06-01T00:00:00Z"));
        assert!(e.check_window(t("2026-03-01T00:00:00Z")).is_ok());
        assert!(matches!(
            e.check_window(t("2025-12-31T23:59:59Z")),
            Err(WindowViolation::NotYetValid(_))
        ));
        assert!(matches!(
            e.check_window(t("2026-06-01T00:00:00Z")),
            Err(WindowViolation::Revoked(_))
        ));
        e.revoked_at = None;
        assert!(matches!(
            e.check_window(t("2027-01-01T00:00:00Z")),
            Err(WindowViolation::Expired(_))
        ));
    }

    #[test]
    fn file_round_trip_and_errors() {
        let pk = SigningKey::generate().public_key();
        let mut ring = Keyring::new();
        let mut e = KeyEntry::new("a", pk.clone());
        e.not_after = Timestamp::parse_rfc3339("2030-01-01T00:00:00Z");
        ring.insert(e).unwrap();
        let doc = serde_json::to_string(&ring.to_json()).unwrap();
        let back = Keyring::from_json(doc.as_bytes()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(
            back.get("a").unwrap().not_after,
            ring.get("a").unwrap().not_after
        );

        assert!(matches!(
            Keyring::from_json(b"[]"),
            Err(KeyringError::Format { .. })
        ));
        let bad = r#"{"keys":[{"key_id":"x","public_key_pem":"nope"}]}"#;
        let err = Keyring::from_json(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("entry 0 (key_id \"x\")"), "{err}");
        let bad_time = format!(
            r#"{{"keys":[{{"key_id":"x","public_key_pem":{:?},"not_after":"soon"}}]}}"#,
            pk.to_pem()
        );
        assert!(Keyring::from_json(bad_time.as_bytes()).is_err());
        let other = SigningKey::generate().public_key();
        assert!(matches!(
            ring.insert(KeyEntry::new("a", other)),
            Err(KeyringError::Conflict { .. })
        ));
    }

    #[test]
    fn interop_keyring_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/interop/zt-infra-full/keyring.json"
        );
        let ring = Keyring::from_json(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(ring.len(), 2);
    }
}
