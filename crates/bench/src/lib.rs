//! zt-audit's benchmark harnesses: `zt-audit bench verify|ingest|control-plane|anchor|tui`
//! (`control-plane --flood`, `control-plane --slow-clients`, `ingest --hostile`: the same
//! services under attack).
//!
//! Each one generates its data, measures against a named reference in the same run (the
//! Node/OpenSSL verifier, offline verify, one fsync per decision, `verify --db`, ...), checks
//! the result is right before it counts, and reports medians. The README's figures come from
//! release builds of these; `scripts/test.sh` runs small debug versions to check behaviour.
//!
//! Kept apart from the CLI crate so the binary stays glue: `zt-audit bench` parses
//! [`Bench`] and calls [`run`].
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

/// The median of some figures (the upper middle one for an even count); NaN for none. Every
/// benchmark quotes medians, through this one function.
pub(crate) fn median(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub mod anchor;
pub mod control_plane;
pub mod flood;
pub mod hostile;
pub mod ingest;
pub mod slow;
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
    match b {
        Bench::Verify(a) => verify::run(a),
        Bench::Ingest(a) => ingest::run(a),
        Bench::ControlPlane(a) => control_plane::run(a),
        Bench::Anchor(a) => anchor::run(a),
        Bench::Tui(a) => tui::run(a),
        Bench::FloodSender(a) => flood::sender(a).map(|()| ExitCode::SUCCESS),
        Bench::SlowSender(a) => slow::sender(a).map(|()| ExitCode::SUCCESS),
    }
}
