//! The evidence store shared by ingest, verifier, anchor and browser: a SQLite file (WAL; the
//! embedded default) or a PostgreSQL database that receivers and control planes on many hosts
//! write at once ([`Location`]; `docs/postgres.md`). Both engines run the same queries
//! (`sql.rs`, the only module that names an engine's types) and the same placement
//! (`graph.rs`, `link.rs`).
//!
//! Every envelope is kept **byte for byte as received** (`raw`), beside extracted columns for
//! browsing. Nothing is dropped:
//! - the same envelope again (same `current_hash`) is a no-op: exporters retry;
//! - a record whose predecessor has not arrived is stored with no chain yet (*waiting*) and is
//!   linked, with its own successors, when the predecessor comes;
//! - a second record claiming a place the main line already holds (a predecessor's
//!   successor, a v1 chain's start) is stored too, off the main line, and flagged `fork`:
//!   the flag records the chain model's verdict (a [`Break::Fork`](zt_core::chain::Break) from
//!   [`zt_core::chain::place`]), whatever the arrival order (a claimant that came first but
//!   does not count is flagged when the genuine record takes the place); the main-line record
//!   is never flagged;
//! - envelopes that cannot be accepted (unreadable, hash does not recompute) go to
//!   `quarantine` with the reason: they are evidence of something.
//!
//! Chains: a v1 record names its chain (`chain_id`, position = `seq`). A lineage record's
//! chain is named after its genesis record (`lineage-` and 16 hex digits of that record's
//! hash), position = predecessor's position + 1.
//!
//! Trust: where a record goes (main line, branch, waiting) is the chain model's decision
//! ([`zt_core::chain`]), asked in `link.rs` and recorded as each record's [`Line`]. Only
//! records that count under the store's [`TrustPolicy`](zt_core::chain::TrustPolicy)
//! (signature verified, or unsigned in a chain configured to accept them) can be on a main
//! line; the rest are kept as evidence, off it. Copies of one record (same
//! `current_hash`, other bytes: the signature and a few members are outside the hash) are all
//! kept; a verified copy supersedes an unverified one as the record, the other bytes stay in
//! `record_copies`.
//!
//! Durability: `synchronous=FULL` by default (PostgreSQL: `synchronous_commit = on`), so a
//! batch that [`Store::insert_batch`] returned from survives a power cut; one transaction per
//! batch (group commit).
//!
//! ```no_run
//! use zt_store::Store;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(std::path::Path::new("audit.db"))?;
//! for c in store.chains()? {
//!     println!("{} {} records", c.chain, c.records);
//! }
//! # Ok(()) }
//! ```

// First: its `args!` macro is used by the modules below.
#[macro_use]
mod sql;

mod anchor;
mod browse;
mod error;
mod graph;
mod link;
mod location;
mod pgschema;
mod read;
mod schema;
mod scratch;
mod store;
#[cfg(test)]
mod testdb;
mod types;
mod write;

pub use anchor::{EpochRow, EpochState, FoundRecord, LeafRow, LineRecord};
pub use browse::{ChainOverview, DecisionRow, Filter, Page, RecordDetail, ScanStep};
pub use error::StoreError;
pub use location::Location;
pub use read::{JsonlReader, Selection};
pub use scratch::ScratchDatabase;
pub use sql::{hash_of, postgres_statements, DbError};
pub use store::Store;
pub use types::{
    now_ms, BatchOutcome, BranchId, ChainCursor, ChainRow, Line, NewRecord, PostgresStats, RawRow,
    Rejected,
};

#[cfg(test)]
mod tests {
    use std::path::Path;

    use zt_core::chain::SigStatus;
    use zt_core::{Envelope, Hash32};

    use super::*;

    fn lines(rel: &str) -> Vec<Vec<u8>> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(rel);
        std::fs::read(p)
            .unwrap()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn put(store: &mut Store, raws: &[Vec<u8>]) -> BatchOutcome {
        crate::testdb::insert(
            store,
            raws.iter().map(|r| (r.as_slice(), SigStatus::Verified)),
        )
    }

    fn positions(store: &Store, chain: &str) -> Vec<i64> {
        store
            .page_chain(chain, None, 1000)
            .unwrap()
            .into_iter()
            .map(|r| r.position.unwrap())
            .collect()
    }

    #[test]
    fn head_is_the_main_line_tip() {
        for (_d, mut s) in crate::testdb::stores() {
            assert_eq!(s.head("nope").unwrap(), None);
            let valid = lines("interop/zt-infra-full/valid.jsonl");
            put(&mut s, &valid);
            let chain = s.chains().unwrap()[0].chain.clone();
            let last = Envelope::from_json(valid.last().unwrap()).unwrap();
            assert_eq!(s.head(&chain).unwrap(), Some((11, last.current_hash)));
        }
    }

    #[test]
    fn in_order_then_duplicates_are_no_ops() {
        for (_d, mut s) in crate::testdb::stores() {
            let valid = lines("interop/zt-infra-full/valid.jsonl");
            let o = put(&mut s, &valid);
            assert_eq!(
                (o.inserted, o.duplicates, o.forks, o.waiting),
                (12, 0, 0, 0)
            );
            assert_eq!(s.count_records().unwrap(), 12);
            let again = put(&mut s, &valid);
            assert_eq!(again.duplicates, 12);
            assert_eq!(s.count_records().unwrap(), 12);
            let chains = s.chains().unwrap();
            assert_eq!(chains.len(), 1);
            assert!(chains[0].chain.starts_with("lineage-f2cd5d9e431f4aa4"));
            assert_eq!(positions(&s, &chains[0].chain), (0..12).collect::<Vec<_>>());
            // stored byte for byte
            assert_eq!(
                s.page_chain(&chains[0].chain, None, 1).unwrap()[0].raw,
                valid[0]
            );
        }
    }

    #[test]
    fn out_of_order_records_wait_then_link() {
        for (_d, mut s) in crate::testdb::stores() {
            let mut valid = lines("interop/zt-infra-full/valid.jsonl");
            valid.reverse();
            // one at a time, newest first: everything waits until the genesis arrives
            for (i, r) in valid.iter().enumerate() {
                let o = put(&mut s, std::slice::from_ref(r));
                if i < 11 {
                    assert_eq!(o.waiting, 1, "record {i}");
                } else {
                    assert_eq!(o.linked, 11);
                }
            }
            assert_eq!(s.count_waiting().unwrap(), 0);
            let c = &s.chains().unwrap()[0];
            assert_eq!(positions(&s, &c.chain), (0..12).collect::<Vec<_>>());
        }
    }

    #[test]
    fn forks_are_stored_and_flagged_never_overwritten() {
        for (_d, mut s) in crate::testdb::stores() {
            // One fork rule, the chain model's: the later claimant of a place the main line
            // holds is the fork; the record on the main line is not.
            let o = put(&mut s, &lines("interop/zt-infra-full/fork.jsonl"));
            assert_eq!(o.inserted, 9);
            assert_eq!(o.forks, 1);
            assert_eq!(s.count_forks().unwrap(), 1);
            let v1 = lines("v1/fork.jsonl");
            let o = put(&mut s, &v1);
            assert_eq!(o.forks, 1, "same predecessor and same seq: the later one");
        }
    }

    /// A store written under the old rule (both claimants flagged) opens with the model's
    /// flags: the main-line record and waiting ones are not forks.
    #[test]
    fn migration_6_clears_fork_flags_the_model_never_sets() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.db");
        {
            let mut s = Store::open(&path).unwrap();
            put(&mut s, &lines("v1/fork.jsonl"));
            let mut c = s.conn.borrow_mut();
            c.batch("UPDATE records SET fork = 1; PRAGMA user_version = 5")
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.count_forks().unwrap(), 1, "only the later claimant");
        assert_eq!(
            s.schema_version().unwrap(),
            crate::schema::MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn v1_chains_and_lineage_restarts_are_separate_chains() {
        for (_d, mut s) in crate::testdb::stores() {
            put(&mut s, &lines("v1/valid.jsonl"));
            let names: Vec<String> = s.chains().unwrap().into_iter().map(|c| c.chain).collect();
            assert_eq!(names, ["cp-east", "cp-west"]);
            assert_eq!(
                s.count_forks().unwrap(),
                0,
                "both chains start at the zero hash: not a fork"
            );
            assert_eq!(positions(&s, "cp-east"), (0..6).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_sender_is_kept_beside_the_record_and_in_quarantine() {
        for (_d, mut s) in crate::testdb::stores() {
            let raws = lines("interop/zt-infra-full/valid.jsonl");
            let env = Envelope::from_json(&raws[0]).unwrap();
            let spiffe = "spiffe://td.test/exporter";
            s.insert_batch(
                &[NewRecord {
                    raw: &raws[0],
                    envelope: &env,
                    profile: env.detect_profile().unwrap(),
                    status: SigStatus::Verified,
                    source: "otlp",
                    sender: Some(spiffe),
                    received_at_ms: 0,
                }],
                &[Rejected {
                    raw: b"not json",
                    reason: "not JSON",
                    source: "otlp",
                    sender: Some(spiffe),
                    received_at_ms: 0,
                }],
            )
            .unwrap();
            assert_eq!(
                s.sender(&env.current_hash).unwrap().as_deref(),
                Some(spiffe)
            );
            let q: Option<String> = s
                .conn
                .borrow_mut()
                .query_one("SELECT sender FROM quarantine", &[])
                .unwrap()
                .opt_text(0)
                .unwrap();
            assert_eq!(q.as_deref(), Some(spiffe));
            // not part of the record: the verifier reads the same bytes
            assert_eq!(s.sender(&Hash32([7; 32])).unwrap(), None);
        }
    }

    #[test]
    fn quarantine_keeps_bytes_and_reason() {
        for (_d, mut s) in crate::testdb::stores() {
            let o = s
                .insert_batch(
                    &[],
                    &[Rejected {
                        raw: b"not json",
                        reason: "not JSON",
                        source: "test",
                        sender: None,
                        received_at_ms: 1,
                    }],
                )
                .unwrap();
            assert_eq!(o.quarantined, 1);
            let again = s
                .insert_batch(
                    &[],
                    &[Rejected {
                        raw: b"not json",
                        reason: "not JSON",
                        source: "retry",
                        sender: None,
                        received_at_ms: 2,
                    }],
                )
                .unwrap();
            assert_eq!(
                (again.quarantined, again.duplicates),
                (0, 1),
                "a retry is not a second row"
            );
            let q = s.page_quarantined(0, 10).unwrap();
            assert_eq!(
                (q[0].0.raw.as_slice(), q[0].1.as_str()),
                (&b"not json"[..], "not JSON")
            );
        }
    }

    #[test]
    fn jsonl_reader_pages_through_a_chain() {
        for (_d, mut s) in crate::testdb::stores() {
            let valid = lines("v1/valid.jsonl");
            put(&mut s, &valid);
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut s.jsonl(Selection::Chain("cp-west".into())),
                &mut text,
            )
            .unwrap();
            let got: Vec<&str> = text.lines().collect();
            let want: Vec<String> = valid
                .iter()
                .skip(1)
                .step_by(2)
                .map(|l| String::from_utf8(l.clone()).unwrap())
                .collect();
            assert_eq!(got, want);
        }
    }

    /// ARCHITECTURE.md's rule, checked: `sql.rs` is the only module that names an engine's
    /// types (SQLite's, PostgreSQL's, the PostgreSQL TLS connector).
    #[test]
    fn only_sql_rs_names_an_engine() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "sql.rs" || !name.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Spelled in halves, so this file does not name them either.
            for [a, b] in [
                ["rus", "qlite"],
                ["postgres", "::"],
                ["tokio_", "postgres"],
                ["rus", "tls"],
            ] {
                let engine = format!("{a}{b}");
                assert!(!text.contains(&engine), "{name} names `{engine}`");
            }
            checked += 1;
        }
        assert!(checked > 10, "{checked}");
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let mut s = Store::open(&path).unwrap();
            put(&mut s, &lines("interop/zt-infra-full/valid.jsonl"));
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.count_records().unwrap(), 12);
    }

    /// A reader in a snapshot does not see what a writer commits meanwhile; after it, it does.
    #[test]
    fn a_snapshot_is_one_moment() {
        for (guard, mut writer) in crate::testdb::stores() {
            let valid = lines("v1/valid.jsonl");
            put(&mut writer, &valid[..4]);
            let reader = match &guard {
                crate::testdb::Guard::Dir(d) => Store::open(&d.path().join("t.db")).unwrap(),
                crate::testdb::Guard::Pg(db) => Store::open_read_only(db.location()).unwrap(),
            };
            let (before, during) = reader
                .in_snapshot(|| {
                    let before = reader.count_records().unwrap();
                    put(&mut writer, &valid[4..]);
                    (before, reader.count_records().unwrap())
                })
                .unwrap();
            assert_eq!((before, during), (4, 4));
            assert_eq!(reader.count_records().unwrap(), valid.len() as u64);
        }
    }
}
