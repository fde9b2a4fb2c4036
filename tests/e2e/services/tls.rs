//! The binary's TLS flags end to end: the real OpenTelemetry Python SDK delivering to `serve`
//! over TLS and mTLS, `control-plane` deciding by X.509-SVID and exporting to `serve` over
//! mTLS (curl as the agent), and a certificate replaced while the server runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_tls::test_pki::{write_bundle, Ca, Leaf, Validity};

use crate::serve::Server;
use crate::{fixtures, python, repo, verify_json};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-a.test/agent/b";
const EXPORTER: &str = "spiffe://td-a.test/exporter";
const CP: &str = "spiffe://td-a.test/control-plane";

struct Pki {
    dir: tempfile::TempDir,
    td_a: Ca,
    server_ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            td_a: Ca::spiffe("td-a.test"),
            server_ca: Ca::spiffe("servers.test"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }
    /// `--tls-cert F --tls-key F --client-ca F` (the bundle holds td-a.test).
    fn server_flags(&self, name: &str, client_ca: bool) -> Vec<String> {
        let (cert, key) = self.server_ca.server().write(self.dir.path(), name);
        let mut flags = vec![
            "--tls-cert".to_owned(),
            Self::s(&cert).to_owned(),
            "--tls-key".to_owned(),
            Self::s(&key).to_owned(),
        ];
        if client_ca {
            let bundle = write_bundle(&self.path("bundle.pem"), &[&self.td_a]);
            flags.extend(["--client-ca".to_owned(), Self::s(&bundle).to_owned()]);
        }
        flags
    }
    fn server_ca(&self) -> PathBuf {
        write_bundle(&self.path("server-ca.pem"), &[&self.server_ca])
    }
    fn svid(&self, name: &str, id: &str, validity: Validity) -> (PathBuf, PathBuf) {
        self.td_a.svid(&[id], validity).write(self.dir.path(), name)
    }
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

fn send(py: &str, endpoint: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let file = fixtures().join("interop/zt-infra-full/valid.jsonl");
    let out = Command::new(py)
        .arg(repo().join("tests/python/send_envelopes.py"))
        .args(["--endpoint", endpoint, "--file", file.to_str().unwrap()])
        .args(["--timeout", "5"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn senders(db: &Path) -> Vec<Option<String>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn
        .prepare("SELECT DISTINCT sender FROM records ORDER BY sender")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn python_sdk_delivers_over_tls_and_mtls_and_the_sender_is_recorded() {
    let py = python();
    let pki = Pki::new();
    let ca = pki.server_ca();

    // TLS only: the SDK trusts the server through --certificate
    let db = pki.path("tls.db");
    let flags = pki.server_flags("tls", false);
    let srv = Server::start(&db, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let endpoint = format!("https://localhost:{}/v1/logs", port_of(&srv.addr));
    let (code, s, err) = send(&py, &endpoint, &["--certificate", Pki::s(&ca)]);
    assert_eq!(
        (code, s["ok"].as_bool()),
        (Some(0), Some(true)),
        "{s} {err}"
    );
    // a client that does not trust the server's CA sends nothing
    let other = write_bundle(&pki.path("other.pem"), &[&Ca::spiffe("x.test")]);
    let (code, _, _) = send(&py, &endpoint, &["--certificate", Pki::s(&other)]);
    assert_eq!(code, Some(1));
    drop(srv);
    crate::assert_store_verifies(&db, 12);
    assert_eq!(senders(&db), [None]);

    // mTLS: an SVID is required, and recorded as the sender of each envelope
    let db = pki.path("mtls.db");
    let flags = pki.server_flags("mtls", true);
    let srv = Server::start(&db, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let endpoint = format!("https://localhost:{}/v1/logs", port_of(&srv.addr));
    let (code, s, _) = send(&py, &endpoint, &["--certificate", Pki::s(&ca)]);
    assert_eq!(code, Some(1), "no SVID, no delivery: {s}");
    let (cert, key) = pki.svid("exporter", EXPORTER, Validity::Now);
    let with_svid = [
        "--certificate",
        Pki::s(&ca),
        "--client-certificate",
        Pki::s(&cert),
        "--client-key",
        Pki::s(&key),
    ];
    let (code, s, err) = send(&py, &endpoint, &with_svid);
    assert_eq!(
        (code, s["ok"].as_bool()),
        (Some(0), Some(true)),
        "{s} {err}"
    );
    // a certificate that verified but is no SVID (two URI SANs): 401 with the reason
    let (cert, key) = pki
        .td_a
        .svid(&[EXPORTER, A], Validity::Now)
        .write(pki.dir.path(), "two");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(&ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["-H", "content-type: application/json", "-d", "{}"])
        .arg(&endpoint)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n401"), "{text}");
    assert!(text.contains("2 URI SANs"), "{text}");
    // an expired SVID: the handshake fails, nothing is delivered
    let (cert, key) = pki.svid("expired", EXPORTER, Validity::Expired);
    let (code, _, _) = send(
        &py,
        &endpoint,
        &[
            "--certificate",
            Pki::s(&ca),
            "--client-certificate",
            Pki::s(&cert),
            "--client-key",
            Pki::s(&key),
        ],
    );
    assert_eq!(code, Some(1));
    let m = crate::serve::metrics_over(&ca, &endpoint.replace("/v1/logs", "/metrics"));
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
    crate::assert_store_verifies(&db, 12);
    assert_eq!(senders(&db), [Some(EXPORTER.to_owned())]);
}

/// `curl` with a JSON body: (status, body) or Err(stderr) when the TLS handshake failed.
fn curl(
    ca: &Path,
    url: &str,
    svid: Option<&(PathBuf, PathBuf)>,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), String> {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-H", "content-type: application/json", "-d"])
        .arg(body.to_string())
        .args(["-w", "\n%{http_code}"]);
    if let Some((cert, key)) = svid {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out: Output = c.arg(url).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    Ok((status.parse().unwrap(), serde_json::from_str(body).unwrap()))
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
    let mut serve_args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--db",
        Pki::s(&ingest_db),
        "--keyring",
        Pki::s(&ring),
    ]
    .map(str::to_owned)
    .to_vec();
    serve_args.extend(pki.server_flags("ingest", true));
    let os: Vec<&std::ffi::OsStr> = serve_args.iter().map(std::ffi::OsStr::new).collect();
    let (mut srv, ingest) = crate::spawn_server(&os);
    let ingest = format!(
        "https://localhost:{}/v1/logs",
        port_of(ingest.trim_end_matches("/v1/logs"))
    );
    let admin_file = pki.path("admin-token");
    std::fs::write(&admin_file, "admin-secret\n").unwrap();
    let (cp_cert, cp_key) = pki.svid("cp-svid", CP, Validity::Now);
    let mut args: Vec<String> = [
        "control-plane",
        "--dir",
        Pki::s(&dir),
        "--listen",
        "127.0.0.1:0",
        "--admin-token-file",
        Pki::s(&admin_file),
        "--ingest",
        &ingest,
        "--ingest-ca",
        Pki::s(&ca),
        "--ingest-cert",
        Pki::s(&cp_cert),
        "--ingest-key",
        Pki::s(&cp_key),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(pki.server_flags("cp", true));
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let (mut child, base) = crate::spawn_server(&os);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let base = format!("https://localhost:{}", port_of(&base));
    let url = |p: &str| format!("{base}{p}");
    let admin = Some("admin-secret");

    let (s, v) = curl(
        &ca,
        &url("/agents"),
        None,
        admin,
        &json!({"actor": "agent-a", "spiffe_id": A}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, v) = curl(
        &ca,
        &url("/agents"),
        None,
        admin,
        &json!({"actor": "agent-b", "spiffe_id": B}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, _) = curl(
        &ca,
        &url("/policies"),
        None,
        admin,
        &json!({"action": "x.run"}),
    )
    .unwrap();
    assert_eq!(s, 201);
    let ask = json!({"actor": "agent-a", "action": "x.run"});
    let svid_a = pki.svid("a", A, Validity::Now);
    let (s, v) = curl(&ca, &url("/actions"), Some(&svid_a), None, &ask).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["identity"], A);
    let svid_b = pki.svid("b", B, Validity::Now);
    let (s, v) = curl(&ca, &url("/actions"), Some(&svid_b), None, &ask).unwrap();
    assert_eq!(s, 403, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("actor mismatch"),
        "{v}"
    );
    let (s, _) = curl(&ca, &url("/actions"), None, None, &ask).unwrap();
    assert_eq!(s, 401);
    // an expired SVID: curl gets no answer, the chain gets nothing, stderr says why
    let expired = pki.svid("expired", A, Validity::Expired);
    assert!(curl(&ca, &url("/actions"), Some(&expired), None, &ask).is_err());

    // the two registrations and three decisions reach the receiver, sent by the control
    // plane's SVID
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ingest_db.exists() || senders(&ingest_db) != [Some(CP.to_owned())] || {
        let conn = rusqlite::Connection::open(&ingest_db).unwrap();
        conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .unwrap()
            < 5
    } {
        assert!(
            Instant::now() < deadline,
            "the decisions did not reach ingest"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, stderr) = crate::signal_and_wait(&mut child, "-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("refused (expired)") && stderr.contains("certificate expired"),
        "{stderr}"
    );
    let (code, stderr) = crate::signal_and_wait(&mut srv, "-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    for db in [dir.join("decisions.db"), ingest_db] {
        let (code, report) = verify_json(&["--db", Pki::s(&db), "--keyring", Pki::s(&ring)]);
        assert_eq!(code, 0, "{report:#}");
        // The two registrations are sealed records too, then the three decisions.
        assert_eq!(report["records"], 5);
    }
}

#[test]
fn a_replaced_certificate_is_served_to_new_connections() {
    let pki = Pki::new();
    let db = pki.path("reload.db");
    let flags = pki.server_flags("reload", false);
    let srv = Server::start(&db, &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let url = format!("https://localhost:{}/healthz", port_of(&srv.addr));
    let get = |ca: &Path| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(ca)
            .arg(&url)
            .output()
            .unwrap()
            .status
            .success()
    };
    let old_ca = pki.server_ca();
    let new_ca = Ca::spiffe("servers-2.test");
    let new_ca_file = write_bundle(&pki.path("new-ca.pem"), &[&new_ca]);
    assert!(get(&old_ca));
    assert!(!get(&new_ca_file));
    // as spiffe-helper does: a new pair written over the old files
    let Leaf { cert_pem, key_pem } = new_ca.server();
    std::fs::write(pki.path("reload.key"), key_pem).unwrap();
    std::fs::write(pki.path("reload.pem"), cert_pem).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !get(&new_ca_file) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!get(&old_ca));
    let (code, stderr) = srv.signal("-TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("reloaded"), "{stderr}");
}
