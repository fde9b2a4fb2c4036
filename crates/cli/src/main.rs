//! `zt-audit`: the one binary. See `zt-audit --help`.
//!
//! Exit codes: 0 ok; 1 verification failed (at least one finding); 2 usage or runtime error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod style;

/// Audit evidence for AI-agent action authorization: decide, collect and verify hash-chained,
/// signed decisions.
#[derive(Debug, Parser)]
#[command(name = "zt-audit", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify hash chains and signatures; name every break.
    Verify(cmd::verify::Args),
    /// Receive audit envelopes over OTLP/HTTP into a store.
    Serve(cmd::serve::Args),
    /// Load evidence files into a store through the ingest validation path.
    Import(cmd::import::Args),
    /// Run the reference control plane (Cedar policies, signed decisions).
    ControlPlane(cmd::control_plane::Args),
    /// The five-minute quickstart: control plane, ingest, an agent denied then allowed.
    Demo(cmd::demo::Args),
    /// Anchor chain heads on an EVM contract (Base Sepolia by default).
    #[command(subcommand)]
    Anchor(cmd::anchor::Anchor),
    /// Check the store's anchors against the chain: missing, different, truncated, rewritten.
    Reconcile(cmd::reconcile::Args),
    /// Write a self-contained proof that a record is part of an anchored chain.
    Prove(cmd::prove::ProveArgs),
    /// Check a proof bundle offline, and against the chain with --rpc.
    VerifyProof(cmd::prove::VerifyProofArgs),
    /// Browse a store in the terminal: decisions, verification, chains, anchors.
    Tui(cmd::tui::Args),
    /// Create a P-256 signing key pair and its keyring entry.
    Keygen(cmd::keygen::Args),
    /// Benchmarks (generated data, figures for the README).
    #[command(subcommand)]
    Bench(zt_bench::Bench),
    /// Print a shell completion script: `zt-audit completions bash > ~/.local/share/bash-completion/completions/zt-audit`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit code 2: usage or runtime error.
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    // reqwest is built with rustls but no provider of its own: AWS-LC, for every client.
    zt_tls::install_default_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(a) => cmd::verify::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::ControlPlane(a) => cmd::control_plane::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Anchor(a) => cmd::anchor::run(a),
        Command::Reconcile(a) => cmd::reconcile::run(a),
        Command::Prove(a) => cmd::prove::prove(a),
        Command::VerifyProof(a) => cmd::prove::verify_proof(a),
        Command::Tui(a) => cmd::tui::run(a),
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Bench(b) => zt_bench::run(b),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "zt-audit",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // The whole chain: "cannot read keyring x: ...: No such file or directory". Errors
            // name files and echo evidence (a log, a key id), so they are escaped like reports.
            eprintln!(
                "zt-audit: error: {}",
                zt_core::text::escape(&format!("{err:#}"))
            );
            ExitCode::from(EXIT_ERROR)
        }
    }
}
