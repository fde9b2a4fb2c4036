//! The evidence store read back: its records as JSON, and SQL on a SQLite store (what a test
//! edits or counts behind the store's back).

use std::path::Path;

use serde_json::Value;

/// Calls `f` with every placed record of `store` (its chain's name, its row), chain after
/// chain, each in chain order, in pages.
pub fn for_each_row(store: &zt_store::Store, mut f: impl FnMut(&str, &zt_store::RawRow)) {
    for c in store.chains().unwrap() {
        let mut after = None;
        loop {
            let page = store.page_chain(&c.chain, after, 500).unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            for r in &page {
                f(&c.chain, r);
            }
        }
    }
}

/// Every record of the store at `db`, chain after chain, each in chain order, as JSON.
pub fn records(db: &Path) -> Vec<Value> {
    let store = zt_store::Store::open(db).unwrap();
    let mut out = Vec::new();
    for_each_row(&store, |_, r| {
        out.push(serde_json::from_slice(&r.raw).unwrap())
    });
    out
}

/// Every record of the SQLite store at `db` in the order it was stored, as JSON.
pub fn records_as_stored(db: &Path) -> Vec<Value> {
    rows(db, "SELECT raw FROM records ORDER BY id", |r| {
        r.get::<_, Vec<u8>>(0)
    })
    .iter()
    .map(|raw| serde_json::from_slice(raw).unwrap())
    .collect()
}

/// The records in the store at `db`.
pub fn count(db: &Path) -> u64 {
    zt_store::Store::open(db).unwrap().count_records().unwrap()
}

/// The rows of `query` on the SQLite store at `db`, each made by `row`.
pub fn rows<T>(
    db: &Path,
    query: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c.prepare(query).unwrap();
    st.query_map([], row)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs `statements` on the SQLite store at `db` (an edit behind the store's back).
pub fn sql(db: &Path, statements: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(statements).unwrap();
}
