//! The stores the behaviour tests run on: a SQLite file, and a PostgreSQL database when
//! `ZT_TEST_POSTGRES` names a server (scripts/test.sh starts one with scripts/postgres.sh).
//! With `ZT_REQUIRE_POSTGRES=1` (the suite sets it) a missing server fails the tests instead
//! of leaving PostgreSQL untested.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use crate::scratch::ScratchDatabase;
use crate::store::Store;

/// Keeps a test's store alive (its folder, or its database).
#[derive(Debug)]
pub(crate) enum Guard {
    #[allow(dead_code, reason = "held for its Drop")]
    Dir(tempfile::TempDir),
    #[allow(dead_code, reason = "held for its Drop")]
    Pg(ScratchDatabase),
}

/// The PostgreSQL server the tests use, if any.
pub(crate) fn postgres_server() -> Option<String> {
    match std::env::var("ZT_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ZT_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ZT_REQUIRE_POSTGRES=1 but ZT_TEST_POSTGRES names no server"
            );
            eprintln!("ZT_TEST_POSTGRES is not set: this test ran on SQLite only");
            None
        }
    }
}

/// A new empty store on each engine.
pub(crate) fn stores() -> Vec<(Guard, Store)> {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("t.db")).unwrap();
    let mut out = vec![(Guard::Dir(dir), s)];
    if let Some(server) = postgres_server() {
        let db = ScratchDatabase::create(&server, "zt_store_test").unwrap();
        let s = Store::connect(db.location()).unwrap();
        out.push((Guard::Pg(db), s));
    }
    out
}

/// Stores `items` (bytes, signature status) in one batch, each under the profile its hash
/// recomputes under.
pub(crate) fn insert<'a>(
    store: &mut Store,
    items: impl IntoIterator<Item = (&'a [u8], zt_core::chain::SigStatus)>,
) -> crate::types::BatchOutcome {
    let items: Vec<(&[u8], zt_core::chain::SigStatus)> = items.into_iter().collect();
    let envs: Vec<zt_core::Envelope> = items
        .iter()
        .map(|(raw, _)| zt_core::Envelope::from_json(raw).unwrap())
        .collect();
    let recs: Vec<crate::types::NewRecord<'_>> = items
        .iter()
        .zip(&envs)
        .map(|((raw, status), e)| crate::types::NewRecord {
            raw,
            envelope: e,
            profile: e.detect_profile().unwrap(),
            status: *status,
            source: "test",
            sender: None,
            received_at_ms: 0,
        })
        .collect();
    store.insert_batch(&recs, &[]).unwrap()
}
