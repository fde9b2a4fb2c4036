//! `zt-audit broker`: the execution broker as a service of its own (`serve`) and the agent's
//! side of it (`ask`); the local convenience that runs one command in the agent's own process
//! (`run`, whose report is recorded as the agent's claim); and the hidden mode the broker
//! re-executes itself in to build the sandbox (`sandbox-exec`).
//!
//! Exit statuses of `broker run` and `broker ask`: the command's own when it ran to completion
//! (128 + signal when a signal ended it), 126 when it was refused and never started, 137 when
//! the broker stopped it (revoked, expired, lost contact with the control plane).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use zt_broker::run::{Attest, Delivery, Finished, Launcher, RunConfig, Stdio3};
use zt_broker::serve::{Request, ServeConfig};
use zt_broker::supervise::EXIT_REFUSED;
use zt_client::{ClientConfig, PinnedKey};
use zt_core::capability::Grants;
use zt_core::secret::Secret;
use zt_core::text::error_chain;

/// Execution brokers.
#[derive(Debug, clap::Subcommand)]
pub enum Broker {
    /// Serve agents on a unix socket as a broker of its own: ask the control plane as the
    /// agent, run the command confined to the grants it signed, watch the capability, and file
    /// the execution report signed with this broker's key.
    Serve(ServeArgs),
    /// Ask a broker (`broker serve`) to run a command under a capability; this process's
    /// standard output and error (and input with --stdin) become the command's.
    Ask(AskArgs),
    /// Run one command under a capability in this process (the local convenience): confined
    /// as `serve` confines it, but the report is filed with the agent's own credentials and
    /// recorded as the agent's claim, not as a broker-attested execution.
    Run(RunArgs),
    /// (internal) Build the sandbox around this process and start the command in it.
    #[command(hide = true)]
    SandboxExec(SandboxExecArgs),
}

/// The command's environment and standard input.
#[derive(Debug, clap::Args)]
pub struct CommandEnv {
    /// Give the command this environment variable: NAME=VALUE, or NAME for this process's
    /// value. Repeatable. Nothing else of the environment reaches the command; `LD_*` is
    /// refused.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Give the command this process's standard input (default: /dev/null).
    #[arg(long)]
    stdin: bool,
}

impl CommandEnv {
    fn pairs(&self) -> Result<Vec<(String, String)>> {
        self.env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                None => std::env::var(e)
                    .map(|v| (e.clone(), v))
                    .with_context(|| format!("--env {e}: not set in this environment")),
            })
            .collect()
    }
}

/// The agent's side of a run: its capability and its credential.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The capability token (`ztcap1.…`). Its actor, action and resource are what is asked.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ZT_CAPABILITY",
        hide_env_values = true
    )]
    capability: String,
    /// This agent's bearer token (the decision is asked as this agent).
    #[arg(long, value_name = "T", env = "ZT_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// The control plane as seen from here.
#[derive(Debug, clap::Args)]
pub struct ControlPlaneArgs {
    /// The control plane, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    control_plane: String,
    /// The control plane's keyring (one key): decisions and records must be signed by it.
    #[arg(long, value_name = "FILE")]
    keyring: PathBuf,
    /// For https: PEM CAs to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// mTLS: this principal's certificate chain (an X.509-SVID).
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// mTLS: the key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

impl ControlPlaneArgs {
    /// The control plane as this principal: its token, and its SVID (--cert, --key) if any.
    fn client(&self, token: Option<&str>) -> Result<ClientConfig> {
        self.client_as(token, true)
    }

    /// `identity: false`: without this principal's client certificate (a broker asking a
    /// decision as an agent must not present its own SVID, which would speak for the broker).
    fn client_as(&self, token: Option<&str>, identity: bool) -> Result<ClientConfig> {
        let ring = std::fs::read(&self.keyring)
            .with_context(|| format!("cannot read keyring {}", self.keyring.display()))?;
        let pinned = PinnedKey::from_keyring_json(&ring)
            .with_context(|| format!("keyring {}", self.keyring.display()))?;
        let mut client = ClientConfig::new(self.control_plane.clone(), pinned);
        client.token = token.map(|t| t.trim().into());
        client.tls = if identity {
            zt_tls::ClientTls::from_files(self.ca.as_ref(), self.cert.as_ref(), self.key.as_ref())
        } else {
            zt_tls::ClientTls::from_files(self.ca.as_ref(), None, None)
        };
        Ok(client)
    }
}

/// `broker serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    /// The name this broker is registered under (`POST /brokers`).
    #[arg(long, value_name = "NAME")]
    name: String,
    /// The P-256 key (PKCS#8 PEM) whose public half was registered: it signs every report.
    #[arg(long, value_name = "FILE")]
    report_key: PathBuf,
    /// The broker's bearer token from its registration.
    #[arg(
        long,
        value_name = "T",
        env = "ZT_BROKER_TOKEN",
        hide_env_values = true
    )]
    broker_token: Option<String>,
    /// The unix socket agents ask on.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// The socket's permissions (octal): who may ask.
    #[arg(long, value_name = "MODE", default_value = "660")]
    socket_mode: String,
    /// Runs at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_runs: usize,
    /// Run on a kernel whose Landlock is older than ABI 6 (no signal or socket scopes); each
    /// execution record says so.
    #[arg(long)]
    allow_unscoped_landlock: bool,
}

/// `broker ask`.
#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// The broker's socket.
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    env: CommandEnv,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `broker run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    control_plane: ControlPlaneArgs,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    env: CommandEnv,
    /// Run on a kernel whose Landlock is older than ABI 6 (no signal or socket scopes); the
    /// report says so.
    #[arg(long)]
    allow_unscoped_landlock: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// `broker sandbox-exec`.
#[derive(Debug, clap::Args)]
pub struct SandboxExecArgs {
    /// The grants, `{"read": [...], "write": [...], "exec": [...], "net": bool, "sandbox": ...}`.
    #[arg(long, value_name = "JSON")]
    grants_json: String,
    /// Where to write why the sandbox was not built.
    #[arg(long, value_name = "FILE")]
    refusal_file: Option<PathBuf>,
    /// Landlock below ABI 6 allowed.
    #[arg(long)]
    allow_unscoped_landlock: bool,
    /// Use at most this Landlock ABI (the broker's `ZT_BROKER_LANDLOCK_ABI_CAP`).
    #[arg(long, value_name = "N")]
    landlock_abi_cap: Option<u32>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

pub fn run(b: Broker) -> Result<ExitCode> {
    // How this broker behaves on an older kernel, shown on this one (tests): only lowers.
    if let Some(cap) = std::env::var("ZT_BROKER_LANDLOCK_ABI_CAP")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        zt_broker::sandbox::cap_abi(cap);
    }
    match b {
        Broker::Serve(a) => serve(a),
        Broker::Ask(a) => ask(&a),
        Broker::Run(a) => run_broker(a),
        Broker::SandboxExec(a) => Ok(sandbox_exec(&a)),
    }
}

fn say(what: &str) {
    eprintln!("zt-audit broker: {}", zt_core::text::escape(what));
}

fn launcher() -> Result<Launcher> {
    Ok(Launcher {
        exe: std::env::current_exe().context("cannot find this binary to re-execute it")?,
        args: vec!["broker".into(), "sandbox-exec".into()],
    })
}

/// No runtime, no threads: the sandbox is built around this one thread, which then starts the
/// command and leaves with its status.
fn sandbox_exec(a: &SandboxExecArgs) -> ExitCode {
    let refuse = |why: String| {
        say(&format!("{why}; the command was not started"));
        if let Some(f) = &a.refusal_file {
            zt_broker::run::RefusalFile::write(f, &why);
        }
        ExitCode::from(EXIT_REFUSED)
    };
    let grants = zt_core::json::parse(a.grants_json.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|v| Grants::from_value(&v).map_err(|e| e.to_string()));
    let grants = match grants {
        Ok(g) => g,
        Err(e) => return refuse(format!("--grants-json: {e}")),
    };
    if let Some(cap) = a.landlock_abi_cap {
        zt_broker::sandbox::cap_abi(cap);
    }
    match zt_broker::sandbox::run_sandboxed(&grants, &a.command, a.allow_unscoped_landlock) {
        Ok(status) => zt_broker::sandbox::exit_like(status),
        Err(e) => refuse(error_chain(&e)),
    }
}

fn report_line(delivery: &Delivery, report: &str) {
    match delivery {
        Delivery::Recorded { hash } => say(&format!("execution recorded as {hash}")),
        Delivery::Kept { hash, status } => say(&format!(
            "the report is on record as {hash} (HTTP {status}), as the agent's claim: only a registered broker attests an execution"
        )),
        Delivery::Unverified { why } => say(&format!(
            "the control plane answered the execution report, but its sealed answer does not verify: {why}"
        )),
        Delivery::NotRecorded { why } => {
            say(&format!(
                "the execution report was NOT recorded ({why}); here it is:"
            ));
            eprintln!("{}", zt_core::text::escape(report));
        }
    }
}

fn run_broker(a: RunArgs) -> Result<ExitCode> {
    let client = a.control_plane.client(a.agent.token.as_deref())?;
    let mut config = RunConfig::new(
        client,
        a.agent.capability.trim(),
        launcher()?,
        a.command.clone(),
    );
    config.env = a
        .env
        .pairs()?
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    if a.env.stdin {
        config.stdio = Stdio3 {
            stdin: Some(
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("standard input")?,
            ),
            ..Stdio3::default()
        };
    }
    config.unscoped = a.allow_unscoped_landlock;
    let finished = crate::common::runtime()?.block_on(zt_broker::run::run(config));
    match &finished {
        Finished::Refused(e) => say(&format!(
            "refused, the command was not started: {}",
            error_chain(e)
        )),
        Finished::NotStarted {
            error,
            report,
            delivery,
        } => {
            say(&format!(
                "refused, the command was not started: {}",
                error_chain(error)
            ));
            report_line(delivery, report);
        }
        Finished::Ran {
            outcome,
            report,
            delivery,
        } => {
            if let Some(r) = &outcome.stopped {
                say(&format!("stopped the command ({r})"));
            }
            report_line(delivery, report);
        }
    }
    Ok(ExitCode::from(finished.exit_status()))
}

use std::os::fd::AsFd;

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let agents = a.control_plane.client_as(None, false)?;
    let broker_client = a.control_plane.client(a.broker_token.as_deref())?;
    let report_key = zt_broker::report_key::ReportKey::load(&a.report_key)?;
    let Ok(mode) = u32::from_str_radix(&a.socket_mode, 8) else {
        bail!("--socket-mode {:?} is not an octal mode", a.socket_mode);
    };
    if mode > 0o777 {
        bail!("--socket-mode {:o} is more than permissions", mode);
    }
    let config = ServeConfig {
        socket: a.socket.clone(),
        socket_mode: mode,
        agents,
        attest: Attest {
            name: a.name.clone(),
            key: report_key.key,
            client: broker_client,
        },
        launcher: launcher()?,
        unscoped: a.allow_unscoped_landlock,
        max_runs: a.max_runs,
        protected: vec![report_key.path],
    };
    say(&format!(
        "broker {} serving on {} (key {})",
        a.name,
        a.socket.display(),
        zt_core::capability::report::broker_key_id(&config.attest.key.public_key())
    ));
    crate::common::runtime()?
        .block_on(zt_broker::serve::serve(
            config,
            crate::common::shutdown_signal(),
        ))
        .context("broker serve")?;
    Ok(ExitCode::SUCCESS)
}

fn ask(a: &AskArgs) -> Result<ExitCode> {
    let req = Request {
        capability: Secret::new(a.agent.capability.trim()),
        token: a.agent.token.as_deref().map(|t| Secret::new(t.trim())),
        command: a.command.clone(),
        env: a.env.pairs()?.into_iter().collect(),
        stdin: a.env.stdin,
    };
    let answer = match zt_broker::serve::ask(&a.socket, &req) {
        Ok(ans) => ans,
        Err(e) => {
            say(&format!("{e}; the command was not started"));
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
    };
    if let Some(m) = &answer.message {
        say(m);
    }
    match (&answer.execution, &answer.report) {
        (Some(h), _) => say(&format!(
            "execution attested by the broker, recorded as {h}"
        )),
        (None, Some(r)) => say(&format!("the execution report: {r}")),
        (None, None) => {}
    }
    Ok(ExitCode::from(answer.status))
}
