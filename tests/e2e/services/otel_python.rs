//! The real OpenTelemetry Python SDK (`opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-http`
//! from PyPI, pinned in tests/python/requirements.txt) as a client of `zt-audit serve`.

use zt_testkit::tools::{python, send_envelopes};

use crate::serve::assert_counts;
use crate::{assert_store_verifies, interop_dir, serve};

/// `send_envelopes.py` of the interop `valid.jsonl` to `endpoint` (5 s timeout, `extra`
/// arguments): (exit code, what it printed, its stderr).
fn send_valid(
    py: &str,
    endpoint: &str,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["--timeout", "5"];
    args.extend_from_slice(extra);
    send_envelopes(py, endpoint, &interop_dir().join("valid.jsonl"), &args)
}

/// [`send_valid`], which must succeed: what it printed.
fn send(py: &str, endpoint: &str, extra: &[&str]) -> serde_json::Value {
    let (code, out, err) = send_valid(py, endpoint, extra);
    assert_eq!(code, Some(0), "send_envelopes.py {extra:?}: {out}\n{err}");
    out
}

#[test]
fn python_sdk_string_and_kvlist_bodies_land_once() {
    let py = python();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("py.db");
    let srv = serve(&db, &[]);
    let s = send(&py, &srv.url, &["--repeat", "3"]);
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
    let s = send(&py, &srv.url, &["--body", "kvlist", "--gzip"]);
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["rejected"], 0, "{s}");
    assert_counts(srv.addr(), 12, 36);
    drop(srv);
    assert_store_verifies(&db, 12);
}

#[test]
fn python_sdk_sees_the_token_requirement() {
    let py = python();
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::write(&tokens, "py-token\n").unwrap();
    let srv = serve(
        &tmp.path().join("pyt.db"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let s = send(&py, &srv.url, &["--token", "py-token"]);
    assert_eq!(s["ok"], true, "{s}");
    // without the token the SDK's export fails (401 is not retried)
    let (code, out, _) = send_valid(&py, &srv.url, &[]);
    assert_eq!(code, Some(1), "{out}");
}
