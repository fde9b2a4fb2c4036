//! The control plane over TLS and mTLS with SPIFFE X.509-SVIDs, driven by curl (a client
//! nobody here wrote): the SVID decides who is asking, whatever the body claims; every
//! refusal that reaches a handler is a recorded deny that verifies; a certificate refused in
//! the handshake reaches nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use zt_control_plane::Options;
use zt_testkit::pki::Pki;
use zt_tls::test_pki::{Ca, Validity};
use zt_tls::TlsServer;

use crate::{count, start, verify_store, Running};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-a.test/agent/b";

/// A TLS server for localhost asking for td-a.test (and td-b.test) SVIDs.
pub fn server(pki: &Pki) -> Arc<TlsServer> {
    pki.server(&[&pki.td_a, &Ca::spiffe("td-b.test")])
}

/// `curl -X POST` of `body` over TLS: (HTTP status, body), or Err(curl's stderr) when no HTTP
/// answer.
pub(crate) fn curl(
    ca: &Path,
    url: &str,
    identity: Option<&(PathBuf, PathBuf)>,
    token: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), String> {
    zt_testkit::http::curl(ca, url, identity, token, Some(body))
}

/// A control plane over mTLS with the certificates of `pki`, and curl as its clients.
struct Mtls {
    pki: Pki,
    cp: Running,
    admin: String,
    ca: PathBuf,
}

impl Mtls {
    fn start() -> Mtls {
        let pki = Pki::new();
        let cp = start(
            &pki.dir.path().join("cp"),
            Options {
                tls: Some(server(&pki)),
                ..Options::default()
            },
        );
        let admin = cp.admin_token.clone().unwrap();
        let ca = pki.server_ca();
        Mtls { pki, cp, admin, ca }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cp.base)
    }

    /// `POST path` of `body` with the admin token.
    fn admin_post(&self, path: &str, body: Value) -> Result<(u16, Value), String> {
        curl(&self.ca, &self.url(path), None, Some(&self.admin), &body)
    }

    /// `POST path` of `body` with a client certificate (`(cert, key)`) or a token.
    fn post(
        &self,
        path: &str,
        identity: Option<&(PathBuf, PathBuf)>,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        curl(&self.ca, &self.url(path), identity, token, body)
    }
}

fn ask(actor: &str) -> Value {
    json!({"actor": actor, "action": "x.run", "resource": "r"})
}

#[test]
fn the_svid_decides_who_is_asking_and_every_refusal_is_on_record() {
    let t = Mtls::start();
    let (pki, cp, ca) = (&t.pki, &t.cp, &t.ca);
    assert!(cp.base.starts_with("https://localhost:"), "{}", cp.base);
    let url = |p: &str| t.url(p);
    let admin_post = |path: &str, body: Value| t.admin_post(path, body);

    // admin routes keep the admin token; an agent is bound to its SPIFFE ID
    let (s, v) = admin_post("/agents", json!({"actor": "agent-a", "spiffe_id": A})).unwrap();
    assert_eq!(s, 201, "{v}");
    let token_a = v["token"].as_str().unwrap().to_owned();
    let (s, v) = admin_post("/agents", json!({"actor": "agent-b", "spiffe_id": B})).unwrap();
    assert_eq!(s, 201, "{v}");
    // one SPIFFE ID, one agent; a SPIFFE ID that is not one
    let (s, v) = admin_post("/agents", json!({"actor": "agent-c", "spiffe_id": A})).unwrap();
    assert_eq!(s, 409, "{v}");
    for bad in [
        "spiffe://td-a.test",
        "spiffe://TD/a",
        "https://td-a.test/a",
        "",
    ] {
        let (s, v) = admin_post("/agents", json!({"actor": "agent-c", "spiffe_id": bad})).unwrap();
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, _) = admin_post("/policies", json!({"action": "x.run"})).unwrap();
    assert_eq!(s, 201);

    let svid_a = pki.svid("a", &[A], Validity::Now);
    let svid_b = pki.svid("b", &[B], Validity::Now);
    let actions = url("/actions");
    let act = |id: Option<&(PathBuf, PathBuf)>, token: Option<&str>, actor: &str| {
        curl(ca, &actions, id, token, &ask(actor))
    };

    // A's SVID is decided as A, and the envelope names A's SPIFFE ID
    let (s, v) = act(Some(&svid_a), None, "agent-a").unwrap();
    assert_eq!((s, v["decision"].as_str()), (200, Some("allow")), "{v}");
    assert_eq!(v["audit"]["context"]["identity"], A);
    // B's SVID claiming to be A: a recorded deny
    let (s, v) = act(Some(&svid_b), None, "agent-a").unwrap();
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("actor mismatch"), "{reason}");
    assert!(reason.contains(B), "{reason}");
    assert_eq!(v["audit"]["context"]["identity"], B);
    // ... even with A's token beside it: the SVID decides
    let (s, v) = act(Some(&svid_b), Some(&token_a), "agent-a").unwrap();
    assert_eq!(s, 403, "{v}");
    // an SVID bound to no agent
    let svid_c = pki.svid("c", &["spiffe://td-a.test/agent/c"], Validity::Now);
    let (s, v) = act(Some(&svid_c), None, "agent-a").unwrap();
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("bound to no agent"),
        "{v}"
    );
    // an SVID td-a's CA issued for td-b: refused, the reason on record
    let foreign_td = pki.svid("ftd", &["spiffe://td-b.test/agent/b"], Validity::Now);
    let (s, v) = act(Some(&foreign_td), None, "agent-b").unwrap();
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("client certificate refused")
            && v["reason"].as_str().unwrap().contains("td-a.test"),
        "{v}"
    );
    assert_eq!(v["audit"]["context"]["identity"], "unauthenticated");
    // two URI SANs: refused, on record
    let two = pki.svid("two", &[A, B], Validity::Now);
    let (s, v) = act(Some(&two), None, "agent-a").unwrap();
    assert_eq!(s, 401, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("2 URI SANs"), "{v}");
    // no identity and no token: denied as over plain HTTP; a token alone still works
    let (s, v) = act(None, None, "agent-a").unwrap();
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    let (s, v) = act(None, Some(&token_a), "agent-a").unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["identity"], "agent-token:agent-a");

    // refused in the handshake: curl fails, nothing reaches the chain
    // (two registrations and eight refusals and decisions so far)
    let before = count(&cp.dir.join("decisions.db"));
    assert_eq!(before, 10);
    for (name, validity) in [("exp", Validity::Expired), ("nyv", Validity::NotYetValid)] {
        let svid = pki.svid(name, &[A], validity);
        let err = act(Some(&svid), None, "agent-a").unwrap_err();
        assert!(!err.is_empty());
    }
    let foreign_ca = Ca::spiffe("td-x.test")
        .svid(&[A], Validity::Now)
        .write(pki.dir.path(), "foreign");
    assert!(act(Some(&foreign_ca), None, "agent-a").is_err());
    // and the server says why on /metrics
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .arg(url("/metrics"))
        .output()
        .unwrap();
    let m = String::from_utf8_lossy(&out.stdout);
    for line in [
        "zt_tls_handshake_failures_total{reason=\"expired\"} 1",
        "zt_tls_handshake_failures_total{reason=\"not_yet_valid\"} 1",
        "zt_tls_handshake_failures_total{reason=\"unknown_issuer\"} 1",
    ] {
        assert!(m.contains(line), "no {line} in\n{m}");
    }

    let db = cp.dir.join("decisions.db");
    let keyring = cp.keyring();
    t.cp.stop();
    assert_eq!(count(&db), before);
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
}

#[test]
fn bindings_survive_a_restart() {
    let pki = Pki::new();
    let dir = pki.dir.path().join("cp");
    let opts = || Options {
        tls: Some(server(&pki)),
        ..Options::default()
    };
    let ca = pki.server_ca();
    let cp = start(&dir, opts());
    let admin = cp.admin_token.clone().unwrap();
    for (path, body) in [
        ("/agents", json!({"actor": "agent-a", "spiffe_id": A})),
        ("/policies", json!({"action": "x.run"})),
    ] {
        let url = format!("{}{path}", cp.base);
        let (s, _) = curl(&ca, &url, None, Some(&admin), &body).unwrap();
        assert_eq!(s, 201);
    }
    cp.stop();
    let cp = start(&dir, opts());
    let svid_a = pki.svid("a", &[A], Validity::Now);
    let (s, v) = curl(
        &ca,
        &format!("{}/actions", cp.base),
        Some(&svid_a),
        None,
        &ask("agent-a"),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["identity"], A);
}

/// Revoking an agent revokes its SVID too: the SVID is then bound to no agent (a recorded
/// deny), and its SPIFFE ID may be bound to another agent, whose requests it then decides.
#[test]
fn a_revoked_agents_svid_speaks_for_nobody_until_bound_again() {
    let t = Mtls::start();
    let (pki, cp, admin, ca) = (&t.pki, &t.cp, &t.admin, &t.ca);
    let url = |p: &str| t.url(p);
    let admin_post = |path: &str, body: Value| t.admin_post(path, body);
    let (s, v) = admin_post("/agents", json!({"actor": "agent-a", "spiffe_id": A})).unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, _) = admin_post("/policies", json!({"action": "x.run"})).unwrap();
    assert_eq!(s, 201);
    let svid_a = pki.svid("a", &[A], Validity::Now);
    let actions = url("/actions");
    let (s, v) = curl(ca, &actions, Some(&svid_a), None, &ask("agent-a")).unwrap();
    assert_eq!(s, 200, "{v}");

    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", "DELETE", "--cacert"])
        .arg(ca)
        .args(["-H", &format!("authorization: Bearer {admin}")])
        .args(["-w", "\n%{http_code}"])
        .arg(url("/agents/agent-a"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n200"), "{text}");

    let db = cp.dir.join("decisions.db");
    let before = count(&db);
    let (s, v) = curl(ca, &actions, Some(&svid_a), None, &ask("agent-a")).unwrap();
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("bound to no agent"),
        "{v}"
    );
    assert_eq!(count(&db), before + 1, "the refusal is on record");

    let (s, v) = admin_post("/agents", json!({"actor": "agent-a2", "spiffe_id": A})).unwrap();
    assert_eq!(s, 201, "the freed SPIFFE ID binds again: {v}");
    let (s, v) = curl(ca, &actions, Some(&svid_a), None, &ask("agent-a2")).unwrap();
    assert_eq!(s, 200, "{v}");
    let keyring = cp.keyring();
    t.cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
}

/// A broker may be its own SPIFFE ID: over mTLS its SVID files its signed reports (no token),
/// and speaks for no agent; nor may an agent be bound to the broker's ID.
#[test]
fn a_brokers_svid_files_its_reports_and_speaks_for_no_agent() {
    use zt_core::capability::report::{ExecutionReport, Outcome};
    const BROKER: &str = "spiffe://td-a.test/broker/b1";
    let t = Mtls::start();
    let pki = &t.pki;
    let admin_post = |path: &str, body: Value| t.admin_post(path, body);
    let (s, v) = admin_post("/agents", json!({"actor": "agent-a"})).unwrap();
    assert_eq!(s, 201, "{v}");
    let token_a = v["token"].as_str().unwrap().to_owned();
    let (s, v) = admin_post(
        "/policies",
        json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let key = zt_core::crypto::SigningKey::generate();
    let (s, v) = admin_post(
        "/brokers",
        json!({"name": "b1", "public_key": key.public_key().to_pem(), "spiffe_id": BROKER}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin_post("/agents", json!({"actor": "agent-x", "spiffe_id": BROKER})).unwrap();
    assert_eq!(s, 409, "the broker's ID is taken: {v}");
    let grants = json!({"exec": ["/usr/bin/true"]});
    let (s, v) = admin_post(
        "/capabilities",
        json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": 60, "grants": grants}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let (id, cap) = (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    );
    let (s, v) = t.post("/actions", None,
        Some(&token_a),
        &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "capability": cap}),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");
    let allow = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let svid = pki.svid("broker", &[BROKER], Validity::Now);
    // the broker's SVID asks for nothing as an agent
    let (s, v) = t
        .post(
            "/actions",
            Some(&svid),
            None,
            &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x"}),
        )
        .unwrap();
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    // its report, signed, over its SVID alone
    let report = ExecutionReport {
        decision: zt_core::Hash32::from_hex(&allow).unwrap(),
        capability_id: id,
        actor: "agent-a".into(),
        broker: "b1".into(),
        grants: zt_core::capability::Grants::from_value(
            &zt_core::json::parse(grants.to_string().as_bytes()).unwrap(),
        )
        .unwrap(),
        command: vec!["/usr/bin/true".into()],
        landlock_abi: Some(6),
        unscoped: false,
        outcome: Outcome::Ran {
            exit_code: Some(0),
            signal: None,
            duration_ms: 2,
            stopped: None,
        },
    };
    let body: Value = serde_json::from_slice(&zt_broker::run::filed_json(
        &report,
        Some(&("b1".into(), key)),
    ))
    .unwrap();
    let (s, v) = t.post("/executions", Some(&svid), None, &body).unwrap();
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["audit"]["context"]["identity"].as_str(),
        Some(BROKER),
        "{v}"
    );
    t.cp.stop();
    let report = verify_store(
        &pki.dir.path().join("cp/decisions.db"),
        &std::fs::read(pki.dir.path().join("cp/keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.executions.attested, 1, "{:?}", report.executions);
}
