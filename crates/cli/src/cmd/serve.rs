//! `zt-audit serve`: the OTLP/HTTP logs receiver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use zt_core::secret::Secret;
use zt_ingest::scan::Limits;
use zt_ingest::server::{self, Config};
use zt_store::Store;

use crate::common::load_keyring;

/// Receive audit envelopes over OTLP/HTTP (`POST /v1/logs`, protobuf or JSON, gzip) into a
/// store. Answers 200 only after the envelopes are committed. SIGINT/SIGTERM: stop accepting,
/// drain, commit, exit 0.
///
/// Tokens: `--token-file` (one per line) and/or env `ZT_AUDIT_TOKENS` (comma-separated);
/// clients send `Authorization: Bearer TOKEN`. A non-loopback address needs a token or
/// `--client-ca` unless `--insecure`.
///
/// TLS: `--tls-cert`/`--tls-key` (reloaded when the files change). With `--client-ca`, every
/// request must come with a valid X.509-SVID (401 otherwise) and each envelope is stored with
/// its sender's SPIFFE ID.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store (created if missing): a SQLite file, or a PostgreSQL database
    /// (`postgres://USER@HOST:PORT/DB`) that any number of receivers write at once.
    #[arg(long, value_name = "PATH|URL")]
    db: zt_store::Location,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    /// Keyring for the signature status of stored envelopes.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Bearer tokens, one per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without a token (behind a trusted proxy only).
    #[arg(long)]
    insecure: bool,
    /// Largest request body in bytes, compressed or decompressed.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    body_limit: usize,
    /// Requests waiting for the store writer before the answer is 503 + Retry-After.
    #[arg(long, value_name = "N", default_value_t = 256)]
    queue: usize,
    /// Most LogRecords in one request; more is a 413, refused before decoding.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_log_records)]
    max_log_records: u64,
    /// Most memory one request may take once decoded (estimated before decoding); more is a
    /// 413.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_decoded_bytes)]
    max_decoded_bytes: u64,
    /// Requests decompressed and decoded at once (default: the number of CPUs); the others
    /// wait, holding only their compressed bodies.
    #[arg(long, value_name = "N")]
    max_decoding: Option<usize>,
    /// `PRAGMA synchronous=NORMAL` instead of FULL: faster, loses the last commits on power
    /// loss (not on a process crash).
    #[arg(long)]
    relaxed_durability: bool,
    #[command(flatten)]
    trust: crate::common::TrustArgs,
    #[command(flatten)]
    tls: crate::common::TlsArgs,
    #[command(flatten)]
    connections: crate::common::ConnectionArgs,
}

fn tokens(file: Option<&PathBuf>) -> Result<Vec<Secret>> {
    let mut out = Vec::new();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read token file {}", f.display()))?;
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(Secret::from),
        );
        if out.is_empty() {
            bail!("token file {} holds no token", f.display());
        }
    }
    if let Ok(env) = std::env::var("ZT_AUDIT_TOKENS") {
        out.extend(
            env.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Secret::from),
        );
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let ring = load_keyring(args.keyring.as_ref(), &[])?;
    let tokens = tokens(args.token_file.as_ref())?;
    if tokens.is_empty()
        && !args.tls.asks_for_svids()
        && !args.listen.ip().is_loopback()
        && !args.insecure
    {
        bail!(
            "refusing to listen on {} without a token: give --token-file (or ZT_AUDIT_TOKENS), --client-ca or --trust-bundle, or --insecure behind a trusted proxy",
            args.listen
        );
    }
    let tls = args.tls.server().context("cannot set up TLS")?;
    let mut store = Store::connect(&args.db)
        .with_context(|| format!("cannot open store {}", crate::style::store(&args.db)))?;
    store.set_trust(args.trust.policy());
    if args.relaxed_durability {
        store.set_synchronous(false)?;
    }
    let defaults = Config::default();
    let config = Config {
        body_limit: args.body_limit,
        tokens,
        queue: args.queue.max(1),
        tls: tls.clone(),
        connections: args.connections.limits(),
        limits: Limits {
            max_log_records: args.max_log_records,
            max_decoded_bytes: args.max_decoded_bytes,
            ..Limits::default()
        },
        max_decoding: args.max_decoding.unwrap_or(defaults.max_decoding).max(1),
        ..defaults
    };
    let rt = crate::common::runtime()?;
    let summary = rt.block_on(async move {
        let listener =
            crate::common::listen(args.listen, tls.is_some(), "serve", "/v1/logs").await?;
        eprintln!(
            "store {}, {} token(s)",
            crate::style::store(&args.db),
            config.tokens.len()
        );
        if let Some(tds) = crate::common::trust_domains_line(tls.as_deref()) {
            eprintln!("X.509-SVIDs required, trust domains: {tds}");
        }
        server::serve(
            listener,
            store,
            ring,
            config,
            crate::common::shutdown_signal(),
        )
        .await
        .context("serving")
    })?;
    eprintln!(
        "zt-audit serve: drained and stopped ({} envelopes stored, {} quarantined)",
        summary.accepted, summary.rejected
    );
    Ok(ExitCode::SUCCESS)
}
