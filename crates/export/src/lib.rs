//! Audit envelopes out over OTLP/HTTP logs, with the real OpenTelemetry SDK
//! (`opentelemetry-otlp`, HTTP protobuf or JSON, optional gzip).
//!
//! One envelope is one LogRecord: event name `zt.audit.decision`, body the envelope's JSON text
//! unchanged (what `zt-audit serve` expects, see its docs). The receiver is idempotent, so
//! sending an envelope twice is harmless and a failed batch is simply sent again.
//!
//! Beside the body, attributes a SIEM or an OTel pipeline can index without parsing it
//! ([`attributes`]): `zt.*` (chain, seq, hash, decision, actor, action, resource, the
//! determining Cedar policy ids) and, for an agent's decision, the OpenTelemetry GenAI names
//! that fit (`gen_ai.operation.name` = `execute_tool`, `gen_ai.tool.name`, `gen_ai.agent.id`),
//! and `mcp.method.name` when the request came from an MCP tool call (`context.request.mcp`).
//! The attributes are read from the envelope; the envelope itself is never changed.
//!
//! The SDK's own processors log export failures and move on; evidence needs the result. So
//! [`EnvelopeExporter::export`] builds the records through the SDK's logger, captures them with
//! a processor of its own and hands them to the OTLP exporter as one batch, returning its
//! result. [`Backoff`] paces retries. Callers own the retry loop and the outbox: the control
//! plane reads its durable chain, the guarded client a bounded in-memory queue.
//!
//! `export` blocks (the exporter uses reqwest's blocking client): call it from a plain thread,
//! never from an async runtime's worker.
//!
//! `https://` endpoints use rustls through `zt-tls` ([`ExportConfig::tls`]): the CAs to trust
//! (the OTel `certificate` setting) and, for mTLS, a client certificate and key (OTel's
//! `client_certificate` / `client_key`; an X.509-SVID, reloaded when its files change). The
//! SDK's `OTEL_EXPORTER_OTLP_*CERTIFICATE*` variables are not read: what is trusted is given
//! here. Verification cannot be turned off.
//!
//! ```no_run
//! use zt_export::{EnvelopeExporter, ExportConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = EnvelopeExporter::new(&ExportConfig::new("http://127.0.0.1:4318/v1/logs"))?;
//! exporter.export(&[r#"{"version":1,"chain_id":"cp","seq":0}"#])?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{Compression, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, LogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use opentelemetry_sdk::Resource;

/// The LogRecord event name of an audit envelope.
pub const EVENT_NAME: &str = "zt.audit.decision";

/// Export errors. Every one of them means "not delivered, try again later".
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The exporter could not be built (bad endpoint, bad header value).
    #[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
    Build {
        /// The configured endpoint.
        endpoint: String,
        /// What the SDK said.
        reason: String,
    },
    /// The endpoint did not accept the batch (unreachable, non-2xx, timeout).
    #[error("OTLP export of {records} envelope(s) to {endpoint} failed: {reason}")]
    Send {
        /// The configured endpoint.
        endpoint: String,
        /// Envelopes in the failed batch.
        records: usize,
        /// What the SDK said.
        reason: String,
    },
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The OTLP/HTTP logs URL, e.g. `http://127.0.0.1:4318/v1/logs`.
    pub endpoint: String,
    /// Protobuf (default) or JSON.
    pub json: bool,
    /// gzip request bodies.
    pub gzip: bool,
    /// Sent as `Authorization: Bearer TOKEN` (never shown by `Debug`).
    pub token: Option<zt_core::secret::Secret>,
    /// Per request.
    pub timeout: Duration,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Trusted CAs (default: the system's) and the client identity for mTLS.
    pub tls: zt_tls::ClientTls,
}

impl ExportConfig {
    /// Protobuf, gzip, no token, 10 s timeout, service `zt-audit`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            json: false,
            gzip: true,
            token: None,
            timeout: Duration::from_secs(10),
            service_name: "zt-audit".into(),
            tls: zt_tls::ClientTls::default(),
        }
    }
}

type Captured = Arc<Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>;

/// Keeps what the logger emits, for [`EnvelopeExporter::export`] to send as one batch.
#[derive(Debug, Default)]
struct Capture(Captured);

impl LogProcessor for Capture {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// Sends batches of envelopes to one OTLP/HTTP logs endpoint and says whether each arrived.
#[derive(Debug)]
pub struct EnvelopeExporter {
    endpoint: String,
    exporter: opentelemetry_otlp::LogExporter,
    logger: SdkLogger,
    captured: Captured,
    // Serialises export() so one call's records never leak into another's batch.
    turn: Mutex<()>,
    _provider: SdkLoggerProvider,
}

impl EnvelopeExporter {
    /// Builds the exporter. Nothing is sent yet.
    pub fn new(config: &ExportConfig) -> Result<Self, ExportError> {
        let build_err = |reason: String| ExportError::Build {
            endpoint: config.endpoint.clone(),
            reason,
        };
        let mut headers = HashMap::new();
        if let Some(t) = &config.token {
            headers.insert("authorization".to_owned(), format!("Bearer {}", t.expose()));
        }
        let tls = config.tls.config().map_err(|e| build_err(e.to_string()))?;
        let timeout = config.timeout;
        // reqwest's blocking client runs a runtime of its own: build it off any async one.
        let http = std::thread::scope(|s| {
            s.spawn(move || {
                reqwest::blocking::Client::builder()
                    .timeout(timeout)
                    .use_preconfigured_tls(tls)
                    .build()
            })
            .join()
        })
        .map_err(|_| build_err("building the HTTP client panicked".into()))?
        .map_err(|e| build_err(e.to_string()))?;
        let mut builder = opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_http_client(http)
            .with_endpoint(config.endpoint.clone())
            .with_protocol(if config.json {
                Protocol::HttpJson
            } else {
                Protocol::HttpBinary
            })
            .with_timeout(config.timeout)
            .with_headers(headers);
        if config.gzip {
            builder = builder.with_compression(Compression::Gzip);
        }
        let mut exporter = builder.build().map_err(|e| build_err(e.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        exporter.set_resource(&resource);
        let captured = Captured::default();
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(Capture(Arc::clone(&captured)))
            .build();
        let logger = provider.logger("zt-audit");
        Ok(Self {
            endpoint: config.endpoint.clone(),
            exporter,
            logger,
            captured,
            turn: Mutex::new(()),
            _provider: provider,
        })
    }

    /// The endpoint this exporter sends to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `envelopes` (JSON texts) as one OTLP request; `Ok` once the endpoint answered 2xx.
    /// Blocks: call from a plain thread.
    pub fn export(&self, envelopes: &[&str]) -> Result<(), ExportError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        for e in envelopes {
            let mut record = self.logger.create_log_record();
            record.set_event_name(EVENT_NAME);
            record.add_attributes(attributes(e));
            record.set_body(AnyValue::String((*e).to_owned().into()));
            self.logger.emit(record);
        }
        let batch: Vec<(SdkLogRecord, InstrumentationScope)> =
            std::mem::take(&mut *self.captured.lock().unwrap_or_else(PoisonError::into_inner));
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|(r, s)| (r, s)).collect();
        futures_executor::block_on(self.exporter.export(LogBatch::new(&refs))).map_err(|e| {
            ExportError::Send {
                endpoint: self.endpoint.clone(),
                records: envelopes.len(),
                reason: e.to_string(),
            }
        })
    }
}

/// The LogRecord attributes of an envelope (JSON text): see the module docs. A text that is
/// not an envelope gets none (it is still sent: the receiver judges it).
pub fn attributes(envelope: &str) -> Vec<(&'static str, AnyValue)> {
    use zt_core::json::Value;
    let Ok(Value::Object(env)) = zt_core::json::parse(envelope.as_bytes()) else {
        return Vec::new();
    };
    let text = |k: &str| env.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut out: Vec<(&'static str, AnyValue)> = Vec::new();
    let mut put = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k, AnyValue::String(v.into())));
        }
    };
    put("zt.chain_id", text("chain_id"));
    put("zt.current_hash", text("current_hash"));
    put("zt.decision", text("decision"));
    put("zt.actor", text("actor"));
    put("zt.action", text("action"));
    put("zt.resource", text("resource"));
    let ctx = env.get("context").and_then(Value::as_object);
    let mcp = ctx
        .and_then(|c| c.get("request"))
        .and_then(Value::as_object)
        .and_then(|r| r.get("mcp"))
        .and_then(Value::as_object);
    let action = text("action");
    // The control plane's own records (`zt.*` actions) are not tool executions.
    if action.as_deref().is_some_and(|a| !a.starts_with("zt.")) {
        put("gen_ai.operation.name", Some("execute_tool".to_owned()));
        let tool = mcp
            .and_then(|m| m.get("tool"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(action);
        put("gen_ai.tool.name", tool);
        put("gen_ai.agent.id", text("actor"));
        put(
            "mcp.method.name",
            mcp.and_then(|m| m.get("method"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
    }
    if let Some(Value::Number(n)) = env.get("seq") {
        if n.fract() == 0.0 && *n >= 0.0 && *n <= 9_007_199_254_740_991.0 {
            out.push(("zt.seq", AnyValue::Int(*n as i64)));
        }
    }
    if let Some(ids) = ctx
        .and_then(|c| c.get("policy_id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.push((
            "zt.policy_ids",
            AnyValue::ListAny(Box::new(
                ids.split(',')
                    .map(|i| AnyValue::String(i.to_owned().into()))
                    .collect(),
            )),
        ));
    }
    out
}

/// Exponential backoff between retries: `initial`, doubling, capped at `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, never waits longer than `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// After a success: back to `initial`.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Counters of an [`ExportQueue`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Envelopes accepted into the queue.
    pub queued: u64,
    /// Envelopes the endpoint acknowledged.
    pub delivered: u64,
    /// Envelopes refused because the queue was full, or still undelivered at shutdown.
    pub dropped: u64,
    /// The last export error, while the endpoint is failing.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    stats: Mutex<QueueStats>,
    changed: Condvar,
}

/// A bounded, retrying, best-effort queue of envelopes to one endpoint, on its own thread.
///
/// For producers whose envelopes are also exported elsewhere (the guarded client re-exports
/// what the control plane already exports durably): it retries with backoff while the
/// process runs, never blocks the caller, and counts what it could not deliver.
#[derive(Debug)]
pub struct ExportQueue {
    tx: Option<SyncSender<String>>,
    shared: Arc<Shared>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl ExportQueue {
    /// Starts the queue's thread (the exporter is built there, off any async runtime).
    pub fn start(config: ExportConfig, capacity: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let join = std::thread::Builder::new()
            .name("zt-export-queue".into())
            .spawn(move || queue_thread(&config, &rx, &s))
            .ok();
        Self {
            tx: Some(tx),
            shared,
            join,
        }
    }

    /// Queues one envelope; `false` (and counted as dropped) when the queue is full.
    pub fn send(&self, envelope: String) -> bool {
        let Some(tx) = &self.tx else { return false };
        let mut stats = self.stats_lock();
        match tx.try_send(envelope) {
            Ok(()) => {
                stats.queued += 1;
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                stats.dropped += 1;
                false
            }
        }
    }

    fn stats_lock(&self) -> std::sync::MutexGuard<'_, QueueStats> {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The counters now.
    pub fn stats(&self) -> QueueStats {
        self.stats_lock().clone()
    }

    /// Waits until everything queued so far is delivered; false on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.stats_lock();
        let target = st.queued;
        while st.delivered + st.dropped < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.delivered >= target
    }
}

impl Drop for ExportQueue {
    fn drop(&mut self) {
        // Closing the channel tells the thread to make a last attempt and stop.
        self.tx = None;
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn queue_thread(config: &ExportConfig, rx: &Receiver<String>, shared: &Shared) {
    let exporter = match EnvelopeExporter::new(config) {
        Ok(e) => Some(e),
        Err(e) => {
            shared
                .stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .last_error = Some(e.to_string());
            None
        }
    };
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut batch: Vec<String> = Vec::new();
    let mut closed = false;
    loop {
        if batch.is_empty() {
            match rx.recv() {
                Ok(e) => batch.push(e),
                Err(_) => return,
            }
        }
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        let result = match &exporter {
            Some(ex) => ex.export(&refs).map_err(|e| e.to_string()),
            None => Err("no exporter".to_owned()),
        };
        let n = batch.len() as u64;
        let mut st = shared.stats.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                st.delivered += n;
                st.last_error = None;
                batch.clear();
                backoff.reset();
            }
            Err(e) => {
                st.last_error = Some(e);
                if closed || exporter.is_none() {
                    st.dropped += n;
                    batch.clear();
                }
            }
        }
        shared.changed.notify_all();
        let failing = st.last_error.is_some();
        drop(st);
        if closed {
            if batch.is_empty() && rx.try_recv().is_err() {
                return;
            }
            continue;
        }
        if failing && !batch.is_empty() {
            // Wait before the retry, but notice a close (the owner is dropping us).
            match rx.recv_timeout(backoff.next_delay()) {
                Ok(e) => batch.push(e),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn attributes_name_the_decision_for_siem_and_genai_conventions() {
        let env = r#"{"version":1,"chain_id":"cp-1","seq":4,"actor":"agent-a","action":"mcp.tool.read_notes","resource":"notes","decision":"allow","reason":"r","timestamp":"2026-11-28T10:00:00.000Z","previous_hash":"00","current_hash":"ab","context":{"policy_id":"p1,p2","request":{"mcp":{"method":"tools/call","tool":"read_notes"}}}}"#;
        let a: HashMap<&str, String> = attributes(env)
            .into_iter()
            .map(|(k, v)| (k, format!("{v:?}")))
            .collect();
        for (k, want) in [
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", "read_notes"),
            ("gen_ai.agent.id", "agent-a"),
            ("mcp.method.name", "tools/call"),
            ("zt.chain_id", "cp-1"),
            ("zt.decision", "allow"),
            ("zt.policy_ids", "p2"),
            ("zt.seq", "4"),
        ] {
            assert!(a.get(k).is_some_and(|v| v.contains(want)), "{k}: {a:?}");
        }
        // the control plane's own records are no tool executions; junk gets nothing
        let admin = env.replace("mcp.tool.read_notes", "zt.agent.register");
        let a: Vec<&str> = attributes(&admin).into_iter().map(|(k, _)| k).collect();
        assert!(!a.iter().any(|k| k.starts_with("gen_ai.")), "{a:?}");
        assert!(attributes("not json").is_empty());
    }

    /// The attributes arrive on the wire: one OTLP/HTTP request caught by a bare listener and
    /// decoded as the protobuf it is.
    #[test]
    fn the_attributes_are_on_the_exported_log_records() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use prost::Message as _;
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let caught = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            ExportLogsServiceRequest::decode(body.as_slice()).unwrap()
        });
        let mut cfg = ExportConfig::new(format!("http://{addr}/v1/logs"));
        cfg.gzip = false;
        let exporter = EnvelopeExporter::new(&cfg).unwrap();
        let env = r#"{"version":1,"chain_id":"cp-1","seq":0,"actor":"agent-a","action":"files.read","resource":"r","decision":"deny","reason":"r","timestamp":"2026-11-28T10:00:00.000Z","previous_hash":"00","current_hash":"ab"}"#;
        exporter.export(&[env]).unwrap();
        let req = caught.join().unwrap();
        let rec = &req.resource_logs[0].scope_logs[0].log_records[0];
        let keys: Vec<&str> = rec.attributes.iter().map(|kv| kv.key.as_str()).collect();
        for k in [
            "gen_ai.operation.name",
            "gen_ai.tool.name",
            "gen_ai.agent.id",
            "zt.decision",
            "zt.seq",
        ] {
            assert!(keys.contains(&k), "{k}: {keys:?}");
        }
        // the body is the envelope, unchanged
        let body = format!("{:?}", rec.body);
        assert!(body.contains("files.read"), "{body}");
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let mut c = ExportConfig::new("http://127.0.0.1:4318/v1/logs");
        c.token = Some("s3cret-ingest-token".into());
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cret-ingest-token"), "{shown}");
    }

    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let got: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    #[test]
    fn an_unreachable_endpoint_is_an_error_not_a_success() {
        // Port 9 on loopback: nothing listens there; the export must say so.
        let mut cfg = ExportConfig::new("http://127.0.0.1:9/v1/logs");
        cfg.timeout = Duration::from_secs(2);
        let ex = EnvelopeExporter::new(&cfg).unwrap();
        let err = ex.export(&["{}"]).unwrap_err();
        assert!(matches!(err, ExportError::Send { records: 1, .. }), "{err}");
        // and the failed batch does not leak into the next one
        assert!(ex.captured.lock().unwrap().is_empty());
    }

    #[test]
    fn a_queue_to_nowhere_counts_what_it_could_not_deliver() {
        let mut cfg = ExportConfig::new("http://127.0.0.1:9/v1/logs");
        cfg.timeout = Duration::from_secs(1);
        let q = ExportQueue::start(cfg, 2);
        assert!(q.send("{}".into()));
        assert!(!q.flush(Duration::from_millis(300)));
        drop(q.stats());
        let shared = Arc::clone(&q.shared);
        drop(q);
        let st = shared.stats.lock().unwrap().clone();
        assert_eq!((st.queued, st.delivered, st.dropped), (1, 0, 1), "{st:?}");
        assert!(st.last_error.is_some());
    }
}
