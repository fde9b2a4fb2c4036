//! What several subcommands share, once: the runtime, the flag groups (keys, trust, TLS,
//! connections), durations, the shutdown signal. A leaf: it imports no subcommand.

use std::time::Duration;

/// Exit code 2: usage or runtime error.
pub const EXIT_ERROR: u8 = 2;

/// Exit code when the reader closed standard output before everything was written (`| head`):
/// what a process killed by SIGPIPE reports (128 + 13). Never 0: a verdict nobody saw is not a
/// pass.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Binds `addr` and prints the first line of stdout, which scripts and tests read the bound
/// address from: `zt-audit NAME: listening on SCHEME://ADDR PATH`.
pub async fn listen(
    addr: std::net::SocketAddr,
    tls: bool,
    name: &str,
    path: &str,
) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let scheme = if tls { "https" } else { "http" };
    println!("zt-audit {name}: listening on {scheme}://{bound}{path}");
    Ok(listener)
}

/// How a report is written: for people, or as JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people: everything that comes from evidence escaped.
    Text,
    /// JSON (pretty), values exact.
    Json,
}

/// Writes `report` to standard output in `format`: JSON as it serializes, text by `text`.
pub fn print_report<T: serde::Serialize>(
    format: Format,
    report: &T,
    text: impl FnOnce(&mut std::io::StdoutLock<'static>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, report).context("writing the report")?;
            writeln!(out)?;
        }
        Format::Text => text(&mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// The async runtime the network subcommands run on (multi-threaded, I/O and timers).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// TLS for a server (`serve`, `control-plane`): certificate, key, and the CA bundle that
/// asks clients for X.509-SVIDs.
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (leaf first). Read again when the file
    /// changes (a rotated SVID or ACME certificate), checked at most once a second.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// mTLS: PEM bundle of the CAs client X.509-SVIDs must chain to, each naming its SPIFFE
    /// trust domain with one URI SAN `spiffe://<trust-domain>` (SPIRE's CAs do); an SVID must
    /// be in the trust domain of the CA it chains to. For CAs without that SAN, use
    /// --trust-bundle.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<std::path::PathBuf>,
    /// mTLS: the bundle of trust domain TD (repeatable: one per trust domain, federation):
    /// PEM CA certificates (a SPIFFE URI SAN is not needed) or a SPIFFE bundle (JWK Set,
    /// `use: x509-svid`). An SVID is checked against its own trust domain's bundle only. Read
    /// again when the file changes.
    #[arg(long, value_name = "spiffe://TD=FILE", requires = "tls_cert")]
    pub trust_bundle: Vec<zt_tls::BundleSource>,
}

impl TlsArgs {
    /// The loaded TLS server, or None for plain HTTP.
    pub fn server(&self) -> anyhow::Result<Option<std::sync::Arc<zt_tls::TlsServer>>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut files = zt_tls::ServerFiles::new(cert, key);
        if let Some(ca) = &self.client_ca {
            files = files.client_ca(ca);
        }
        files.trust.extend(self.trust_bundle.iter().cloned());
        Ok(Some(std::sync::Arc::new(zt_tls::TlsServer::load(&files)?)))
    }

    /// Whether client X.509-SVIDs are asked for (a client CA or a trust bundle).
    pub fn asks_for_svids(&self) -> bool {
        self.client_ca.is_some() || !self.trust_bundle.is_empty()
    }
}

/// The trust domains a server holds bundles of, for its start-up line:
/// `td-a.test (1 CA), td-b.test (2 CAs, sequence 7)`; None without client certificates.
pub fn trust_domains_line(tls: Option<&zt_tls::TlsServer>) -> Option<String> {
    let bundles = tls?.trust_bundles()?;
    let parts: Vec<String> = bundles
        .domains()
        .iter()
        .map(|d| {
            let cas = if d.cas == 1 {
                "1 CA".to_owned()
            } else {
                format!("{} CAs", d.cas)
            };
            match d.sequence {
                Some(s) => format!("{} ({cas}, sequence {s})", d.trust_domain),
                None => format!("{} ({cas})", d.trust_domain),
            }
        })
        .collect();
    Some(zt_core::text::escape(&parts.join(", ")).into_owned())
}

/// What a connection to a server (`serve`, `control-plane`) may hold, TLS or not: past a
/// limit a connection is closed at accept; past a timeout it is closed and counted
/// (`zt_connections_*` on `/metrics`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// How long a client may take to send a request's head, from its first byte (a new
    /// connection: from its accept or TLS handshake).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::common::parse_duration)]
    pub header_timeout: std::time::Duration,
    /// How long a kept-alive connection may wait between an answer and the next request.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::common::parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// Connections open at once, all clients together [default: the descriptor limit
    /// (`ulimit -n`) less 128].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Connections open at once from one address (an IPv6 /64) [default: 256, or a quarter
    /// of --max-connections when less].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: Option<u32>,
}

impl ConnectionArgs {
    /// The limits.
    pub fn limits(&self) -> zt_tls::ConnectionLimits {
        let max_connections = self
            .max_connections
            .map_or_else(zt_tls::connections::default_max_connections, |n| n as usize);
        zt_tls::ConnectionLimits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections,
            max_per_address: self.max_connections_per_address.map_or_else(
                || zt_tls::connections::default_max_per_address(max_connections),
                |n| n as usize,
            ),
        }
    }
}

/// Which records count in a store (`serve`, `import`): the trust policy's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// Let unsigned (and mock-signed) records of this chain be part of its main line: heads,
    /// anchors, proofs (repeatable; a v1 `chain_id` or a lineage chain name). Without it only
    /// records whose signature verified under the keyring count; the rest are kept as
    /// evidence, off every main line.
    #[arg(long = "allow-unsigned-chain", value_name = "CHAIN")]
    pub allow_unsigned_chain: Vec<String>,
}

impl TrustArgs {
    /// The policy.
    pub fn policy(&self) -> zt_core::chain::TrustPolicy {
        use zt_core::chain::{AllowUnsigned, TrustPolicy};
        TrustPolicy {
            allow_unsigned: if self.allow_unsigned_chain.is_empty() {
                AllowUnsigned::Nowhere
            } else {
                AllowUnsigned::Chains(self.allow_unsigned_chain.clone())
            },
        }
    }
}

/// The trusted keys a command checks signatures with: the trust root the person running it
/// gives, never one read from the evidence.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Keyring JSON: {"keys":[{"key_id","public_key_pem","not_before"?,"not_after"?,"revoked_at"?}]}.
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<std::path::PathBuf>,
    /// A trusted key given directly, as KEY_ID=PUBLIC_KEY.pem (repeatable).
    #[arg(long = "key", value_name = "ID=PEM")]
    pub keys: Vec<String>,
}

impl KeyArgs {
    /// Whether any key was given.
    pub fn given(&self) -> bool {
        self.keyring.is_some() || !self.keys.is_empty()
    }

    /// The keyring they make ([`load_keyring`]).
    pub fn load(&self) -> anyhow::Result<zt_core::keyring::Keyring> {
        load_keyring(self.keyring.as_ref(), &self.keys)
    }
}

/// The trusted keys from `--keyring FILE` and `--key ID=PEM` flags (both optional; an empty
/// keyring verifies nothing).
pub fn load_keyring(
    path: Option<&std::path::PathBuf>,
    keys: &[String],
) -> anyhow::Result<zt_core::keyring::Keyring> {
    use anyhow::{bail, Context};
    use zt_core::crypto::PublicKey;
    use zt_core::keyring::{KeyEntry, Keyring};
    let mut ring = match path {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("cannot read keyring {}", p.display()))?;
            Keyring::from_json(&bytes).with_context(|| format!("keyring {}", p.display()))?
        }
        None => Keyring::new(),
    };
    for spec in keys {
        let Some((id, file)) = spec.split_once('=') else {
            bail!("--key {spec:?}: expected KEY_ID=PUBLIC_KEY.pem");
        };
        if id.is_empty() {
            bail!("--key {spec:?}: the key id is empty");
        }
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("--key {id}: cannot read {file}"))?;
        let pk = PublicKey::from_pem(&pem).with_context(|| format!("--key {id}: {file}"))?;
        ring.insert(KeyEntry::new(id, pk))
            .with_context(|| format!("--key {id}"))?;
    }
    Ok(ring)
}

/// `90s`, `15m`, `2h`, `500ms`, or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 10m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unit must be ms, s, m or h")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// SIGINT or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
