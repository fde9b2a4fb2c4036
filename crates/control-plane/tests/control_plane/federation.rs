//! SPIFFE trust bundles the standard way: trust domains named by the configuration, one from
//! an ordinary PKI (a PEM CA without a SPIFFE URI SAN) and one federated as a SPIFFE bundle
//! (JWK Set). An SVID is checked against its own domain's bundle only, a registration in a
//! domain without a bundle is refused, and Cedar sees how the asker authenticated.

use std::sync::Arc;

use serde_json::{json, Value};
use zt_control_plane::Options;
use zt_tls::test_pki::{write_bundle, write_spiffe_bundle, Ca, Validity};
use zt_tls::{ServerFiles, TlsServer, TrustDomain};

use crate::tls::curl;
use crate::{start, verify_store};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-b.test/agent/b";

#[test]
fn two_trust_domains_each_speak_for_their_own_agents_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server_ca = Ca::plain("servers");
    let (cert, key) = server_ca.server().write(dir, "server");
    // td-a: a corporate CA that names no trust domain; td-b: a partner's SPIFFE bundle.
    let (corp, partner) = (Ca::plain("corp root"), Ca::plain("partner root"));
    let files = ServerFiles::new(cert, key)
        .trust_bundle(
            TrustDomain::new("td-a.test").unwrap(),
            write_bundle(&dir.join("td-a.pem"), &[&corp]),
        )
        .trust_bundle(
            TrustDomain::new("td-b.test").unwrap(),
            write_spiffe_bundle(&dir.join("td-b.json"), &[&partner], Some(12)),
        );
    let cp = start(
        &dir.join("cp"),
        Options {
            tls: Some(Arc::new(TlsServer::load(&files).unwrap())),
            ..Options::default()
        },
    );
    let admin = cp.admin_token.clone().unwrap();
    let ca = write_bundle(&dir.join("server-ca.pem"), &[&server_ca]);
    let url = |p: &str| format!("{}{p}", cp.base);
    let admin_post = |path: &str, body: Value| curl(&ca, &url(path), None, Some(&admin), &body);

    let (s, v) = admin_post("/agents", json!({"actor": "agent-a", "spiffe_id": A})).unwrap();
    assert_eq!(s, 201, "{v}");
    let token_a = v["token"].as_str().unwrap().to_owned();
    let (s, v) = admin_post("/agents", json!({"actor": "agent-b", "spiffe_id": B})).unwrap();
    assert_eq!(s, 201, "{v}");
    // A trust domain without a bundle: no SVID could ever prove this ID.
    let (s, v) = admin_post(
        "/agents",
        json!({"actor": "agent-c", "spiffe_id": "spiffe://td-c.test/agent/c"}),
    )
    .unwrap();
    assert_eq!(s, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("td-c.test has no bundle") && e.contains("td-a.test, td-b.test"),
        "{e}"
    );
    // Cedar sees the trust domain: only td-a's SVIDs may run x.run.
    let (s, v) = admin_post(
        "/policies",
        json!({"cedar": "@id(\"td-a-only\")\npermit (principal, action == Action::\"x.run\", resource) when { context.identity.kind == \"svid\" && context.identity.trust_domain == \"td-a.test\" };"}),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");

    let actions = url("/actions");
    let ask = |id: Option<&(std::path::PathBuf, std::path::PathBuf)>,
               token: Option<&str>,
               actor: &str| {
        curl(
            &ca,
            &actions,
            id,
            token,
            &json!({"actor": actor, "action": "x.run", "resource": "r"}),
        )
        .unwrap()
    };
    let svid_a = corp.svid(&[A], Validity::Now).write(dir, "a");
    let svid_b = partner.svid(&[B], Validity::Now).write(dir, "b");
    let (s, v) = ask(Some(&svid_a), None, "agent-a");
    assert_eq!((s, v["decision"].as_str()), (200, Some("allow")), "{v}");
    assert_eq!(v["audit"]["context"]["identity"], A, "{v}");
    // td-b's agent is verified (its own domain's bundle) and denied by the policy.
    let (s, v) = ask(Some(&svid_b), None, "agent-b");
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert_eq!(v["audit"]["context"]["identity"], B, "{v}");
    // The same agent with its token is not an SVID.
    let (s, v) = ask(None, Some(&token_a), "agent-a");
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    // td-b's CA cannot speak for td-a: the partner mints agent-a's ID, and is refused.
    let forged = partner.svid(&[A], Validity::Now).write(dir, "forged");
    let (s, v) = ask(Some(&forged), None, "agent-a");
    assert_eq!(s, 401, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("td-b.test"),
        "the refusal names the CA's trust domain: {v}"
    );
    let keyring = cp.keyring();
    let db = cp.dir.join("decisions.db");
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors.first());
}

#[test]
fn without_bundles_a_spiffe_id_is_refused_at_registration() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(&tmp.path().join("cp"), Options::default());
    let admin = cp.admin_token.clone().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let register = |body: Value| rt.block_on(crate::post(&cp.base, "/agents", Some(&admin), &body));
    let (s, v) = register(json!({"actor": "agent-a", "spiffe_id": A}));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("asks for no client certificates"),
        "{v}"
    );
    // Nothing was registered: the name is still free.
    let (s, v) = register(json!({"actor": "agent-a"}));
    assert_eq!(s, 201, "{v}");
}
