//! Verifying a store (`zt-store`): each chain branch by branch (the main line first, then the
//! records kept off it: forks, unverified records and what follows them), then the records
//! still waiting for a predecessor, then the other copies of stored records, then the
//! quarantine, through the same verifier as files.

use std::io::{self, BufReader};

use zt_core::chain::inspect;
use zt_core::keyring::Keyring;
use zt_store::{Selection, Store};
use zt_verifier::{FindingKind, Verifier};

fn store_err(what: &str, e: zt_store::StoreError) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Opens the store at `db` and verifies all of it under `keyring` with the default options
/// (strict trust: every record must verify): [`verify_store`] and the report.
pub fn verify_db(
    db: impl Into<zt_store::Location>,
    keyring: &zt_core::keyring::Keyring,
) -> io::Result<zt_verifier::Report> {
    let db: zt_store::Location = db.into();
    let store = Store::open_read_only(&db).map_err(|e| store_err(&format!("opening {db}"), e))?;
    let mut v = Verifier::new(keyring, zt_verifier::Options::default());
    verify_store(&mut v, &store)?;
    Ok(v.finish())
}

/// Streams every chain of `store` through `v` (inputs named `db:CHAIN`), then the waiting
/// records (`db:waiting`), then checks the other copies of stored records (`db:copies`), then
/// reports each quarantined envelope as a finding (`db:quarantine`): a store that holds
/// rejected evidence, or a copy that does not count, does not verify.
///
/// Every read is of one snapshot ([`Store::in_snapshot`]): a store that receivers are filling
/// is verified as it was at one moment.
pub fn verify_store(v: &mut Verifier<'_>, store: &Store) -> io::Result<()> {
    store
        .in_snapshot(|| verify_snapshot(v, store))
        .map_err(|e| store_err("reading one snapshot", e))?
}

fn verify_snapshot(v: &mut Verifier<'_>, store: &Store) -> io::Result<()> {
    for c in store.chains().map_err(|e| store_err("listing chains", e))? {
        let name = format!("db:{}", c.chain);
        let reader = BufReader::new(store.jsonl(Selection::Chain(c.chain.clone())));
        v.verify_reader(&name, reader, &mut |_| {})?;
    }
    if store
        .count_waiting()
        .map_err(|e| store_err("counting waiting records", e))?
        > 0
    {
        let reader = BufReader::new(store.jsonl(Selection::Waiting));
        v.verify_reader("db:waiting", reader, &mut |_| {})?;
    }
    // Other copies of stored records: a copy that does not count is evidence of an attempt.
    let mut after = 0;
    let mut index = 0u64;
    loop {
        let page = store
            .page_copies(after, 4096)
            .map_err(|e| store_err("reading the copies", e))?;
        let Some(last) = page.last() else { break };
        after = last.0;
        let n = page.len() as u64;
        v.add_copies(
            "db:copies",
            page.into_iter()
                .enumerate()
                .map(|(i, (_, raw))| (index + i as u64, raw)),
        );
        index += n;
    }
    let mut items = Vec::new();
    let mut after = 0;
    let no_keys = Keyring::new();
    loop {
        let page = store
            .page_quarantined(after, 4096)
            .map_err(|e| store_err("reading the quarantine", e))?;
        let Some(last) = page.last() else { break };
        after = last.0.id;
        for (row, reason) in page {
            // The kind comes from the bytes themselves, through the same check as ingest:
            // readable but not recomputing is a hash mismatch, anything else is malformed.
            let kind = match inspect(&row.raw, &no_keys, None) {
                Ok(ins) if ins.matched.is_none() => FindingKind::HashMismatch,
                _ => FindingKind::Malformed,
            };
            items.push((
                items.len() as u64,
                kind,
                format!("quarantined at ingest (row {}): {reason}", row.id),
            ));
        }
    }
    if !items.is_empty() {
        v.add_unreadable("db:quarantine", items);
    }
    Ok(())
}
