//! The OTLP/HTTP logs receiver: `POST /v1/logs` into the store.
//!
//! - Content types `application/x-protobuf` and `application/json` (415 otherwise);
//!   `Content-Encoding: gzip` (decompressed with a cap: a gzip bomb is a 413, not an OOM);
//!   400 for an undecodable body, 413 over the body limit, 405 for other methods.
//! - **Durable before 200**: a request is answered only after its envelopes are committed.
//!   One writer thread owns the store and commits whatever requests are queued in one
//!   transaction (group commit: one fsync for many requests).
//! - **Backpressure**: the queue to the writer is bounded; when it is full the answer is 503
//!   with `Retry-After`, which OTLP exporters honour. Memory stays bounded.
//! - **Auth first**: bearer tokens, checked on the headers before a byte of the body is read,
//!   so senders without a token cannot hold request slots with slow or large bodies. The CLI
//!   refuses a non-loopback address without a token.
//! - **TLS** (`Config::tls`, `zt-tls`): the certificate is reloaded when its files change.
//!   With a client CA bundle, every `POST /v1/logs` must come over a connection that
//!   presented a valid X.509-SVID (401 otherwise, with the reason; tokens, when configured,
//!   are checked as well), and each stored or quarantined envelope records the sender's
//!   SPIFFE ID (`sender`, receipt metadata beside `source`, not part of the envelope).
//! - **Hostile payloads**: a request is counted before it is decoded ([`crate::scan`]):
//!   more LogRecords, ResourceLogs or ScopeLogs than [`Limits`] allows, or a decoded size
//!   over it, is a 413 naming the limit, refused before anything is allocated for it.
//!   Decompression and decoding run on blocking threads, at most [`Config::max_decoding`]
//!   at once (a semaphore), so memory for decoding is bounded by that many requests
//!   whatever the number of connections.
//! - `/healthz`, `/metrics` (Prometheus text format).
//! - [`serve`] takes its listener and a shutdown future: stop accepting, finish in-flight
//!   requests, commit, return.

use std::future::Future;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot, Semaphore};
use zt_core::keyring::Keyring;
use zt_core::secret::Secret;
use zt_store::{Store, StoreError};
use zt_tls::{PeerIdentity, TlsServer};

use crate::otlp::{self, DecodeError};
use crate::pipeline::{Pipeline, Rejections, Rows, Verdict};
use crate::scan::{self, Limits, ScanError};

/// Receiver settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body, compressed or not (default 16 MiB).
    pub body_limit: usize,
    /// Accepted bearer tokens; empty: no authentication.
    pub tokens: Vec<Secret>,
    /// Requests waiting for the writer before 503 (default 256).
    pub queue: usize,
    /// Requests in flight at once (default 64).
    pub max_in_flight: usize,
    /// Per-request timeout (default 30 s).
    pub request_timeout: Duration,
    /// Most requests per commit (default 128).
    pub max_group: usize,
    /// Serve over TLS; with a client CA bundle, require an X.509-SVID (module docs).
    pub tls: Option<Arc<TlsServer>>,
    /// What a connection may hold: connections in all and per source address, header and
    /// idle timeouts (see [`zt_tls::connections`]).
    pub connections: zt_tls::ConnectionLimits,
    /// What one request may hold (LogRecords, ResourceLogs, ScopeLogs, decoded size).
    pub limits: Limits,
    /// Requests decompressed and decoded at once (default: the number of CPUs).
    pub max_decoding: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: 16 << 20,
            tokens: Vec::new(),
            queue: 256,
            max_in_flight: 64,
            request_timeout: Duration::from_secs(30),
            max_group: 128,
            tls: None,
            connections: zt_tls::ConnectionLimits::default(),
            limits: Limits::default(),
            max_decoding: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
    forks: AtomicU64,
    ignored: AtomicU64,
    requests_ok: AtomicU64,
    requests_client_error: AtomicU64,
    requests_unauthenticated: AtomicU64,
    requests_over_limit: AtomicU64,
    requests_busy: AtomicU64,
    commits: AtomicU64,
    queue_depth: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Metrics {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if s <= *b {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let c = |o: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        c(
            &mut o,
            "zt_ingest_envelopes_accepted_total",
            "Envelopes stored.",
            &self.accepted,
        );
        c(
            &mut o,
            "zt_ingest_envelopes_rejected_total",
            "Envelopes quarantined (unreadable or hash mismatch).",
            &self.rejected,
        );
        c(
            &mut o,
            "zt_ingest_envelopes_duplicate_total",
            "Envelopes already stored (no-op).",
            &self.duplicates,
        );
        c(
            &mut o,
            "zt_ingest_envelopes_fork_total",
            "Stored envelopes flagged as forks.",
            &self.forks,
        );
        c(
            &mut o,
            "zt_ingest_log_records_ignored_total",
            "LogRecords that are not audit envelopes.",
            &self.ignored,
        );
        c(
            &mut o,
            "zt_ingest_commits_total",
            "Store transactions committed.",
            &self.commits,
        );
        c(
            &mut o,
            "zt_ingest_store_statements_total",
            "Statements sent to a PostgreSQL store (0 on SQLite).",
            &AtomicU64::new(zt_store::postgres_statements()),
        );
        let _ = writeln!(o, "# HELP zt_ingest_requests_total Requests by outcome.\n# TYPE zt_ingest_requests_total counter");
        for (label, v) in [
            ("ok", &self.requests_ok),
            ("client_error", &self.requests_client_error),
            ("unauthenticated", &self.requests_unauthenticated),
            ("over_limit", &self.requests_over_limit),
            ("busy", &self.requests_busy),
        ] {
            let _ = writeln!(
                o,
                "zt_ingest_requests_total{{outcome=\"{label}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP zt_ingest_queue_depth Requests waiting for the writer.\n# TYPE zt_ingest_queue_depth gauge\nzt_ingest_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        let _ = writeln!(o, "# HELP zt_ingest_request_duration_seconds POST /v1/logs latency.\n# TYPE zt_ingest_request_duration_seconds histogram");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "zt_ingest_request_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "zt_ingest_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        #[allow(clippy::cast_precision_loss, reason = "a metric")]
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(o, "zt_ingest_request_duration_seconds_sum {sum}\nzt_ingest_request_duration_seconds_count {count}");
        o
    }
}

struct Job {
    envelopes: Vec<Vec<u8>>,
    unusable: Vec<(Vec<u8>, String)>,
    source: String,
    sender: Option<String>,
    /// The group's outcome: what this request's envelopes came to, or the store's error
    /// (shared by every request of the group that failed to commit).
    reply: oneshot::Sender<Result<Rejections, Arc<StoreError>>>,
}

struct AppState {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    config: Config,
    /// Permits to decompress and decode: the memory a burst of hostile requests can take is
    /// this many requests' worth, not one per connection.
    decoding: Arc<Semaphore>,
    /// The listener's connections and their counts.
    connections: Arc<zt_tls::Connections>,
}

/// What a server run did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Envelopes stored over the run.
    pub accepted: u64,
    /// Envelopes quarantined.
    pub rejected: u64,
}

/// Serves until `shutdown` resolves, then drains: in-flight requests finish and commit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    keyring: Keyring,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Summary> {
    let metrics = Arc::new(Metrics::default());
    let (tx, rx) = mpsc::channel::<Job>(config.queue.max(1));
    let writer_metrics = Arc::clone(&metrics);
    let max_group = config.max_group.max(1);
    let writer = std::thread::Builder::new()
        .name("zt-ingest-writer".into())
        .spawn(move || writer_loop(rx, store, keyring, writer_metrics, max_group))?;
    let connections = zt_tls::Connections::new(config.connections);
    let state = Arc::new(AppState {
        connections: Arc::clone(&connections),
        tx,
        metrics: Arc::clone(&metrics),
        config: config.clone(),
        decoding: Arc::new(Semaphore::new(config.max_decoding.max(1))),
    });
    let app = Router::new()
        .route("/v1/logs", post(export_logs))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_handler))
        // No `DefaultBodyLimit`: the handler reads the body itself, after the token, with
        // `config.body_limit`.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            config.max_in_flight.max(1),
        ))
        .with_state(state);
    // Plain `reqwest::Client::new()`s in this process need a rustls provider (see
    // zt_tls::install_default_provider).
    zt_tls::install_default_provider();
    zt_tls::serve(
        listener,
        app,
        config.tls.clone(),
        Arc::clone(&connections),
        shutdown,
    )
    .await?;
    // The router (and with it the queue's sender) is gone: the writer drains and stops.
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(std::io::Error::other)?
        .map_err(|_| std::io::Error::other("the store writer panicked"))?;
    Ok(Summary {
        accepted: metrics.accepted.load(Ordering::Relaxed),
        rejected: metrics.rejected.load(Ordering::Relaxed),
    })
}

async fn metrics_handler(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let depth = st.config.queue.saturating_sub(st.tx.capacity());
    st.metrics
        .queue_depth
        .store(depth as u64, Ordering::Relaxed);
    let mut body = st.metrics.render();
    body.push_str(&st.connections.render_metrics());
    if let Some(tls) = &st.config.tls {
        body.push_str(&tls.render_metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

fn reply(status: StatusCode, json: bool, body: Vec<u8>) -> Response {
    let ct = if json {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(ct))],
        body,
    )
        .into_response()
}

fn authorized(tokens: &[Secret], headers: &HeaderMap) -> bool {
    if tokens.is_empty() {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    // Compare every token in full, whatever matches: no early exit on a prefix.
    tokens
        .iter()
        .fold(false, |ok, t| ok | t.matches(given.trim().as_bytes()))
}

async fn export_logs(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let resp = handle(&st, req).await;
    let m = &st.metrics;
    match resp.status() {
        StatusCode::OK => m.requests_ok.fetch_add(1, Ordering::Relaxed),
        StatusCode::SERVICE_UNAVAILABLE => m.requests_busy.fetch_add(1, Ordering::Relaxed),
        StatusCode::UNAUTHORIZED => m.requests_unauthenticated.fetch_add(1, Ordering::Relaxed),
        StatusCode::PAYLOAD_TOO_LARGE => m.requests_over_limit.fetch_add(1, Ordering::Relaxed),
        _ => m.requests_client_error.fetch_add(1, Ordering::Relaxed),
    };
    m.observe(started.elapsed());
    resp
}

/// With trust bundles, the sender's SPIFFE ID, or why the request is refused.
fn sender(st: &AppState, peer: Option<&PeerIdentity>) -> Result<Option<String>, String> {
    if st
        .config
        .tls
        .as_ref()
        .and_then(|t| t.trust_bundles())
        .is_none()
    {
        return Ok(None);
    }
    match peer {
        Some(PeerIdentity::Spiffe(id)) => Ok(Some(id.to_string())),
        Some(PeerIdentity::Refused(why)) => Err(format!("client certificate refused: {why}")),
        Some(PeerIdentity::Anonymous) | None => {
            Err("a client certificate (X.509-SVID) is required".to_owned())
        }
    }
}

/// A refusal in the request's encoding.
struct Refusal {
    status: StatusCode,
    /// gRPC code of the `google.rpc.Status` body.
    code: i32,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, 8, message)
    }

    fn render(self, json: bool) -> Response {
        reply(
            self.status,
            json,
            otlp::status(json, self.code, &self.message),
        )
    }
}

/// The body, read only now that the headers were accepted, up to `limit` bytes.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Refusal> {
    let over = || Refusal::too_large(format!("body over the {limit}-byte limit"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Refused on its word, before any of it is read.
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(over());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let hit_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if hit_limit {
            over()
        } else {
            Refusal::new(StatusCode::BAD_REQUEST, 3, format!("reading the body: {e}"))
        }
    })
}

/// Decompresses (bounded) and decodes (counted first); runs on a blocking thread under a
/// decoding permit.
fn decode(
    body: &Bytes,
    gzip: bool,
    json: bool,
    limit: usize,
    limits: &Limits,
) -> Result<otlp::Extracted, Refusal> {
    let over = |e: ScanError| Refusal::too_large(e.to_string());
    let inflated;
    let raw: &[u8] = if gzip {
        // Inflated in steps, the prefix counted at every doubling (at most twice the bytes
        // scanned in all): a bomb is refused once its first KiB pass a limit, long before
        // the rest is inflated.
        let mut out = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
        let mut checkpoint = 64 << 10;
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = dec
                .read(&mut chunk)
                .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, 3, format!("gzip body: {e}")))?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            if out.len() > limit {
                return Err(Refusal::too_large(format!(
                    "decompressed body over the {limit}-byte limit"
                )));
            }
            if out.len() >= checkpoint {
                // The JSON estimate of a prefix is at most the whole text's too.
                let counted = if json {
                    scan::json(&out, limits)
                } else {
                    scan::protobuf_prefix(&out, limits)
                };
                match counted {
                    Err(e @ ScanError::OverLimit { .. }) => return Err(over(e)),
                    Err(ScanError::Malformed(m)) => {
                        return Err(Refusal::new(StatusCode::BAD_REQUEST, 3, m))
                    }
                    Ok(_) => checkpoint = out.len().saturating_mul(2),
                }
            }
        }
        inflated = out;
        &inflated
    } else {
        body
    };
    let decoded = if json {
        otlp::from_json(raw, limits)
    } else {
        otlp::from_protobuf(raw, limits)
    };
    decoded.map_err(|e| match e {
        DecodeError::Malformed(m) => Refusal::new(StatusCode::BAD_REQUEST, 3, m),
        e @ DecodeError::OverLimit(_) => Refusal::too_large(e.to_string()),
    })
}

async fn handle(st: &AppState, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    // The verified peer certificate's identity, set by zt-tls for this connection: never a
    // header anyone could send.
    let peer = parts.extensions.get::<PeerIdentity>();
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json = match ctype.as_str() {
        "application/x-protobuf" | "application/protobuf" => false,
        "application/json" => true,
        _ => {
            return reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                true,
                otlp::status(
                    true,
                    3,
                    "Content-Type must be application/x-protobuf or application/json",
                ),
            )
        }
    };
    // The token before the body: a sender without one costs a header parse, and its body
    // is never read (the connection is closed after the answer).
    if !authorized(&st.config.tokens, headers) {
        let mut r = reply(
            StatusCode::UNAUTHORIZED,
            json,
            otlp::status(json, 16, "missing or wrong bearer token"),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let sender = match sender(st, peer) {
        Ok(s) => s,
        Err(why) => return reply(StatusCode::UNAUTHORIZED, json, otlp::status(json, 16, &why)),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let gzip = match encoding.as_str() {
        "identity" | "" => false,
        "gzip" => true,
        other => {
            return reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json,
                otlp::status(
                    json,
                    3,
                    &format!("Content-Encoding {other:?} is not supported (gzip or none)"),
                ),
            )
        }
    };
    let limit = st.config.body_limit;
    let body = match read_body(body, headers, limit).await {
        Ok(b) => b,
        Err(r) => return r.render(json),
    };
    // Waiting here holds only the (compressed) body; what decoding allocates is bounded by
    // the permits. A closed semaphore cannot happen (it is never closed): refuse anyway.
    let Ok(permit) = Arc::clone(&st.decoding).acquire_owned().await else {
        return Refusal::new(StatusCode::SERVICE_UNAVAILABLE, 14, "shutting down").render(json);
    };
    let limits = st.config.limits;
    let decoded = tokio::task::spawn_blocking(move || {
        let out = decode(&body, gzip, json, limit, &limits);
        drop(permit);
        out
    })
    .await;
    let extracted = match decoded {
        Ok(Ok(x)) => x,
        Ok(Err(r)) => return r.render(json),
        Err(_) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json,
                otlp::status(json, 13, "decoder failed"),
            )
        }
    };
    st.metrics
        .ignored
        .fetch_add(extracted.ignored, Ordering::Relaxed);
    if extracted.envelopes.is_empty() && extracted.unusable.is_empty() {
        return reply(StatusCode::OK, json, otlp::response(json, 0, ""));
    }
    let (tx, rx) = oneshot::channel();
    let job = Job {
        envelopes: extracted.envelopes,
        unusable: extracted.unusable,
        source: "otlp".into(),
        sender,
        reply: tx,
    };
    if st.tx.try_send(job).is_err() {
        let mut r = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json,
            otlp::status(json, 14, "ingest queue is full; retry"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    match rx.await {
        Ok(Ok(res)) => {
            let msg = if res.count == 0 {
                String::new()
            } else {
                let mut m = res.first_reasons.join("; ");
                if res.count > res.first_reasons.len() as u64 {
                    m.push_str("; ...");
                }
                m
            };
            reply(StatusCode::OK, json, otlp::response(json, res.count, &msg))
        }
        Ok(Err(e)) => {
            let mut r = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json,
                otlp::status(json, 14, &format!("store: {e}")),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        Err(_) => {
            let mut r = reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json,
                otlp::status(json, 14, "shutting down"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// A group of requests whose envelopes have been checked, ready to commit.
struct Checked {
    jobs: Vec<Job>,
    verdicts: Vec<Vec<Verdict>>,
}

fn writer_loop(
    mut rx: mpsc::Receiver<Job>,
    mut store: Store,
    keyring: Keyring,
    metrics: Arc<Metrics>,
    max_group: usize,
) {
    let pipeline = Pipeline::new(&keyring);
    let check = |jobs: Vec<Job>| -> Option<Checked> {
        if jobs.is_empty() {
            return None;
        }
        // Signatures dominate: check every queued request's envelopes in parallel.
        let verdicts = jobs
            .par_iter()
            .map(|j| {
                j.envelopes
                    .par_iter()
                    .map(|raw| pipeline.check(raw))
                    .collect()
            })
            .collect();
        Some(Checked { jobs, verdicts })
    };
    // Pipeline: commit group N on this thread while group N+1 is checked on the others.
    let mut ready: Option<Checked> = None;
    loop {
        let mut jobs = Vec::new();
        if ready.is_none() {
            match rx.blocking_recv() {
                Some(j) => jobs.push(j),
                None => break,
            }
        }
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let to_commit = ready.take();
        let (next, ()) = rayon::join(
            || check(jobs),
            || {
                if let Some(c) = to_commit {
                    commit(&mut store, c, &metrics);
                }
            },
        );
        ready = next;
    }
}

fn commit(store: &mut Store, checked: Checked, metrics: &Metrics) {
    let Checked { jobs, verdicts } = checked;
    let now = zt_store::now_ms();
    let mut rows = Rows::default();
    let per_job: Vec<Rejections> = jobs
        .iter()
        .zip(&verdicts)
        .map(|(job, vs)| {
            rows.add(
                &job.envelopes,
                vs,
                &job.unusable,
                &job.source,
                job.sender.as_deref(),
                now,
            )
        })
        .collect();
    let outcome = store.insert_batch(&rows.accepted, &rows.rejected);
    drop(rows);
    match outcome {
        Ok(o) => {
            metrics.commits.fetch_add(1, Ordering::Relaxed);
            metrics.accepted.fetch_add(o.inserted, Ordering::Relaxed);
            metrics
                .duplicates
                .fetch_add(o.duplicates, Ordering::Relaxed);
            metrics.forks.fetch_add(o.forks, Ordering::Relaxed);
            metrics.rejected.fetch_add(o.quarantined, Ordering::Relaxed);
            for (job, res) in jobs.into_iter().zip(per_job) {
                let _ = job.reply.send(Ok(res));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for job in jobs {
                let _ = job.reply.send(Err(Arc::clone(&e)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_token() {
        let c = Config {
            tokens: vec!["s3cret-exporter-token".into()],
            ..Config::default()
        };
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cret-exporter-token"), "{shown}");
    }
}
