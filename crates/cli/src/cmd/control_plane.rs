//! `zt-audit control-plane`: the reference decision service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use zt_control_plane::{ControlPlane, Options, RateLimit};
use zt_core::text::escape;
use zt_export::ExportConfig;

use crate::common::parse_duration;
use crate::common::shutdown_signal;

/// Run the reference control plane: agents ask `POST /actions`, Cedar decides (deny by
/// default), and every decision is a signed v1 envelope committed to DIR/decisions.db before
/// the answer (or to the store `--db` names). SIGINT/SIGTERM: stop accepting, answer what is in flight, exit 0.
///
/// Admin routes (`/agents`, `/policies`) need the admin token: `--admin-token-file`, env
/// `ZT_CP_ADMIN_TOKEN`, or one generated into DIR/admin-token. Agents authenticate with the
/// token `POST /agents` returned; a token speaks for its actor only.
///
/// TLS: `--tls-cert`/`--tls-key` (reloaded when the files change). With `--client-ca`, an
/// agent's X.509-SVID decides who is asking: `POST /agents {"actor", "spiffe_id"}` binds them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory: signing key, keyring, decisions.db, state.db (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Where decisions are stored (default: DIR/decisions.db): a SQLite file, or a PostgreSQL
    /// database (`postgres://USER@HOST:PORT/DB`) that several control planes share, each
    /// with its own chain.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<zt_store::Location>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// No tokens anywhere (loopback only): for the quickstart and local experiments.
    #[arg(long)]
    open: bool,
    /// Admin token file (one line). Not with --open, which checks no token.
    #[arg(long, value_name = "FILE", conflicts_with = "open")]
    admin_token_file: Option<PathBuf>,
    /// The chain id (default: the one this directory already has, or `cp-` and the key's
    /// fingerprint).
    #[arg(long, value_name = "ID")]
    chain_id: Option<String>,
    /// Export decisions to this OTLP/HTTP logs endpoint (e.g. `zt-audit serve`), retried
    /// until acknowledged; never affects a decision.
    #[arg(long, value_name = "URL")]
    ingest: Option<String>,
    /// Bearer token for the ingest endpoint.
    #[arg(long, value_name = "FILE", requires = "ingest")]
    ingest_token_file: Option<PathBuf>,
    /// CAs to trust for an `https://` ingest endpoint (default: the system's).
    #[arg(long, value_name = "FILE", requires = "ingest")]
    ingest_ca: Option<PathBuf>,
    /// Client certificate (an X.509-SVID, PEM) for mTLS to ingest; reloaded when it changes.
    #[arg(long, value_name = "FILE", requires_all = ["ingest", "ingest_key"])]
    ingest_cert: Option<PathBuf>,
    /// The key of --ingest-cert.
    #[arg(long, value_name = "FILE", requires = "ingest_cert")]
    ingest_key: Option<PathBuf>,
    #[command(flatten)]
    tls: crate::common::TlsArgs,
    #[command(flatten)]
    connections: crate::common::ConnectionArgs,
    /// Decisions waiting to be sealed before 503 + Retry-After.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    queue: usize,
    /// Requests per second that do not authenticate (no, unknown, expired or retired token),
    /// all together; past it 429, counted in a sealed summary per window. 0: no limit.
    #[arg(long, value_name = "PER_S", default_value_t = RateLimit::UNAUTHENTICATED.per_second)]
    rate_unauthenticated: f64,
    /// Burst of the unauthenticated limit.
    #[arg(long, value_name = "N", default_value_t = RateLimit::UNAUTHENTICATED.burst)]
    burst_unauthenticated: u32,
    /// Requests per second of each agent; past it 429, counted in a sealed summary per
    /// window. 0: no limit.
    #[arg(long, value_name = "PER_S", default_value_t = RateLimit::PER_ACTOR.per_second)]
    rate_per_actor: f64,
    /// Burst of the per-agent limit.
    #[arg(long, value_name = "N", default_value_t = RateLimit::PER_ACTOR.burst)]
    burst_per_actor: u32,
    /// How often rate-limited requests are sealed as one summary record per limit
    /// (`10s`, `1m`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    rate_summary_every: std::time::Duration,
}

fn rate(per_second: f64, burst: u32, flag: &str) -> Result<RateLimit> {
    if !per_second.is_finite() || per_second < 0.0 {
        bail!("--{flag} must be a non-negative number of requests per second");
    }
    Ok(RateLimit { per_second, burst })
}

fn read_token(path: &PathBuf, what: &str) -> Result<String> {
    let t = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        bail!("{what} {} is empty", path.display());
    }
    Ok(t.to_owned())
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.open && !args.listen.ip().is_loopback() {
        bail!(
            "--open (no tokens) listens on loopback only, not {}",
            args.listen
        );
    }
    let opts = options(&args)?;
    let tls = opts.tls.clone();
    let cp = ControlPlane::open(&args.dir, opts)
        .with_context(|| format!("cannot open control plane data in {}", args.dir.display()))?;
    let rt = crate::common::runtime()?;
    serve(&rt, cp, args, tls)
}

/// The control plane's options from the flags: tokens, export, TLS, limits.
fn options(args: &Args) -> Result<Options> {
    let mut admin_tokens = Vec::new();
    if let Some(f) = &args.admin_token_file {
        admin_tokens.push(read_token(f, "admin token file")?.into());
    }
    if let Ok(t) = std::env::var("ZT_CP_ADMIN_TOKEN") {
        if !t.trim().is_empty() {
            admin_tokens.push(t.trim().into());
        }
    }
    let export = export(args)?;
    Ok(Options {
        tls: args.tls.server().context("cannot set up TLS")?,
        connections: args.connections.limits(),
        chain_id: args.chain_id.clone(),
        open: args.open,
        admin_tokens,
        export,
        queue: args.queue.max(1),
        unauthenticated_rate: rate(
            args.rate_unauthenticated,
            args.burst_unauthenticated,
            "rate-unauthenticated",
        )?,
        actor_rate: rate(args.rate_per_actor, args.burst_per_actor, "rate-per-actor")?,
        summary_window: args.rate_summary_every,
        decisions: args.db.clone(),
        ..Options::default()
    })
}

/// Where the decisions go after they are sealed: the ingest, its token and TLS.
fn export(args: &Args) -> Result<Option<ExportConfig>> {
    let Some(url) = &args.ingest else {
        return Ok(None);
    };
    let mut cfg = ExportConfig::new(url.clone());
    cfg.service_name = "zt-control-plane".into();
    if let Some(f) = &args.ingest_token_file {
        cfg.token = Some(read_token(f, "ingest token file")?.into());
    }
    cfg.tls = zt_tls::ClientTls::from_files(
        args.ingest_ca.as_ref(),
        args.ingest_cert.as_ref(),
        args.ingest_key.as_ref(),
    );
    // Fail at start-up, not at the first export, when the files are unusable.
    cfg.tls.config().context("cannot set up TLS to ingest")?;
    Ok(Some(cfg))
}

/// Serves until SIGINT or SIGTERM, saying where.
fn serve(
    rt: &tokio::runtime::Runtime,
    cp: ControlPlane,
    args: Args,
    tls: Option<std::sync::Arc<zt_tls::TlsServer>>,
) -> Result<ExitCode> {
    let summary = rt.block_on(async move {
        let listener =
            crate::common::listen(args.listen, tls.is_some(), "control-plane", "").await?;
        // The chain id may come from --chain-id or from the directory's earlier runs: escaped.
        eprintln!(
            "chain {}, key {}, decisions in {}",
            escape(cp.chain_id()),
            escape(cp.key_id()),
            crate::style::store(&cp.decisions_db())
        );
        if let Some(tds) = crate::common::trust_domains_line(tls.as_deref()) {
            eprintln!("mTLS: X.509-SVIDs of {tds} decide who is asking");
        }
        match cp.admin_token_file() {
            Some(p) => eprintln!("admin token in {}", crate::style::path(p)),
            None if args.open => eprintln!("open mode: no tokens (loopback only)"),
            None => {}
        }
        cp.serve(listener, shutdown_signal())
            .await
            .context("serving")
    })?;
    eprintln!(
        "zt-audit control-plane: drained and stopped ({} records this run)",
        summary.decisions
    );
    Ok(ExitCode::SUCCESS)
}
