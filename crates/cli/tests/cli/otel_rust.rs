//! The real Rust OpenTelemetry exporter (`opentelemetry-otlp`, HTTP) as a client of
//! `zt-audit serve`: protobuf, JSON and gzip, each envelope landing once however often sent.
//! The exporter code is the documented example itself.

#[path = "../../examples/otlp_adapter.rs"]
mod otlp_adapter;

use opentelemetry_otlp::Protocol;

use crate::fixtures;
use crate::serve::Server;

#[test]
fn rust_exporter_over_protobuf_json_and_gzip_lands_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("rust.db");
    let srv = Server::start(&db, &[]);
    let endpoint = format!("http://{}/v1/logs", srv.addr);
    let text =
        std::fs::read_to_string(fixtures().join("interop/zt-infra-full/valid.jsonl")).unwrap();
    let lines: Vec<String> = text
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpBinary, false, &lines).unwrap();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpJson, false, &lines).unwrap();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpBinary, true, &lines).unwrap();
    let (_, metrics, _) = crate::serve::http(&srv.addr, "GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("zt_ingest_envelopes_accepted_total 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zt_ingest_envelopes_duplicate_total 24"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zt_ingest_envelopes_rejected_total 0"),
        "{metrics}"
    );
    drop(srv);
    let ring = fixtures().join("interop/zt-infra-full/keyring.json");
    let (code, report) = crate::verify_json(&[
        "--db",
        db.to_str().unwrap(),
        "--keyring",
        ring.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 12);
    // stored byte for byte
    let store = zt_store::Store::open(&db).unwrap();
    let chain = &store.chains().unwrap()[0].chain;
    let first = &store.page_chain(chain, None, 1).unwrap()[0];
    assert_eq!(first.raw, lines[0].as_bytes());
}
