//! Audit envelopes out over OTLP/HTTP logs, with the real OpenTelemetry SDK
//! (`opentelemetry-otlp`, HTTP protobuf or JSON, optional gzip).
//!
//! One envelope is one LogRecord: event name `zt.audit.decision`, body the envelope's JSON text
//! unchanged (what `zt-audit serve` expects, see its docs). The receiver is idempotent, so
//! sending an envelope twice is harmless and a failed batch is simply sent again.
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
//! ```no_run
//! use zt_export::{EnvelopeExporter, ExportConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = EnvelopeExporter::new(&ExportConfig::new("http://127.0.0.1:4318/v1/logs"))?;
//! exporter.export(&[r#"{"version":1,"chain_id":"cp","seq":0}"#])?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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
    /// Sent as `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// `service.name` of the resource.
    pub service_name: String,
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
            headers.insert("authorization".to_owned(), format!("Bearer {t}"));
        }
        let mut builder = opentelemetry_otlp::LogExporter::builder()
            .with_http()
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

#[cfg(test)]
mod tests {
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
}
