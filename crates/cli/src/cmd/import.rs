//! `zt-audit import`: load evidence files into a store through the ingest validation path.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_core::text::escape;
use zt_ingest::{import_file, Pipeline};
use zt_store::Store;

/// Load JSONL logs (or JSON arrays, saved HTTP responses) into a store, validated exactly as
/// `serve` validates: unreadable records and hashes that do not recompute go to quarantine;
/// everything else is stored, signature status flagged. Importing twice is a no-op.
///
/// Exit status: 0 imported (see the summary for quarantined records); 2 an input or the store
/// could not be used.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store (created if missing): a SQLite file or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, value_name = "PATH|URL")]
    db: zt_store::Location,
    /// The keys that decide each record's signature status.
    #[command(flatten)]
    keys: crate::common::KeyArgs,
    /// Evidence files.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    trust: crate::common::TrustArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let ring = args.keys.load()?;
    let mut store = Store::connect(&args.db)
        .with_context(|| format!("cannot open store {}", crate::style::store(&args.db)))?;
    store.set_trust(args.trust.policy());
    let pipeline = Pipeline::new(&ring);
    let mut failed = false;
    for path in &args.files {
        let name = crate::style::path(path);
        match import_file(&pipeline, &mut store, path) {
            Ok(t) => {
                let mut line = format!(
                    "{name}: {} new, {} duplicates, {} forks, {} quarantined",
                    t.inserted, t.duplicates, t.forks, t.quarantined
                );
                // Other content with a known hash: kept; the better copy is the record.
                if t.copies > 0 || t.superseded > 0 {
                    line.push_str(&format!(
                        ", {} other copies kept, {} superseded by a verified copy",
                        t.copies, t.superseded
                    ));
                }
                println!("{line}");
            }
            Err(e) => {
                failed = true;
                eprintln!("zt-audit: error: {name}: {}", escape(&format!("{e:#}")));
            }
        }
    }
    let chains = store.chains()?.len();
    println!(
        "store {}: {} records in {chains} chain{}, {} waiting, {} forks, {} quarantined",
        crate::style::store(&args.db),
        store.count_records()?,
        if chains == 1 { "" } else { "s" },
        store.count_waiting()?,
        store.count_forks()?,
        store.count_quarantined()?
    );
    Ok(ExitCode::from(if failed {
        crate::common::EXIT_ERROR
    } else {
        0
    }))
}
