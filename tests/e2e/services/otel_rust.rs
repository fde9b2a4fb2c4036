//! The real Rust OpenTelemetry exporter (`opentelemetry-otlp`, HTTP) as a client of
//! `zt-audit serve`: protobuf, JSON and gzip, each envelope landing once however often sent.
//! The exporter code is the documented example itself.

#[path = "../../../crates/cli/examples/otlp_adapter.rs"]
mod otlp_adapter;

use opentelemetry_otlp::Protocol;

use crate::serve::assert_counts;
use crate::{assert_store_verifies, serve, valid_lines};

#[test]
fn rust_exporter_over_protobuf_json_and_gzip_lands_once() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("rust.db");
    let srv = serve(&db, &[]);
    let endpoint = srv.url.clone();
    let lines = valid_lines();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpBinary, false, &lines).unwrap();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpJson, false, &lines).unwrap();
    otlp_adapter::export_envelopes(&endpoint, Protocol::HttpBinary, true, &lines).unwrap();
    assert_counts(srv.addr(), 12, 24);
    drop(srv);
    assert_store_verifies(&db, 12);
    // stored byte for byte
    let store = zt_store::Store::open(&db).unwrap();
    let chain = &store.chains().unwrap()[0].chain;
    let first = &store.page_chain(chain, None, 1).unwrap()[0];
    assert_eq!(first.raw, lines[0].as_bytes());
}
