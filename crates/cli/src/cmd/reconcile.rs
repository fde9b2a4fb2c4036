//! `zt-audit reconcile`: the store's anchors against the chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use zt_anchor::reconcile::{reconcile, Options, Report};
use zt_anchor::tree::LogRef;
use zt_core::text::escape;
use zt_store::Store;

use crate::cmd::anchor::{parse_address, ChainArgs};
use crate::common::parse_duration;
use crate::common::{print_report, Format};
use crate::style::Style;

/// Reconcile local evidence with its anchors on chain: anchors missing, failed, different,
/// unknown to the store or not final; and chains that no longer contain an anchored head
/// (truncated, or rewritten even with valid signatures).
///
/// With --lineage FILE, a lineage DAALog --contract and the --logger addresses whose events
/// count: the file's records against the ActionLogged events and batch roots of that
/// deployment (anyone else's events are counted as ignored).
///
/// Exit status: 0 consistent; 1 findings; 2 usage or runtime error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The evidence store (a SQLite file or `postgres://USER@HOST:PORT/DB`; read-only, so a
    /// streaming replica serves).
    #[arg(long, value_name = "PATH|URL", required_unless_present = "lineage")]
    db: Option<zt_store::Location>,
    /// A lineage JSONL file to reconcile with a DAALog deployment (instead of --db/--log).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["db", "log"], requires = "logger")]
    lineage: Option<PathBuf>,
    /// With --lineage: an address whose logAction/logBatch events count (repeatable; the
    /// event's logger and its transaction's sender must be one of them). Anyone can call the
    /// DAALog contract: other senders' events are ignored and counted.
    #[arg(long, value_name = "ADDR", requires = "lineage")]
    logger: Vec<String>,
    #[command(flatten)]
    chain: ChainArgs,
    /// The ZtAnchor contract.
    #[arg(long, value_name = "ADDR")]
    contract: String,
    /// The log's name.
    #[arg(long, value_name = "NAME", required_unless_present = "lineage")]
    log: Option<String>,
    /// The log's owner (the anchoring address, or the owner a writer anchors for): only that
    /// owner's log is read, whatever others anchored under the same name.
    #[arg(
        long,
        value_name = "ADDR",
        required_unless_present = "lineage",
        conflicts_with = "lineage"
    )]
    owner: Option<String>,
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
    let rt = crate::common::runtime()?;
    if let Some(file) = &a.lineage {
        return lineage(&a, file, contract, &rt);
    }
    let (Some(db), Some(log), Some(owner)) = (&a.db, &a.log, &a.owner) else {
        bail!("give --db, --log and --owner (or --lineage FILE)");
    };
    let log = LogRef::new(parse_address(owner)?, log.clone());
    let store = Store::open_read_only(db)
        .with_context(|| format!("cannot open store {}", crate::style::store(db)))?;
    let report = rt.block_on(async {
        let evm = a.chain.connect().await?;
        let opts = Options {
            from_block: a.from_block,
            span: a.log_span,
            final_within: a.final_within,
        };
        reconcile(&store, &evm, contract, &log, &opts)
            .await
            .context("reconciling")
    })?;
    print_report(a.format, &report, |out| {
        print_text(out, &report, Style::stdout())
    })?;
    Ok(ExitCode::from(u8::from(!report.ok)))
}

fn lineage(
    a: &Args,
    file: &std::path::Path,
    contract: alloy::primitives::Address,
    rt: &tokio::runtime::Runtime,
) -> Result<ExitCode> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let records = zt_anchor::lineage::read_file(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let opts = zt_anchor::lineage::Options {
        loggers: a
            .logger
            .iter()
            .map(|l| parse_address(l))
            .collect::<Result<_>>()?,
        from_block: a.from_block,
        span: a.log_span,
    };
    let report = rt.block_on(async {
        let evm = a.chain.connect().await?;
        zt_anchor::lineage::reconcile_lineage(&records, &evm, contract, &opts)
            .await
            .context("reconciling with the DAALog deployment")
    })?;
    print_report(a.format, &report, |out| {
        let s = Style::stdout();
        writeln!(
                out,
                "{}: {} records; DAALog {} (chain {}): {} logged one by one, {} in batches, {} logged nowhere",
                crate::style::path(file),
                report.records,
                escape(&report.contract),
                report.chain_id,
                report.logged,
                report.batched,
                report.unanchored
            )?;
        writeln!(
                out,
                "counted: events of {} ({} ActionLogged, {} BatchLogged); ignored: {} ActionLogged and {} BatchLogged event(s) from {} other sender(s)",
                report.loggers.join(", "),
                report.action_events,
                report.batch_events,
                report.ignored_action_events,
                report.ignored_batch_events,
                report.ignored_senders
            )?;
        print_findings(out, &report.findings, s)?;
        if report.ok {
            writeln!(out, "\n{}: the file and the chain agree", s.ok("OK"))?;
        } else {
            writeln!(
                out,
                "\n{}: {} finding(s)",
                s.bad("FAILED"),
                report.findings.len()
            )?;
        }
        Ok(())
    })?;
    Ok(ExitCode::from(u8::from(!report.ok)))
}

/// Chains, messages, expected and found values come from the store, the chain or the file,
/// so each is shown through [`escape`] (`--format json` keeps them exact).
fn print_findings(
    out: &mut impl Write,
    findings: &[zt_anchor::reconcile::Finding],
    s: Style,
) -> Result<()> {
    for f in findings {
        let mut at = Vec::new();
        if let Some(e) = f.epoch {
            at.push(format!("epoch {e}"));
        }
        if let Some(c) = &f.chain {
            at.push(format!("chain {}", escape(c)));
        }
        if let Some(p) = f.position {
            at.push(format!("position {p}"));
        }
        writeln!(out, "\n{}  {}", at.join("  "), s.bad(f.kind.name()))?;
        writeln!(out, "    {}", escape(&f.message))?;
        writeln!(out, "    expected {}", escape(&f.expected))?;
        writeln!(out, "    found    {}", escape(&f.found))?;
    }
    Ok(())
}

fn print_text(out: &mut impl Write, r: &Report, s: Style) -> Result<()> {
    writeln!(
        out,
        "log {} of owner {} ({}) on contract {} (chain {})",
        escape(&r.log),
        escape(&r.owner),
        escape(&r.log_id),
        escape(&r.contract),
        r.chain_id
    )?;
    writeln!(
        out,
        "epochs: {} in the store, {} on chain, {} confirmed, {} in flight; {} chain(s), {} records checked against their anchored heads",
        r.local_epochs, r.chain_epochs, r.confirmed_epochs, r.in_flight, r.chains_checked, r.records_checked
    )?;
    print_findings(out, &r.findings, s)?;
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
