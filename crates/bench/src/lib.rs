//! zt-audit's benchmark harnesses, run by the `zt-bench` binary (`scripts/bench.sh NAME ARGS`):
//! `verify|ingest|control-plane|anchor|tui` (`control-plane --flood`, `control-plane
//! --slow-clients`, `ingest --hostile`: the same services under attack).
//!
//! Each one generates its data, measures against a named reference in the same run (the
//! Node/OpenSSL verifier, offline verify, one fsync per decision, `verify --db`, ...), checks
//! the result is right before it counts, and reports medians. The figures in
//! docs/benchmarks.md come from release builds of these; `scripts/test.sh` runs small debug
//! versions to check behaviour.
//!
//! A crate and a binary of their own, so the shipped `zt-audit` links none of it: where a
//! benchmark measures `zt-audit` as a separate process it runs the binary [`procs`] finds.
//! Layout: [`run`] dispatches; `stats` (medians, percentiles) and `procs` (the processes run
//! beside: `zt-audit serve`, the attacker senders) are leaves every benchmark uses.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     bench: zt_bench::Bench,
//! }
//! let code = zt_bench::run(Cli::parse_from(["x", "verify", "--records", "1000"]).bench)?;
//! # let _ = code; Ok(()) }
//! ```

pub mod anchor;
pub mod control_plane;
mod data;
pub mod flood;
pub mod hostile;
pub mod ingest;
pub mod procs;
pub mod slow;
mod stats;
pub mod tui;
pub mod verify;

use std::process::ExitCode;

use anyhow::Result;

/// The benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Verify throughput against the Node/OpenSSL reference verifier.
    Verify(verify::VerifyArgs),
    /// Ingest throughput of `zt-audit serve` under a replayed OTLP load.
    Ingest(ingest::IngestArgs),
    /// The terminal browser: first screen and keystroke times on a big store.
    Tui(tui::TuiArgs),
    /// Anchoring: gas per anchor and per record, reconcile time (a local anvil).
    Anchor(anchor::AnchorArgs),
    /// Control-plane decisions per second and latency, from concurrent guarded clients.
    #[command(name = "control-plane")]
    ControlPlane(control_plane::CpArgs),
    /// The tokenless flood of `control-plane --flood`, as its own process.
    #[command(name = "flood-sender", hide = true)]
    FloodSender(flood::SenderArgs),
    /// The held connections of `control-plane --slow-clients`, as their own process.
    #[command(name = "slow-sender", hide = true)]
    SlowSender(slow::SlowSenderArgs),
}

/// Runs one benchmark.
pub fn run(b: Bench) -> Result<ExitCode> {
    // The benchmarks that run `zt-audit` as its own process find it before any work.
    if let Bench::Verify(_) | Bench::Ingest(_) = &b {
        procs::zt_audit()?;
    }
    match b {
        Bench::Verify(a) => verify::run(a),
        Bench::Ingest(a) if a.hostile => hostile::run(&hostile::HostileArgs {
            records: a.records,
            batch: a.batch,
            bombs: a.bombs,
            reference: !a.no_reference,
            runs: a.runs,
            json: a.json,
        })
        .map(|()| ExitCode::SUCCESS),
        Bench::Ingest(a) => ingest::run(a),
        Bench::ControlPlane(a) => control_plane::run(a),
        Bench::Anchor(a) => anchor::run(a),
        Bench::Tui(a) => tui::run(a),
        Bench::FloodSender(a) => flood::sender(a).map(|()| ExitCode::SUCCESS),
        Bench::SlowSender(a) => slow::sender(a).map(|()| ExitCode::SUCCESS),
    }
}
