//! The TLS side of a server: its configuration ([`TlsServer`]) and the accept loop that
//! serves an axum router over it ([`serve`]).
//!
//! Per connection: the TLS handshake (tokio-rustls, bounded by [`HANDSHAKE_TIMEOUT`]) runs in
//! the connection's own task, so a slow or hostile client never holds up `accept`. A failed
//! handshake is counted by reason (`/metrics`) and, when rustls refused something (an expired
//! or unknown client certificate, say), written to stderr with the reason: the refused client
//! never reaches a handler, so this is where it shows. Then the peer's identity
//! ([`PeerIdentity`]) is worked out once and put on every request of the connection as an
//! extension, beside axum's `ConnectInfo<SocketAddr>`; hyper serves HTTP/1.1.
//!
//! Shutdown is axum's: stop accepting, let each connection finish the request it is on, close
//! idle ones, and return when the last one is gone. Handshakes still running are dropped
//! (they carry no request yet).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::UnixTime;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::bundle::BundleSource;
use crate::connections::{Activity, Connections, Outcome, Slot, Watched};
use crate::error::TlsError;
use crate::identity::{PeerIdentity, TrustBundles};
use crate::reload::{ReloadingKey, CHECK_EVERY};
use crate::spiffe::TrustDomain;

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The files a TLS server is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFiles {
    /// Certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// Trust bundles for client certificates (mTLS with X.509-SVIDs), one trust domain or
    /// more; see [`crate::bundle`] and [`crate::identity`] for the rules. Empty: no client
    /// certificates are asked for.
    pub trust: Vec<BundleSource>,
    /// How often the certificate files are looked at, at most.
    pub check_every: Duration,
}

impl ServerFiles {
    /// A certificate and key, no client CA, files looked at once a second at most.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            trust: Vec::new(),
            check_every: CHECK_EVERY,
        }
    }

    /// With a PEM bundle of CAs that each name their trust domain (`--client-ca`).
    pub fn client_ca(mut self, bundle: impl Into<PathBuf>) -> Self {
        self.trust.push(BundleSource::SelfNamed(bundle.into()));
        self
    }

    /// With the bundle of trust domain `trust_domain` (`--trust-bundle spiffe://TD=FILE`):
    /// PEM or a SPIFFE bundle.
    pub fn trust_bundle(mut self, trust_domain: TrustDomain, path: impl Into<PathBuf>) -> Self {
        self.trust.push(BundleSource::Domain {
            trust_domain,
            path: path.into(),
        });
        self
    }
}

/// Why a handshake failed, as counted in `/metrics`.
const FAILURES: [&str; 9] = [
    "expired",
    "not_yet_valid",
    "unknown_issuer",
    "bad_certificate",
    "no_certificate",
    "protocol",
    "io",
    "timeout",
    "other",
];

#[derive(Debug, Default)]
struct Counters {
    handshakes: AtomicU64,
    failures: [AtomicU64; FAILURES.len()],
    svids: AtomicU64,
    refused: AtomicU64,
}

/// Stderr lines about refused peers, at most this many per ten seconds: a flood of bad
/// handshakes is counted in full but not written out in full.
const LOG_BURST: u64 = 20;

#[derive(Debug)]
struct LogLimit {
    /// The window's start (None: no line yet) and the lines in it.
    window: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    const fn new() -> Self {
        Self {
            window: Mutex::new((None, 0)),
        }
    }

    fn allow(&self) -> bool {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if w.0.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *w = (Some(Instant::now()), 0);
        }
        w.1 += 1;
        w.1 <= LOG_BURST
    }
}

/// A loaded TLS server configuration: its reloading certificate, its client CA bundle, and
/// the counters of what its handshakes did.
pub struct TlsServer {
    acceptor: TlsAcceptor,
    key: Arc<ReloadingKey>,
    bundles: Option<Arc<TrustBundles>>,
    counters: Counters,
    log: LogLimit,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("key", &self.key)
            .field("bundles", &self.bundles)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Reads the files and builds the configuration (AWS-LC, TLS 1.2 and 1.3, HTTP/1.1).
    /// With a client CA bundle, client certificates are asked for but optional, so bearer
    /// tokens keep working beside SVIDs; a certificate that is presented must verify.
    pub fn load(files: &ServerFiles) -> Result<Self, TlsError> {
        let provider = crate::provider::provider();
        let key = Arc::new(
            ReloadingKey::load(&files.cert, &files.key, Arc::clone(&provider))?
                .check_every(files.check_every),
        );
        let bundles = if files.trust.is_empty() {
            None
        } else {
            Some(Arc::new(
                TrustBundles::load(&files.trust, Arc::clone(&provider))?
                    .check_every(files.check_every),
            ))
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &bundles {
            Some(b) => builder.with_client_cert_verifier(Arc::clone(b) as _),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::clone(&key) as _);
        // axum serves HTTP/1.1 only here; saying so keeps clients from trying h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            key,
            bundles,
            counters: Counters::default(),
            log: LogLimit::new(),
        })
    }

    /// The trust bundles, when client certificates are asked for.
    pub fn trust_bundles(&self) -> Option<&TrustBundles> {
        self.bundles.as_deref()
    }

    /// The server's certificate and key, reloaded when their files change.
    pub fn key(&self) -> &ReloadingKey {
        &self.key
    }

    /// Prometheus text for the server's `/metrics`: handshakes, failures by reason, SVIDs
    /// accepted and refused, certificate reloads.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.counters;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP zt_tls_handshakes_total TLS handshakes completed.\n# TYPE zt_tls_handshakes_total counter\nzt_tls_handshakes_total {}",
            c.handshakes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP zt_tls_handshake_failures_total TLS handshakes that failed, by reason.\n# TYPE zt_tls_handshake_failures_total counter"
        );
        for (name, v) in FAILURES.iter().zip(&c.failures) {
            let _ = writeln!(
                o,
                "zt_tls_handshake_failures_total{{reason=\"{name}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP zt_tls_client_identities_total Client certificates by outcome of the SPIFFE checks.\n# TYPE zt_tls_client_identities_total counter\nzt_tls_client_identities_total{{outcome=\"svid\"}} {}\nzt_tls_client_identities_total{{outcome=\"refused\"}} {}",
            c.svids.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP zt_tls_certificate_reloads_total Certificate files taken in again, by outcome.\n# TYPE zt_tls_certificate_reloads_total counter\nzt_tls_certificate_reloads_total{{outcome=\"ok\"}} {}\nzt_tls_certificate_reloads_total{{outcome=\"failed\"}} {}",
            self.key.reloads(),
            self.key.reload_failures()
        );
        if let Some(b) = &self.bundles {
            let _ = writeln!(
                o,
                "# HELP zt_tls_trust_bundle_reloads_total Trust bundle files taken in again, by outcome.\n# TYPE zt_tls_trust_bundle_reloads_total counter\nzt_tls_trust_bundle_reloads_total{{outcome=\"ok\"}} {}\nzt_tls_trust_bundle_reloads_total{{outcome=\"failed\"}} {}",
                b.reloads(),
                b.reload_failures()
            );
            let _ = writeln!(
                o,
                "# HELP zt_tls_trust_bundle_cas CA certificates in each trust domain's bundle.\n# TYPE zt_tls_trust_bundle_cas gauge"
            );
            for d in b.domains() {
                let _ = writeln!(
                    o,
                    "zt_tls_trust_bundle_cas{{trust_domain=\"{}\"}} {}",
                    d.trust_domain, d.cas
                );
            }
        }
        o
    }

    fn failed(&self, addr: SocketAddr, reason: &'static str, detail: Option<String>) {
        if let Some(i) = FAILURES.iter().position(|f| *f == reason) {
            self.counters.failures[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(d) = detail {
            if self.log.allow() {
                eprintln!(
                    "zt-tls: TLS handshake from {addr} refused ({reason}): {}",
                    zt_core::text::escape(&d)
                );
            }
        }
    }

    /// The identity of a connection that completed its handshake.
    fn identity(&self, addr: SocketAddr, conn: &rustls::ServerConnection) -> PeerIdentity {
        let (Some(bundle), Some(chain)) = (&self.bundles, conn.peer_certificates()) else {
            return PeerIdentity::Anonymous;
        };
        let id = bundle.identify(chain, UnixTime::now());
        match &id {
            PeerIdentity::Refused(why) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                if self.log.allow() {
                    eprintln!(
                        "zt-tls: client certificate from {addr} refused as an identity: {}",
                        zt_core::text::escape(&why.to_string())
                    );
                }
            }
            PeerIdentity::Spiffe(_) => {
                self.counters.svids.fetch_add(1, Ordering::Relaxed);
            }
            PeerIdentity::Anonymous => {}
        }
        id
    }
}

/// Sorts a failed handshake into a [`FAILURES`] reason; the detail is written out only for
/// what rustls refused (a bare disconnect is no news).
fn classify(e: &std::io::Error) -> (&'static str, Option<String>) {
    use rustls::CertificateError as C;
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return ("io", None);
    };
    let reason = match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
            C::UnknownIssuer => "unknown_issuer",
            _ => "bad_certificate",
        },
        rustls::Error::NoCertificatesPresented => "no_certificate",
        rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. }
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::PeerMisbehaved(_)
        | rustls::Error::AlertReceived(_)
        | rustls::Error::InvalidMessage(_) => "protocol",
        _ => "other",
    };
    (reason, Some(tls.to_string()))
}

/// Serves `app` on `listener` until `shutdown`, then drains (see the module docs): over TLS
/// when `tls` is given, plain HTTP/1.1 otherwise; every connection within `connections`'
/// limits (see [`crate::connections`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<TlsServer>>,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors, a connection reset before accept: wait, go on
                // (axum::serve does the same).
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match connections.admit(addr) {
            Ok(s) => s,
            Err(why) => {
                // Closed before a byte is read: the descriptor comes back at once.
                drop(tcp);
                if REFUSALS.allow() {
                    eprintln!(
                        "zt-tls: connection from {addr} refused: {} connections open{} (limit; counted on /metrics)",
                        match why {
                            Outcome::MaxPerAddress => connections.limits().max_per_address,
                            _ => connections.limits().max_connections,
                        },
                        if why == Outcome::MaxPerAddress { " from its address" } else { "" },
                    );
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            tcp,
            addr,
            tls.clone(),
            app.clone(),
            Arc::clone(&connections),
            close_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    drop(close_rx);
    // Tell every connection, then wait until each has dropped its receiver (finished).
    let _ = close_tx.send(());
    close_tx.closed().await;
    Ok(())
}

/// Refused connections written to stderr, at most [`LOG_BURST`] per ten seconds.
static REFUSALS: LogLimit = LogLimit::new();

async fn connection(
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
    tls: Option<Arc<TlsServer>>,
    app: Router,
    connections: Arc<Connections>,
    mut close: tokio::sync::watch::Receiver<()>,
    _slot: Slot,
) {
    let Some(tls) = tls else {
        serve_http(tcp, addr, None, app, &connections, close).await;
        return;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(tcp));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let (reason, detail) = classify(&e);
                tls.failed(addr, reason, detail);
                return;
            }
            Err(_) => {
                tls.failed(addr, "timeout", None);
                return;
            }
        },
        _ = close.changed() => return,
    };
    tls.counters.handshakes.fetch_add(1, Ordering::Relaxed);
    let peer = tls.identity(addr, stream.get_ref().1);
    serve_http(stream, addr, Some(peer), app, &connections, close).await;
}

/// Largest buffered request head (and read buffer): a head past it is refused (431) rather
/// than held. hyper's default is about 400 KiB per connection.
const MAX_BUF: usize = 64 << 10;

/// HTTP/1.1 on an accepted (and, for TLS, handshaken) stream: the peer's identity and address
/// on every request, closed by its watchdog when a head or an idle spell takes too long.
async fn serve_http<S>(
    stream: S,
    addr: SocketAddr,
    peer: Option<PeerIdentity>,
    app: Router,
    connections: &Connections,
    mut close: tokio::sync::watch::Receiver<()>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let watched = Arc::clone(&activity);
    let service = tower::service_fn(move |mut req: Request<Incoming>| {
        if let Some(p) = &peer {
            req.extensions_mut().insert(p.clone());
        }
        req.extensions_mut().insert(ConnectInfo(addr));
        let app = app.clone();
        let turn = Turn::begin(Arc::clone(&watched));
        async move {
            let answer = tower::ServiceExt::oneshot(app, req).await;
            drop(turn);
            answer
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_BUF)
        .serve_connection(
            TokioIo::new(Watched::new(stream, Arc::clone(&activity))),
            TowerToHyperService::new(service),
        );
    tokio::pin!(conn);
    let limits = connections.limits();
    loop {
        // While a request is served its own timeout applies; look again later.
        let at = activity.deadline(&limits).map_or_else(
            || Instant::now() + limits.idle_timeout.min(limits.header_timeout),
            |(at, _)| at,
        );
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = close.changed() => break,
            () = tokio::time::sleep_until(at.into()) => {
                // The connection may have moved on while this slept: ask again.
                if let Some((due, why)) = activity.deadline(&limits) {
                    if due <= Instant::now() {
                        connections.counted(why);
                        return;
                    }
                }
            }
        }
    }
    // Shutting down: finish the request in progress, then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// One request on a connection, from its complete head to its answer (or until dropped).
struct Turn(Arc<Activity>);

impl Turn {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.begun();
        Self(activity)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.answered();
    }
}
