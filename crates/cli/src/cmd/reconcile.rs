//! `zt-audit reconcile`: the store's anchors against the chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zt_anchor::reconcile::{reconcile, Options, Report};
use zt_store::Store;

use crate::cmd::anchor::{parse_address, parse_duration, ChainArgs};
use crate::cmd::verify::Format;
use crate::style::Style;

/// Reconcile local evidence with its anchors on chain: anchors missing, failed, different,
/// unknown to the store or not final; and chains that no longer contain an anchored head
/// (truncated, or rewritten even with valid signatures).
///
/// Exit status: 0 consistent; 1 findings; 2 usage or runtime error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The evidence store.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    /// The ZtAnchor contract.
    #[arg(long, value_name = "ADDR")]
    contract: String,
    /// The log's name.
    #[arg(long, value_name = "NAME")]
    log: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// First block to read events from (the contract's deployment block).
    #[arg(long, value_name = "N", default_value_t = 0)]
    from_block: u64,
    /// Blocks per eth_getLogs query (public RPCs cap the range).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    log_span: u64,
    /// An anchor older than this that is not finalized (or not on chain) is a finding.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    final_within: Duration,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let contract = parse_address(&a.contract)?;
    if !a.db.is_file() {
        bail!("no store at {}", a.db.display());
    }
    let store =
        Store::open(&a.db).with_context(|| format!("cannot open store {}", a.db.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = rt.block_on(async {
        let evm = a.chain.connect().await?;
        let opts = Options {
            from_block: a.from_block,
            span: a.log_span,
            final_within: a.final_within,
        };
        reconcile(&store, &evm, contract, &a.log, &opts)
            .await
            .context("reconciling")
    })?;
    let mut out = std::io::stdout().lock();
    match a.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Text => print_text(&mut out, &report, Style::stdout())?,
    }
    out.flush()?;
    Ok(ExitCode::from(u8::from(!report.ok)))
}

fn print_text(out: &mut impl Write, r: &Report, s: Style) -> Result<()> {
    writeln!(
        out,
        "log {} ({}) on contract {} (chain {})",
        r.log, r.log_id, r.contract, r.chain_id
    )?;
    writeln!(
        out,
        "epochs: {} in the store, {} on chain, {} confirmed, {} in flight; {} chain(s), {} records checked against their anchored heads",
        r.local_epochs, r.chain_epochs, r.confirmed_epochs, r.in_flight, r.chains_checked, r.records_checked
    )?;
    for f in &r.findings {
        let mut at = Vec::new();
        if let Some(e) = f.epoch {
            at.push(format!("epoch {e}"));
        }
        if let Some(c) = &f.chain {
            at.push(format!("chain {c}"));
        }
        if let Some(p) = f.position {
            at.push(format!("position {p}"));
        }
        writeln!(out, "\n{}  {}", at.join("  "), s.bad(f.kind.name()))?;
        writeln!(out, "    {}", f.message)?;
        writeln!(out, "    expected {}", f.expected)?;
        writeln!(out, "    found    {}", f.found)?;
    }
    if r.ok {
        writeln!(out, "\n{}: the store and the chain agree", s.ok("OK"))?;
    } else {
        writeln!(
            out,
            "\n{}: {} finding(s)",
            s.bad("FAILED"),
            r.findings.len()
        )?;
    }
    Ok(())
}
