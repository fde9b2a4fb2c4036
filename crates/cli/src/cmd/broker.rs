//! `zt-audit broker`: run one command under a capability (`run`), and the hidden mode the
//! broker re-executes itself in to confine the command (`sandbox-exec`).
//!
//! Exit statuses of `broker run`: the command's own when it ran to completion (128 + signal
//! when a signal ended it), 126 when it was refused and never started, 137 when the broker
//! stopped it (revoked, expired, lost contact with the control plane).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use zt_broker::run::{Delivery, Finished, Launcher, RunConfig};
use zt_broker::sandbox::Sandbox;
use zt_broker::supervise::EXIT_REFUSED;
use zt_client::{ClientConfig, PinnedKey};
use zt_core::capability::Grants;

/// Execution brokers.
#[derive(Debug, clap::Subcommand)]
pub enum Broker {
    /// Ask the control plane with a capability, run the command confined to the grants it
    /// signed, stop it on revocation, expiry or lost contact, report the execution.
    Run(RunArgs),
    /// (internal) Confine this process to the grants and execute the command.
    #[command(hide = true)]
    SandboxExec(SandboxExecArgs),
}

/// `broker run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The control plane, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    control_plane: String,
    /// The control plane's keyring (one key): decisions and records must be signed by it.
    #[arg(long, value_name = "FILE")]
    keyring: PathBuf,
    /// The capability token (`ztcap1.…`). Its actor, action and resource are what is asked.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ZT_CAPABILITY",
        hide_env_values = true
    )]
    capability: String,
    /// This agent's bearer token.
    #[arg(long, value_name = "T", env = "ZT_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How the command is confined: nono (Landlock) or process (no sandbox).
    #[arg(long, default_value = "nono", value_name = "nono|process")]
    sandbox: Sandbox,
    /// For https: PEM CAs to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// mTLS: this agent's certificate chain (an X.509-SVID).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// mTLS: the key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `broker sandbox-exec`.
#[derive(Debug, clap::Args)]
pub struct SandboxExecArgs {
    /// The grants, `{"read": [...], "write": [...], "exec": [...], "net": bool}`.
    #[arg(long, value_name = "JSON")]
    grants_json: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(b: Broker) -> Result<ExitCode> {
    match b {
        Broker::Run(a) => run_broker(a),
        Broker::SandboxExec(a) => Ok(sandbox_exec(&a)),
    }
}

fn say(what: &str) {
    eprintln!("zt-audit broker: {}", zt_core::text::escape(what));
}

use zt_core::text::error_chain;

/// No runtime, no threads: Landlock binds the calling thread, which then executes the command.
fn sandbox_exec(a: &SandboxExecArgs) -> ExitCode {
    let grants = zt_core::json::parse(a.grants_json.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|v| Grants::from_value(&v).map_err(|e| e.to_string()));
    let grants = match grants {
        Ok(g) => g,
        Err(e) => {
            say(&format!("--grants-json: {e}; the command was not started"));
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    match zt_broker::sandbox::exec_sandboxed(&grants, &a.command) {
        Ok(never) => match never {},
        Err(e) => {
            say(&format!("{}; the command was not started", error_chain(&e)));
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

fn run_broker(a: RunArgs) -> Result<ExitCode> {
    let ring = std::fs::read(&a.keyring)
        .with_context(|| format!("cannot read keyring {}", a.keyring.display()))?;
    let pinned = PinnedKey::from_keyring_json(&ring)
        .with_context(|| format!("keyring {}", a.keyring.display()))?;
    let mut client = ClientConfig::new(a.control_plane.clone(), pinned);
    client.token = a.token.as_deref().map(|t| t.trim().into());
    client.tls = zt_tls::ClientTls::from_files(a.ca.as_ref(), a.cert.as_ref(), a.key.as_ref());
    let launcher = Launcher {
        exe: std::env::current_exe().context("cannot find this binary to re-execute it")?,
        args: vec!["broker".into(), "sandbox-exec".into()],
    };
    let config = RunConfig::new(
        client,
        a.capability.trim(),
        a.sandbox,
        launcher,
        a.command.clone(),
    );
    let finished = super::runtime()?.block_on(zt_broker::run::run(config));
    match &finished {
        Finished::Refused(e) => say(&format!(
            "refused, the command was not started: {}",
            error_chain(e)
        )),
        Finished::Ran {
            outcome,
            report,
            delivery,
        } => {
            if let Some(r) = &outcome.stopped {
                say(&format!("stopped the command ({r})"));
            }
            match delivery {
                Delivery::Recorded { hash } => say(&format!("execution recorded as {hash}")),
                Delivery::Unverified { why } => say(&format!(
                    "the control plane accepted the execution report, but its sealed answer does not verify: {why}"
                )),
                Delivery::NotRecorded { why } => {
                    say(&format!(
                        "the execution report was NOT recorded ({why}); here it is:"
                    ));
                    eprintln!("{}", zt_core::text::escape(report));
                }
            }
        }
    }
    Ok(ExitCode::from(finished.exit_status()))
}
