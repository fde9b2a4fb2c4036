//! Importing evidence files into a store: split with the verifier's record reader (bounded
//! record size, flat memory), checked by [`Pipeline`], one store transaction per batch.
//! Records over the size limit and cut-off data cannot be stored as records: the quarantine
//! says where they were.

use std::io::BufReader;
use std::path::Path;

use zt_store::{BatchOutcome, Rejected, Store};
use zt_verifier::source::{Batch, RecordReader, MAX_RECORD_BYTES as MAX_RECORD};

use crate::pipeline::Pipeline;

/// Why a file could not be imported (what was imported before stays: each batch commits).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The path is a directory.
    #[error("is a directory, not an evidence file")]
    Directory,
    /// Opening or reading failed.
    #[error("{what}: {source}")]
    Io {
        /// `cannot open` or `read failed`.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] zt_store::StoreError),
}

/// Imports one file through `pipeline` into `store`; the totals of its batches.
pub fn import_file(
    pipeline: &Pipeline<'_>,
    store: &mut Store,
    path: &Path,
) -> Result<BatchOutcome, ImportError> {
    if path.is_dir() {
        return Err(ImportError::Directory);
    }
    let f = std::fs::File::open(path).map_err(|source| ImportError::Io {
        what: "cannot open",
        source,
    })?;
    let source = format!("import:{}", path.display());
    let mut rr = RecordReader::new(BufReader::with_capacity(1 << 20, f), MAX_RECORD);
    let mut batch = Batch::default();
    let mut total = BatchOutcome::default();
    while rr
        .next_batch(&mut batch)
        .map_err(|source| ImportError::Io {
            what: "read failed",
            source,
        })?
    {
        let mut raws = Vec::with_capacity(batch.records.len());
        let mut notes = Vec::new();
        for m in &batch.records {
            match m.oversized {
                None => raws.push(batch.bytes(m).to_vec()),
                // Not buffered, so not storable: the quarantine says where it was.
                Some(len) => notes.push(format!(
                    "record {} (line {}) of {} is {len} bytes, over the {MAX_RECORD}-byte limit; not stored",
                    m.index,
                    m.line,
                    path.display()
                )),
            }
        }
        for (index, line, msg) in &batch.layout_errors {
            notes.push(format!(
                "{} record {index} (line {line}): {msg}",
                path.display()
            ));
        }
        let mut out = pipeline.ingest(store, &raws, &source)?;
        if !notes.is_empty() {
            let now = zt_store::now_ms();
            let rejected: Vec<Rejected<'_>> = notes
                .iter()
                .map(|n| Rejected {
                    raw: b"",
                    reason: n,
                    source: &source,
                    sender: None,
                    received_at_ms: now,
                })
                .collect();
            out.quarantined += store.insert_batch(&[], &rejected)?.quarantined;
        }
        total += out;
    }
    Ok(total)
}
