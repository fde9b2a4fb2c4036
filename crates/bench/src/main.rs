//! `zt-bench`: zt-audit's benchmarks, a binary of their own so the shipped `zt-audit` carries
//! none of their harness. It runs the `zt-audit` beside it (or `ZT_AUDIT_BIN`) where a
//! benchmark measures a separate process; `scripts/bench.sh` builds both in release mode.

use std::process::ExitCode;

use clap::Parser;

/// zt-audit's benchmarks: each measures against a named reference in the same run and quotes
/// medians (docs/benchmarks.md has the figures and their commands).
#[derive(Debug, Parser)]
#[command(name = "zt-bench", version)]
struct Cli {
    #[command(subcommand)]
    bench: zt_bench::Bench,
}

fn main() -> ExitCode {
    // reqwest's rustls takes the process default provider: AWS-LC, installed before any client
    // is built (as `zt-audit` does), not left to whichever thread builds a TLS config first.
    zt_tls::install_default_provider();
    match zt_bench::run(Cli::parse().bench) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zt-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
