//! The real OpenTelemetry Python SDK (`opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-http`
//! from PyPI, pinned in tests/python/requirements.txt) as a client of `zt-audit serve`.

use std::process::Command;

use crate::assert_store_verifies;
use crate::serve::{assert_counts, Server};
use crate::{fixtures, python, repo};

fn send(py: &str, endpoint: &str, extra: &[&str]) -> serde_json::Value {
    let file = fixtures().join("interop/zt-infra-full/valid.jsonl");
    let out = Command::new(py)
        .arg(repo().join("tests/python/send_envelopes.py"))
        .args([
            "--endpoint",
            endpoint,
            "--file",
            file.to_str().unwrap(),
            "--timeout",
            "5",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send_envelopes.py {extra:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn python_sdk_string_and_kvlist_bodies_land_once() {
    let py = python();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("py.db");
    let srv = Server::start(&db, &[]);
    let endpoint = format!("http://{}/v1/logs", srv.addr);
    let s = send(&py, &endpoint, &["--repeat", "3"]);
    assert_eq!(
        (
            s["sent"].as_u64(),
            s["ok"].as_bool(),
            s["rejected"].as_u64()
        ),
        (Some(36), Some(true), Some(0)),
        "{s}"
    );
    // the same envelopes as kvlist bodies, gzip-compressed: the same hashes, so no-ops
    let s = send(&py, &endpoint, &["--body", "kvlist", "--gzip"]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
    assert_counts(&srv.addr, 12, 36);
    drop(srv);
    assert_store_verifies(&db, 12);
}

#[test]
fn python_sdk_sees_the_token_requirement() {
    let py = python();
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::write(&tokens, "py-token\n").unwrap();
    let srv = Server::start(
        &tmp.path().join("pyt.db"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let endpoint = format!("http://{}/v1/logs", srv.addr);
    let s = send(&py, &endpoint, &["--token", "py-token"]);
    assert_eq!(s["ok"], true, "{s}");
    // without the token the SDK's export fails (401 is not retried)
    let file = fixtures().join("interop/zt-infra-full/valid.jsonl");
    let out = Command::new(&py)
        .arg(repo().join("tests/python/send_envelopes.py"))
        .args([
            "--endpoint",
            &endpoint,
            "--file",
            file.to_str().unwrap(),
            "--timeout",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
