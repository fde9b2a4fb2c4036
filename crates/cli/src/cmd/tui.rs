//! `zt-audit tui`: the terminal browser.

use std::process::ExitCode;

use anyhow::{Context, Result};

/// Browse a store in the terminal: decisions newest first (`/` filters, `d` deny only,
/// Enter for one decision with its verification and anchoring), chains (`c`), anchors (`a`),
/// `?` for help, `q` to quit. Records a running ingest adds appear without a restart.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store (from `serve`, `import` or `demo`): a SQLite file, or a PostgreSQL database
    /// (read-only: a streaming replica serves).
    #[arg(long, value_name = "PATH|URL")]
    db: zt_store::Location,
}

pub fn run(a: Args) -> Result<ExitCode> {
    zt_tui::run(&a.db).with_context(|| format!("browsing {}", crate::style::store(&a.db)))?;
    Ok(ExitCode::SUCCESS)
}
