//! The one validation path from received bytes to store rows: the chain model's per-record
//! check ([`zt_core::chain::inspect`]), then accepted (stored, signature status flagged) or
//! rejected (quarantined with the reason). `import.rs` and the receiver (`server.rs`) both
//! go through here.

use rayon::prelude::*;
use zt_core::chain::SigCheck;
use zt_core::keyring::Keyring;
use zt_core::{Envelope, Profile};
use zt_store::{BatchOutcome, NewRecord, Rejected, Store, StoreError};

/// The outcome of checking one received envelope.
#[derive(Debug)]
pub enum Verdict {
    /// To be stored.
    Accept {
        /// The envelope.
        envelope: Box<Envelope>,
        /// Profile its hash recomputes under.
        profile: Profile,
        /// The signature check under the receiver's keyring.
        signature: SigCheck,
    },
    /// To be quarantined.
    Reject {
        /// Why.
        reason: String,
    },
}

/// The validation path.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'k> {
    keyring: &'k Keyring,
}

impl<'k> Pipeline<'k> {
    /// A pipeline checking signatures against `keyring`.
    pub fn new(keyring: &'k Keyring) -> Self {
        Self { keyring }
    }

    /// Checks one envelope.
    pub fn check(&self, raw: &[u8]) -> Verdict {
        match zt_core::chain::inspect(raw, self.keyring, None) {
            Err(e) => Verdict::Reject {
                reason: e.summary(),
            },
            Ok(ins) => match ins.matched {
                None => Verdict::Reject {
                    reason: format!(
                        "current_hash {} does not recompute under any profile",
                        ins.envelope.current_hash.short()
                    ),
                },
                Some(profile) => Verdict::Accept {
                    signature: ins.signature,
                    envelope: Box::new(ins.envelope),
                    profile,
                },
            },
        }
    }

    /// Checks a batch in parallel and stores it in one transaction.
    pub fn ingest(
        &self,
        store: &mut Store,
        batch: &[Vec<u8>],
        source: &str,
    ) -> Result<BatchOutcome, StoreError> {
        let verdicts: Vec<Verdict> = batch.par_iter().map(|raw| self.check(raw)).collect();
        let mut rows = Rows::default();
        rows.add(batch, &verdicts, &[], source, None, zt_store::now_ms());
        store.insert_batch(&rows.accepted, &rows.rejected)
    }
}

/// Store rows made from checked envelopes: accepted records and rejections for quarantine.
/// Shared by [`Pipeline::ingest`] and the receiver's group commit (`server.rs`).
#[derive(Debug, Default)]
pub(crate) struct Rows<'a> {
    pub(crate) accepted: Vec<NewRecord<'a>>,
    pub(crate) rejected: Vec<Rejected<'a>>,
}

/// What one request's envelopes came to: how many were rejected, and the first reasons.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    pub(crate) count: u64,
    pub(crate) first_reasons: Vec<String>,
}

impl<'a> Rows<'a> {
    /// Adds envelopes with their verdicts, and envelope-marked records that were unusable
    /// before any check.
    pub(crate) fn add(
        &mut self,
        raws: &'a [Vec<u8>],
        verdicts: &'a [Verdict],
        unusable: &'a [(Vec<u8>, String)],
        source: &'a str,
        sender: Option<&'a str>,
        now: i64,
    ) -> Rejections {
        let mut out = Rejections::default();
        let mut reject = |raw: &'a [u8], reason: &'a str| {
            out.count += 1;
            if out.first_reasons.len() < 3 {
                out.first_reasons.push(reason.to_owned());
            }
            self.rejected.push(Rejected {
                raw,
                reason,
                source,
                sender,
                received_at_ms: now,
            });
        };
        for (raw, v) in raws.iter().zip(verdicts) {
            match v {
                Verdict::Accept {
                    envelope,
                    profile,
                    signature,
                } => self.accepted.push(NewRecord {
                    raw,
                    envelope,
                    profile: *profile,
                    status: signature.status(),
                    source,
                    sender,
                    received_at_ms: now,
                }),
                Verdict::Reject { reason } => reject(raw, reason),
            }
        }
        for (raw, reason) in unusable {
            reject(raw, reason);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(file: &str, i: usize) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/interop/zt-infra-full")
            .join(file);
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .nth(i)
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    fn ring() -> Keyring {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/interop/zt-infra-full/keyring.json");
        Keyring::from_json(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn verdicts() {
        let ring = ring();
        let p = Pipeline::new(&ring);
        assert!(matches!(
            p.check(&line("valid.jsonl", 0)),
            Verdict::Accept {
                signature: SigCheck::Verified,
                ..
            }
        ));
        // evidence with an unknown key is accepted and flagged, never dropped
        assert!(matches!(
            p.check(&line("unknown-key.jsonl", 11)),
            Verdict::Accept {
                signature: SigCheck::UnknownKey,
                ..
            }
        ));
        assert!(matches!(
            p.check(&line("forged-signature.jsonl", 9)),
            Verdict::Accept {
                signature: SigCheck::Bad(_),
                ..
            }
        ));
        match p.check(&line("edited-decision.jsonl", 4)) {
            Verdict::Reject { reason } => {
                assert!(reason.contains("does not recompute"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        match p.check(b"{\"actor\":1}") {
            Verdict::Reject { reason } => assert!(reason.contains("actor"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ingest_stores_and_quarantines_in_one_batch() {
        let ring = ring();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("i.db")).unwrap();
        let batch = vec![
            line("valid.jsonl", 0),
            line("valid.jsonl", 1),
            b"garbage".to_vec(),
            line("valid.jsonl", 0),
        ];
        let out = Pipeline::new(&ring)
            .ingest(&mut store, &batch, "test")
            .unwrap();
        assert_eq!((out.inserted, out.duplicates, out.quarantined), (2, 1, 1));
    }
}
