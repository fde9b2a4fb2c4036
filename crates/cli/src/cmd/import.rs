//! `zt-audit import`: load evidence files into a store through the ingest validation path.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_core::text::escape;
use zt_ingest::Pipeline;
use zt_store::{BatchOutcome, Rejected, Store};
use zt_verifier::source::{Batch, RecordReader, MAX_RECORD_BYTES as MAX_RECORD};

use crate::cmd::verify::load_keyring;

/// Load JSONL logs (or JSON arrays, saved HTTP responses) into a store, validated exactly as
/// `serve` validates: unreadable records and hashes that do not recompute go to quarantine;
/// everything else is stored, signature status flagged. Importing twice is a no-op.
///
/// Exit status: 0 imported (see the summary for quarantined records); 2 an input or the store
/// could not be used.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store (created if missing).
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Keyring for the signature status.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// A trusted key given directly, as KEY_ID=PUBLIC_KEY.pem (repeatable).
    #[arg(long = "key", value_name = "ID=PEM")]
    keys: Vec<String>,
    /// Evidence files.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let ring = load_keyring(args.keyring.as_ref(), &args.keys)?;
    let mut store = Store::open(&args.db)
        .with_context(|| format!("cannot open store {}", args.db.display()))?;
    let pipeline = Pipeline::new(&ring);
    let mut failed = false;
    for path in &args.files {
        let name = crate::style::path(path);
        match import_file(&pipeline, &mut store, path) {
            Ok(t) => println!(
                "{name}: {} new, {} duplicates, {} forks, {} quarantined",
                t.inserted, t.duplicates, t.forks, t.quarantined
            ),
            Err(e) => {
                failed = true;
                eprintln!("zt-audit: error: {name}: {}", escape(&format!("{e:#}")));
            }
        }
    }
    let chains = store.chains()?.len();
    println!(
        "store {}: {} records in {chains} chain{}, {} waiting, {} forks, {} quarantined",
        crate::style::path(&args.db),
        store.count_records()?,
        if chains == 1 { "" } else { "s" },
        store.count_waiting()?,
        store.count_forks()?,
        store.count_quarantined()?
    );
    Ok(ExitCode::from(if failed { crate::EXIT_ERROR } else { 0 }))
}

fn import_file(
    pipeline: &Pipeline<'_>,
    store: &mut Store,
    path: &std::path::Path,
) -> Result<BatchOutcome> {
    if path.is_dir() {
        anyhow::bail!("is a directory, not an evidence file");
    }
    let f = std::fs::File::open(path).context("cannot open")?;
    let source = format!("import:{}", path.display());
    let mut rr = RecordReader::new(BufReader::with_capacity(1 << 20, f), MAX_RECORD);
    let mut batch = Batch::default();
    let mut total = BatchOutcome::default();
    while rr.next_batch(&mut batch).context("read failed")? {
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
                    received_at_ms: now,
                })
                .collect();
            out.quarantined += store.insert_batch(&[], &rejected)?.quarantined;
        }
        total.inserted += out.inserted;
        total.duplicates += out.duplicates;
        total.forks += out.forks;
        total.linked += out.linked;
        total.quarantined += out.quarantined;
    }
    Ok(total)
}
