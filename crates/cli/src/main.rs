//! `zt-audit`: the one binary. See `zt-audit --help`.
//!
//! Exit codes: 0 ok; 1 verification failed (at least one finding); 2 usage or runtime error;
//! 141 standard output was closed before everything was written (`| head`).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod common;

use common::{EXIT_BROKEN_PIPE, EXIT_ERROR};
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
    /// Capability tokens: attenuate one offline, show (and verify) what one grants.
    #[command(subcommand)]
    Capability(cmd::capability::Capability),
    /// Does a control plane (--target URL) or a guarded client (client -- CMD) keep the
    /// contract? Exit 0 all cases passed, 1 a case failed, 2 could not run.
    Conformance(cmd::conformance::Args),
    /// Create a P-256 signing key pair and its keyring entry.
    Keygen(cmd::keygen::Args),
    /// Run a command under a capability, confined to its signed grants (Landlock).
    #[command(subcommand)]
    Broker(cmd::broker::Broker),
    /// Print a shell completion script: `zt-audit completions bash > ~/.local/share/bash-completion/completions/zt-audit`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Prints the completion script. Generated into memory first: clap_complete panics on a write
/// error, and `zt-audit completions bash | head` must not.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "zt-audit", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// Whether a panic is std's "failed printing to stdout: Broken pipe" (`println!` on a closed
/// pipe: Rust ignores SIGPIPE, so the write fails and `println!` panics).
fn is_broken_pipe_panic(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.contains("failed printing to stdout") && m.contains("Broken pipe"))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
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
        Command::Capability(c) => cmd::capability::run(c),
        Command::Conformance(a) => cmd::conformance::run(a),
        Command::Keygen(a) => cmd::keygen::run(a),
        Command::Broker(b) => cmd::broker::run(b),
        Command::Completions { shell } => completions(shell),
    }
}

fn main() -> ExitCode {
    // reqwest is built with rustls but no provider of its own: AWS-LC, for every client.
    zt_tls::install_default_provider();
    let cli = Cli::parse();
    // A closed pipe is not a crash: no panic message, exit 141 (see EXIT_BROKEN_PIPE).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe_panic(info.payload_as_str()) {
            default_hook(info);
        }
    }));
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli.command))) {
        Ok(r) => r,
        Err(p) if is_broken_pipe_panic(panic_message(&*p)) => {
            return ExitCode::from(EXIT_BROKEN_PIPE)
        }
        Err(p) => std::panic::resume_unwind(p),
    };
    if let Err(e) = &result {
        let pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if pipe {
            return ExitCode::from(EXIT_BROKEN_PIPE);
        }
    }
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
