//! The binary's TLS flags end to end: the real OpenTelemetry Python SDK delivering to `serve`
//! over TLS and mTLS, `control-plane` deciding by X.509-SVID and exporting to `serve` over
//! mTLS (curl as the agent), and a certificate replaced while the server runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use zt_testkit::http::curl;
use zt_testkit::pki::Pki;
use zt_testkit::store::rows;
use zt_testkit::tools::{python, send_envelopes};
use zt_testkit::{s as path, wait_until};
use zt_tls::test_pki::{write_bundle, Ca, Leaf, Validity};

use crate::{assert_store_verifies, bin, control_plane, interop_dir, serve, Server};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-a.test/agent/b";
const EXPORTER: &str = "spiffe://td-a.test/exporter";
const CP: &str = "spiffe://td-a.test/control-plane";

/// `zt-audit serve` on `db` over TLS with the server certificate `name` of `pki` (asking for
/// td-a.test SVIDs when `client_ca`): the server and its OTLP endpoint, named `localhost` as
/// the certificate is.
fn serve_tls(pki: &Pki, db: &Path, name: &str, client_ca: bool) -> (Server, String) {
    let flags = pki.server_flags(name, client_ca);
    let srv = serve(db, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let endpoint = format!("https://localhost:{}/v1/logs", srv.port());
    (srv, endpoint)
}

/// `send_envelopes.py` of the interop `valid.jsonl` to `endpoint` (5 s timeout, `extra`
/// arguments): (exit code, what it printed, its stderr).
fn send(py: &str, endpoint: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec!["--timeout", "5"];
    args.extend_from_slice(extra);
    send_envelopes(py, endpoint, &interop_dir().join("valid.jsonl"), &args)
}

fn senders(db: &Path) -> Vec<Option<String>> {
    rows(
        db,
        "SELECT DISTINCT sender FROM records ORDER BY sender",
        |r| r.get(0),
    )
}

#[test]
fn python_sdk_delivers_over_tls_and_mtls_and_the_sender_is_recorded() {
    let py = python();
    let pki = Pki::new();
    let ca = pki.server_ca();

    // TLS only: the SDK trusts the server through --certificate
    let db = pki.path("tls.db");
    let (srv, endpoint) = serve_tls(&pki, &db, "tls", false);
    let (code, s, err) = send(&py, &endpoint, &["--certificate", path(&ca)]);
    assert_eq!(
        (code, s["ok"].as_bool()),
        (Some(0), Some(true)),
        "{s} {err}"
    );
    // a client that does not trust the server's CA sends nothing
    let other = write_bundle(&pki.path("other.pem"), &[&Ca::spiffe("x.test")]);
    let (code, _, _) = send(&py, &endpoint, &["--certificate", path(&other)]);
    assert_eq!(code, Some(1));
    drop(srv);
    assert_store_verifies(&db, 12);
    assert_eq!(senders(&db), [None]);

    // mTLS: an SVID is required, and recorded as the sender of each envelope
    let db = pki.path("mtls.db");
    let (srv, endpoint) = serve_tls(&pki, &db, "mtls", true);
    let (code, s, _) = send(&py, &endpoint, &["--certificate", path(&ca)]);
    assert_eq!(code, Some(1), "no SVID, no delivery: {s}");
    let with_svid = |(cert, key): &(PathBuf, PathBuf)| {
        send(
            &py,
            &endpoint,
            &[
                "--certificate",
                path(&ca),
                "--client-certificate",
                path(cert),
                "--client-key",
                path(key),
            ],
        )
    };
    let (code, s, err) = with_svid(&pki.svid("exporter", &[EXPORTER], Validity::Now));
    assert_eq!(
        (code, s["ok"].as_bool()),
        (Some(0), Some(true)),
        "{s} {err}"
    );
    // a certificate that verified but is no SVID (two URI SANs): 401 with the reason
    let two = pki.svid("two", &[EXPORTER, A], Validity::Now);
    let (status, body) = curl(&ca, &endpoint, Some(&two), None, Some(&json!({}))).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("2 URI SANs"), "{body}");
    // an expired SVID: the handshake fails, nothing is delivered
    let (code, _, _) = with_svid(&pki.svid("expired", &[EXPORTER], Validity::Expired));
    assert_eq!(code, Some(1));
    let metrics = endpoint.replace("/v1/logs", "/metrics");
    let (status, m) = curl(&ca, &metrics, None, None, None).unwrap();
    assert_eq!(status, 200, "{m}");
    let m = m.as_str().unwrap();
    // an unauthenticated 401 each for the request without an SVID (not retried) and the one with two URI
    // SANs; the expired one never got a request through (the SDK retried the handshake)
    assert!(
        m.contains("zt_ingest_requests_total{outcome=\"unauthenticated\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("zt_tls_handshake_failures_total{reason=\"expired\"} ")
            && !m.contains("zt_tls_handshake_failures_total{reason=\"expired\"} 0"),
        "{m}"
    );
    drop(srv);
    assert_store_verifies(&db, 12);
    assert_eq!(senders(&db), [Some(EXPORTER.to_owned())]);
}

#[test]
fn control_plane_decides_by_svid_and_exports_to_serve_over_mtls() {
    let pki = Pki::new();
    let ca = pki.server_ca();
    let dir = pki.path("cp");
    // the control plane's key and keyring, for the receiver, before either runs
    drop(zt_control_plane::ControlPlane::open(&dir, zt_control_plane::Options::default()).unwrap());
    let ring = dir.join("keyring.json");
    let ingest_db = pki.path("ingest.db");
    let flags = pki.server_flags("ingest", true);
    let srv = Server::serve(
        bin(),
        &ingest_db,
        &ring,
        &flags.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let ingest = format!("https://localhost:{}/v1/logs", srv.port());
    let admin_file = pki.path("admin-token");
    std::fs::write(&admin_file, "admin-secret\n").unwrap();
    let (cp_cert, cp_key) = pki.svid("cp-svid", &[CP], Validity::Now);
    let mut args: Vec<String> = [
        "--admin-token-file",
        path(&admin_file),
        "--ingest",
        &ingest,
        "--ingest-ca",
        path(&ca),
        "--ingest-cert",
        path(&cp_cert),
        "--ingest-key",
        path(&cp_key),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(pki.server_flags("cp", true));
    let cp = control_plane(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(cp.base.starts_with("https://127.0.0.1:"), "{}", cp.base);
    let base = format!("https://localhost:{}", cp.server.port());
    let post =
        |path: &str, svid: Option<&(PathBuf, PathBuf)>, token: Option<&str>, body: &Value| {
            curl(&ca, &format!("{base}{path}"), svid, token, Some(body))
        };
    let admin = Some("admin-secret");
    for (actor, id) in [("agent-a", A), ("agent-b", B)] {
        let (s, v) = post(
            "/agents",
            None,
            admin,
            &json!({"actor": actor, "spiffe_id": id}),
        )
        .unwrap();
        assert_eq!(s, 201, "{v}");
    }
    let (s, _) = post("/policies", None, admin, &json!({"action": "x.run"})).unwrap();
    assert_eq!(s, 201);
    let ask = json!({"actor": "agent-a", "action": "x.run"});
    let svid_a = pki.svid("a", &[A], Validity::Now);
    let (s, v) = post("/actions", Some(&svid_a), None, &ask).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["identity"], A);
    let svid_b = pki.svid("b", &[B], Validity::Now);
    let (s, v) = post("/actions", Some(&svid_b), None, &ask).unwrap();
    assert_eq!(s, 403, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("actor mismatch"),
        "{v}"
    );
    let (s, _) = post("/actions", None, None, &ask).unwrap();
    assert_eq!(s, 401);
    // an expired SVID: curl gets no answer, the chain gets nothing, stderr says why
    let expired = pki.svid("expired", &[A], Validity::Expired);
    assert!(post("/actions", Some(&expired), None, &ask).is_err());

    // the two registrations and three decisions reach the receiver, sent by the control
    // plane's SVID
    wait_until(
        "the decisions to reach ingest",
        Duration::from_secs(20),
        || {
            ingest_db.exists()
                && senders(&ingest_db) == [Some(CP.to_owned())]
                && rows(&ingest_db, "SELECT COUNT(*) FROM records", |r| {
                    r.get::<_, i64>(0)
                })[0]
                    >= 5
        },
    );
    let (code, stderr) = cp.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("refused (expired)") && stderr.contains("certificate expired"),
        "{stderr}"
    );
    let (code, stderr) = srv.signal("-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    for db in [dir.join("decisions.db"), ingest_db] {
        let (code, report) = bin().verify_db(&db, &ring);
        assert_eq!(code, 0, "{report:#}");
        // The two registrations are sealed records too, then the three decisions.
        assert_eq!(report["records"], 5);
    }
}

#[test]
fn a_replaced_certificate_is_served_to_new_connections() {
    let pki = Pki::new();
    let (srv, endpoint) = serve_tls(&pki, &pki.path("reload.db"), "reload", false);
    let url = endpoint.replace("/v1/logs", "/healthz");
    let get = |ca: &Path| curl(ca, &url, None, None, None).is_ok();
    let old_ca = pki.server_ca();
    let new_ca = Ca::spiffe("servers-2.test");
    let new_ca_file = write_bundle(&pki.path("new-ca.pem"), &[&new_ca]);
    assert!(get(&old_ca));
    assert!(!get(&new_ca_file));
    // as spiffe-helper does: a new pair written over the old files
    let Leaf { cert_pem, key_pem } = new_ca.server();
    std::fs::write(pki.path("reload.key"), key_pem).unwrap();
    std::fs::write(pki.path("reload.pem"), cert_pem).unwrap();
    wait_until(
        "the new certificate to be served",
        Duration::from_secs(10),
        || get(&new_ca_file),
    );
    assert!(!get(&old_ca));
    let (code, stderr) = srv.signal("-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("reloaded"), "{stderr}");
}
