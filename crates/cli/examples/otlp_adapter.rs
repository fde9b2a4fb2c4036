//! How an adapter exports audit envelopes to `zt-audit serve` with the Rust OpenTelemetry SDK
//! and the `opentelemetry-otlp` HTTP log exporter.
//!
//! One envelope = one LogRecord: event name `zt.audit.decision`, body = the envelope's JSON
//! text, unchanged (the receiver keeps it byte for byte). The receiver is idempotent, so the
//! exporter's retries are harmless.
//!
//! ```text
//! cargo run -p zt-audit --example otlp_adapter -- http://127.0.0.1:4318/v1/logs audit-chain.jsonl
//! ```

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_otlp::{Compression, LogExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;

/// Sends each envelope (one JSON text each) as a LogRecord; returns once flushed.
pub fn export_envelopes(
    endpoint: &str,
    protocol: Protocol,
    gzip: bool,
    envelopes: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    // Only inside the zt-audit workspace: its reqwest has rustls without a crypto provider
    // (zt-tls gives AWS-LC). An adapter crate of its own, with reqwest's default features,
    // does not need this line.
    zt_tls::install_default_provider();
    let mut builder = LogExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .with_protocol(protocol);
    if gzip {
        builder = builder.with_compression(Compression::Gzip);
    }
    let provider = SdkLoggerProvider::builder()
        .with_simple_exporter(builder.build()?)
        .build();
    let logger = provider.logger("zt-adapter");
    for envelope in envelopes {
        let mut record = logger.create_log_record();
        record.set_event_name("zt.audit.decision");
        record.set_body(AnyValue::String(envelope.clone().into()));
        logger.emit(record);
    }
    provider.force_flush()?;
    provider.shutdown()?;
    Ok(())
}

#[allow(
    dead_code,
    reason = "the integration tests include this file for export_envelopes"
)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(endpoint), Some(file)) = (args.next(), args.next()) else {
        eprintln!("usage: otlp_adapter ENDPOINT ENVELOPES.jsonl");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&file)?;
    // Split on \n only: U+2028 inside a reason is data, not a line break.
    let envelopes: Vec<String> = text
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    export_envelopes(&endpoint, Protocol::HttpBinary, false, &envelopes)?;
    println!("exported {} envelopes to {endpoint}", envelopes.len());
    Ok(())
}
