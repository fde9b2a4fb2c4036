//! Verifying a store (`zt-store`): each chain branch by branch (the main line first, then the
//! records kept off it: forks, unverified records and what follows them), then the records
//! still waiting for a predecessor, then the other copies of stored records, then the
//! quarantine, through the same verifier as files.

use std::io::{self, BufReader};

use zt_core::chain::inspect;
use zt_core::keyring::Keyring;
use zt_store::{Location, Selection, Store, StoreError};
use zt_verifier::{FindingKind, Verifier};

/// Why a store could not be verified (not a finding: no verdict was reached).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store could not be opened for reading.
    #[error("opening {location}")]
    Open {
        /// Where it is (shown without a password).
        location: Location,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A read of the store failed.
    #[error("{step}")]
    Store {
        /// What was being read: `listing chains`, `reading the quarantine`, ...
        step: &'static str,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// Streaming a chain's records into the verifier failed (the store's error, when it was
    /// one, is this error's source).
    #[error("reading {input}")]
    Read {
        /// The verifier's input (`db:CHAIN`, `db:waiting`).
        input: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a failed read of the store was doing.
fn reading(step: &'static str) -> impl FnOnce(StoreError) -> VerifyError {
    move |source| VerifyError::Store { step, source }
}

/// Opens the store at `db` and verifies all of it under `keyring` with the default options
/// (strict trust: every record must verify): [`verify_store`] and the report.
pub fn verify_db(
    db: impl Into<Location>,
    keyring: &Keyring,
) -> Result<zt_verifier::Report, VerifyError> {
    let location: Location = db.into();
    let store = Store::open_read_only(&location)
        .map_err(|source| VerifyError::Open { location, source })?;
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
pub fn verify_store(v: &mut Verifier<'_>, store: &Store) -> Result<(), VerifyError> {
    store
        .in_snapshot(|| verify_snapshot(v, store))
        .map_err(reading("reading one snapshot"))?
}

fn verify_snapshot(v: &mut Verifier<'_>, store: &Store) -> Result<(), VerifyError> {
    let stream = |v: &mut Verifier<'_>, input: String, which: Selection| {
        let reader = BufReader::new(store.jsonl(which));
        v.verify_reader(&input, reader, &mut |_| {})
            .map_err(|source| VerifyError::Read { input, source })
    };
    for c in store.chains().map_err(reading("listing chains"))? {
        stream(v, format!("db:{}", c.chain), Selection::Chain(c.chain))?;
    }
    if store
        .count_waiting()
        .map_err(reading("counting waiting records"))?
        > 0
    {
        stream(v, "db:waiting".to_owned(), Selection::Waiting)?;
    }
    // Other copies of stored records: a copy that does not count is evidence of an attempt.
    let mut after = 0;
    let mut index = 0u64;
    loop {
        let page = store
            .page_copies(after, 4096)
            .map_err(reading("reading the copies"))?;
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
            .map_err(reading("reading the quarantine"))?;
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
