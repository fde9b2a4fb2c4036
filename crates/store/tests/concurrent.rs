//! Many writers, one PostgreSQL store: four connections insert overlapping, shuffled,
//! duplicated batches of the same chains at once (v1 chains, a lineage chain, forgeries and a
//! fork), and the store ends exactly as one SQLite store fed everything by one writer does.
//!
//! Needs a PostgreSQL server: `ZT_TEST_POSTGRES` (scripts/test.sh starts one with
//! scripts/postgres.sh). Without it the test says so and checks SQLite alone, unless
//! `ZT_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;
use std::path::Path;

use zt_core::chain::SigStatus;
use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::{Envelope, Hash32};
use zt_store::{Location, NewRecord, ScratchDatabase, Store};
use zt_testkit::keys::shuffle;

/// One envelope to store: its text and the status a receiver's keyring would give it.
#[derive(Debug, Clone)]
struct Item {
    json: String,
    status: SigStatus,
}

fn v1(key: &SigningKey, chain: &str, seq: u64, prev: Hash32, reason: &str) -> (String, Hash32) {
    let s = V1Draft {
        chain_id: chain.into(),
        seq,
        actor: format!("agent-{}", seq % 3),
        action: "x.y".into(),
        resource: format!("r/{seq}"),
        decision: if seq.is_multiple_of(4) {
            "deny"
        } else {
            "allow"
        }
        .into(),
        reason: reason.into(),
        timestamp: "2026-10-01T00:00:00Z".into(),
        previous_hash: prev,
        context: None,
    }
    .seal(Some((key, "k")));
    (s.json, s.current_hash)
}

fn items() -> Vec<Item> {
    let key = SigningKey::generate();
    let mut out = Vec::new();
    for c in 0..4 {
        let chain = format!("cp-{c}");
        let mut prev = Hash32::ZERO;
        let mut hashes = Vec::new();
        for seq in 0..120 {
            let (json, h) = v1(&key, &chain, seq, prev, "ok");
            out.push(Item {
                json,
                status: SigStatus::Verified,
            });
            hashes.push(h);
            prev = h;
        }
        // Forgeries, kept off the main line whatever the order: an unsigned successor of a
        // middle record, a record at a huge seq, and a broken copy of a genuine one.
        out.push(Item {
            json: V1Draft {
                chain_id: chain.clone(),
                seq: 61,
                actor: "forger".into(),
                action: "x.y".into(),
                resource: "r".into(),
                decision: "allow".into(),
                reason: "forged".into(),
                timestamp: "2026-10-01T00:00:00Z".into(),
                previous_hash: hashes[60],
                context: None,
            }
            .seal(None)
            .json,
            status: SigStatus::Unsigned,
        });
        let (unknown, _) = v1(&SigningKey::generate(), &chain, 1_000_000, hashes[9], "x");
        out.push(Item {
            json: unknown,
            status: SigStatus::UnknownKey,
        });
        out.push(Item {
            json: out[c * 123 + 30]
                .json
                .replace("\"signature\":\"", "\"signature\":\"AAAA"),
            status: SigStatus::BadSignature,
        });
    }
    // A lineage chain (the interop vectors), arriving from every writer too.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/interop/zt-infra-full/valid.jsonl");
    for line in std::fs::read_to_string(fixture).unwrap().split('\n') {
        if !line.is_empty() {
            out.push(Item {
                json: line.to_owned(),
                status: SigStatus::Verified,
            });
        }
    }
    out
}

fn put(store: &mut Store, batch: &[Item]) {
    let envs: Vec<Envelope> = batch
        .iter()
        .map(|i| Envelope::from_json(i.json.as_bytes()).unwrap())
        .collect();
    let recs: Vec<NewRecord<'_>> = batch
        .iter()
        .zip(&envs)
        .map(|(i, e)| NewRecord {
            raw: i.json.as_bytes(),
            envelope: e,
            profile: e.detect_profile().unwrap(),
            status: i.status,
            source: "test",
            sender: None,
            received_at_ms: 0,
        })
        .collect();
    store.insert_batch(&recs, &[]).unwrap();
}

/// What must be the same in both stores: every record's chain, position, whether it is on
/// the main line, and its fork flag (by hash); and the counts.
/// By hash: (chain, position, on the main line); and the counts of records, forks, waiting
/// records and copies.
type Picture = (BTreeMap<String, (String, i64, bool)>, [u64; 4]);

fn picture(store: &Store) -> Picture {
    let mut recs = BTreeMap::new();
    zt_testkit::store::for_each_row(store, |chain, r| {
        let e = Envelope::from_json(&r.raw).unwrap();
        recs.insert(
            e.current_hash.to_hex(),
            (chain.to_owned(), r.position.unwrap(), r.is_main()),
        );
    });
    let counts = [
        store.count_records().unwrap(),
        store.count_forks().unwrap(),
        store.count_waiting().unwrap(),
        store.count_copies().unwrap(),
    ];
    (recs, counts)
}

#[test]
fn four_concurrent_writers_end_as_one_writer_does() {
    let all = items();
    // The reference: one SQLite writer, everything in order.
    let dir = tempfile::tempdir().unwrap();
    let mut reference = Store::open(&dir.path().join("ref.db")).unwrap();
    put(&mut reference, &all);
    let want = picture(&reference);
    assert_eq!(want.1[0], all.len() as u64 - 4, "broken copies are copies");
    assert_eq!(want.1[2], 0, "nothing waits");

    let Some(server) = zt_testkit::postgres::server_url() else {
        return;
    };
    for round in 0..3u64 {
        let db = ScratchDatabase::create(&server, "zt_concurrent").unwrap();
        let location: Location = db.location().clone();
        std::thread::scope(|s| {
            for w in 0..4u64 {
                let location = location.clone();
                // Each writer: three quarters of the records (so each record comes from three
                // writers), some twice, shuffled, in batches of 1 to 40.
                let mut mine: Vec<Item> = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i as u64 % 4 != w)
                    .map(|(_, it)| it.clone())
                    .collect();
                let again: Vec<Item> = mine.iter().step_by(7).cloned().collect();
                mine.extend(again);
                shuffle(&mut mine, 0x9e37_79b9 ^ (round * 31 + w + 1));
                s.spawn(move || {
                    let mut store = Store::connect(&location).unwrap();
                    let mut at = 0;
                    let mut n = 1 + (w as usize * 7 + round as usize) % 40;
                    while at < mine.len() {
                        let end = (at + n).min(mine.len());
                        put(&mut store, &mine[at..end]);
                        at = end;
                        n = 1 + (n * 17 + 3) % 40;
                    }
                });
            }
        });
        let store = Store::open_read_only(&location).unwrap();
        let got = picture(&store);
        assert_eq!(
            got.1, want.1,
            "round {round}: records, forks, waiting, copies"
        );
        assert_eq!(got.0, want.0, "round {round}: placement");
    }
}
