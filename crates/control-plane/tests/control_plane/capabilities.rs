//! Capabilities: issued under policy, checked at use (signature, expiry, revocation,
//! attenuation, actor), revoked, and the execution reports linked to their decisions; every
//! step a record that verifies.

use serde_json::{json, Value};
use zt_core::capability::report::{self, ExecutionReport};
use zt_core::capability::{self, Grants};
use zt_core::crypto::SigningKey;
use zt_core::time::Timestamp;

use crate::{delete, get, post, post_cedar, records, register, start, verify_store};

/// Stops the control plane and verifies its store under its keyring.
fn stop_and_verify(cp: crate::Running, dir: &std::path::Path) {
    cp.stop();
    let report = verify_store(
        &dir.join("decisions.db"),
        &std::fs::read(dir.join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
}

fn grants() -> Value {
    json!({"read": ["/srv/data"], "exec": ["/usr/bin/cat"], "net": false})
}

async fn issue(base: &str, admin: &str, actor: &str, ttl_s: u64, g: Value) -> (u16, Value) {
    post(
        base,
        "/capabilities",
        Some(admin),
        &json!({"actor": actor, "action": "files.read", "resource": "data/x", "ttl_s": ttl_s, "grants": g}),
    )
    .await
}

/// A policy that lets `actor` read data/x.
async fn allow_reads(base: &str, admin: &str, actor: &str) {
    let policy = json!({"action": "files.read", "resource": "data/x", "actor": actor});
    let (s, v) = post(base, "/policies", Some(admin), &policy).await;
    assert_eq!(s, 201, "{v}");
}

async fn use_cap(base: &str, token: &str, actor: &str, cap: &str) -> (u16, Value) {
    post(
        base,
        "/actions",
        Some(token),
        &json!({"actor": actor, "action": "files.read", "resource": "data/x", "capability": cap}),
    )
    .await
}

/// Issuance is decided by Cedar with the action's own principal, action and resource (so the
/// narrow rule that allows the action allows a capability for it), grants in the context (so
/// operators can forbid some grants); each issuance is a sealed decision, a denied one too.
#[tokio::test(flavor = "multi_thread")]
async fn issuance_is_a_recorded_decision_under_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    register(&b, Some(&admin), "agent-a").await;

    // no policy allows files.read yet: denied, recorded, no token
    let (s, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v.get("token").is_none() && v["audit"]["decision"] == "deny",
        "{v}"
    );

    allow_reads(&b, &admin, "agent-a").await;
    let (s, v) = post_cedar(
        &b,
        Some(&admin),
        "@id(\"no-net-capabilities\")\nforbid (principal, action, resource) when { context has issuance && context.issuance && context.grants.net };",
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let (s, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap();
    assert!(token.starts_with("ztcap1."));
    assert_eq!(v["audit"]["decision"], "allow");
    assert_eq!(v["audit"]["context"]["capability"]["id"], v["id"]);
    // the token verifies under the control plane's keyring, offline
    let ring = zt_core::keyring::Keyring::from_json(&cp.keyring()).unwrap();
    let c = capability::verify(token, &ring, Timestamp::now()).unwrap();
    assert_eq!(
        (c.actor.as_str(), c.grants.read.clone()),
        ("agent-a", vec!["/srv/data".to_owned()])
    );

    // the operator's rule on grants: network access is never issued
    let mut net = grants();
    net["net"] = true.into();
    let (s, v) = issue(&b, &admin, "agent-a", 60, net).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("no-net-capabilities"),
        "{v}"
    );

    // bad input: a clear 400, nothing recorded
    let before = records(&cp.dir.join("decisions.db")).len();
    for (body, says) in [
        (
            json!({"actor": "agent-a", "action": "files.read", "ttl_s": 60, "grants": {"read": ["rel/path"]}}),
            "not absolute",
        ),
        (
            json!({"actor": "agent-a", "action": "files.read", "ttl_s": 60, "grants": {"read": ["/a/../etc"]}}),
            "`..`",
        ),
        (
            json!({"actor": "agent-a", "action": "files.read", "ttl_s": 0, "grants": {}}),
            "ttl_s",
        ),
        (
            json!({"actor": "agent-a", "action": "files.read", "grants": {}}),
            "ttl_s",
        ),
        (
            json!({"actor": "agent-a", "action": "files.read", "ttl_s": 60, "grants": {"root": true}}),
            "unknown grant",
        ),
        (
            json!({"actor": "agent-a", "action": "zt.agent.register", "ttl_s": 60, "grants": {}}),
            "zt.",
        ),
    ] {
        let (s, v) = post(&b, "/capabilities", Some(&admin), &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(says),
            "{body}: {v}"
        );
    }
    // an agent's token is not an admin's
    let agent = register(&b, Some(&admin), "agent-b").await;
    let (s, _) = issue(&b, &agent, "agent-b", 60, grants()).await;
    assert_eq!(s, 403);
    assert_eq!(
        records(&cp.dir.join("decisions.db")).len(),
        before + 1,
        "only agent-b's registration"
    );
    stop_and_verify(cp, tmp.path());
}

/// Use: a valid capability gives a signed allow that records its id and effective grants;
/// expired, widened, another actor's, forged and revoked capabilities are recorded denies.
#[tokio::test(flavor = "multi_thread")]
async fn use_is_checked_and_every_refusal_is_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let tb = register(&b, Some(&admin), "agent-b").await;
    for actor in ["agent-a", "agent-b"] {
        allow_reads(&b, &admin, actor).await;
    }
    let (_, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();

    // an attenuated token (narrower, offline) is used with its narrower grants
    let narrow = Grants::from_value(
        &zt_core::json::parse(br#"{"read":["/srv/data/sub"],"exec":["/usr/bin/cat"]}"#).unwrap(),
    )
    .unwrap();
    let attenuated = capability::attenuate(&token, Some(&narrow), None).unwrap();
    let (s, v) = use_cap(&b, &ta, "agent-a", &attenuated).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["capability"]["id"], id.as_str());
    assert_eq!(
        v["audit"]["context"]["capability"]["grants"]["read"],
        json!(["/srv/data/sub"])
    );
    assert_eq!(v["audit"]["context"]["capability"]["attenuations"], 1);

    // refusals, each a recorded deny naming why
    let widened = capability::attenuate_unchecked(
        &token,
        &Grants::from_value(&zt_core::json::parse(br#"{"read":["/"]}"#).unwrap()).unwrap(),
        Timestamp::now(),
    )
    .unwrap();
    let forged = {
        let key = zt_core::crypto::SigningKey::generate();
        let ring = zt_core::keyring::Keyring::from_json(&cp.keyring()).unwrap();
        let kid = ring.entries()[0].key_id.clone();
        capability::issue(
            &capability::Issue {
                id: id.clone(),
                actor: "agent-a".into(),
                action: "files.read".into(),
                resource: "data/x".into(),
                grants: Grants {
                    read: vec!["/".into()],
                    exec: vec!["/".into()],
                    net: true,
                    ..Grants::default()
                },
                issued_at: Timestamp::now(),
                not_after: Timestamp::from_unix_nanos(
                    Timestamp::now().unix_nanos() + 3_600_000_000_000,
                ),
                issuer_key_id: kid,
            },
            |d| Ok::<_, ()>(key.sign_digest(d)),
        )
        .unwrap()
    };
    for (tok, actor, cap, says) in [
        (&ta, "agent-a", widened.as_str(), "widens"),
        (&ta, "agent-a", forged.as_str(), "signature does not verify"),
        (
            &tb,
            "agent-b",
            token.as_str(),
            "bound to agent agent-a, not agent-b",
        ),
        (&tb, "agent-a", token.as_str(), "actor mismatch"),
        (&ta, "agent-a", "ztcap1.garbage", "malformed"),
    ] {
        let (s, v) = use_cap(&b, tok, actor, cap).await;
        assert_eq!(
            (s, v["decision"].as_str()),
            (403, Some("deny")),
            "{says}: {v}"
        );
        assert!(v["reason"].as_str().unwrap().contains(says), "{says}: {v}");
    }
    // another action than the capability's
    let (s, v) = post(
        &b,
        "/actions",
        Some(&ta),
        &json!({"actor": "agent-a", "action": "files.write", "resource": "data/x", "capability": token}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("is for files.read"),
        "{v}"
    );

    // expired
    let (_, v) = issue(&b, &admin, "agent-a", 1, grants()).await;
    let short = v["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, v) = use_cap(&b, &ta, "agent-a", &short).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("expired"), "{v}");

    // revoked: the status a broker watches, the revocation on the admin chain
    let (s, v) = get(&b, &format!("/capabilities/{id}"), Some(&ta)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("active")), "{v}");
    let (s, _) = get(&b, &format!("/capabilities/{id}"), Some(&tb)).await;
    assert_eq!(s, 403, "another agent may not watch it");
    let (s, _) = get(&b, &format!("/capabilities/{id}"), None).await;
    assert_eq!(s, 401);
    let (s, _) = delete(&b, &format!("/capabilities/{id}"), Some(&ta)).await;
    assert_eq!(s, 403, "only an admin revokes");
    let (s, v) = delete(&b, &format!("/capabilities/{id}"), Some(&admin)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["action"], "zt.capability.revoke");
    let (s, v) = get(&b, &format!("/capabilities/{id}"), Some(&ta)).await;
    assert_eq!((s, v["state"].as_str()), (410, Some("revoked")), "{v}");
    let (s, _) = delete(&b, &format!("/capabilities/{id}"), Some(&admin)).await;
    assert_eq!(s, 409);
    let (s, _) = delete(&b, "/capabilities/cap-nope", Some(&admin)).await;
    assert_eq!(s, 404);
    for t in [&token, &attenuated] {
        let (s, v) = use_cap(&b, &ta, "agent-a", t).await;
        assert_eq!(s, 403, "{v}");
        assert!(v["reason"].as_str().unwrap().contains("revoked"), "{v}");
    }
    cp.stop();

    let db = tmp.path().join("decisions.db");
    let recs = records(&db);
    let denied_uses = recs
        .iter()
        .filter(|r| r["decision"] == "deny" && r["context"]["capability"].is_object())
        .count();
    assert_eq!(denied_uses, 9, "every refused use is on record");
    let report = verify_store(
        &db,
        &std::fs::read(tmp.path().join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
}

/// A registered broker: its token and report key.
async fn register_broker(base: &str, admin: Option<&str>, name: &str) -> (String, SigningKey) {
    let key = SigningKey::generate();
    let (s, v) = post(
        base,
        "/brokers",
        admin,
        &json!({"name": name, "public_key": key.public_key().to_pem()}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["audit"]["action"], report::REGISTER_ACTION);
    assert_eq!(
        v["key_id"].as_str(),
        Some(report::broker_key_id(&key.public_key()).as_str())
    );
    (v["token"].as_str().unwrap().to_owned(), key)
}

/// The report of a run of `/usr/bin/cat` under `allow`, as broker `broker` would file it.
fn report_of(allow: &str, id: &str, broker: &str, g: &Value) -> ExecutionReport {
    ExecutionReport {
        decision: zt_core::Hash32::from_hex(allow).unwrap(),
        capability_id: id.to_owned(),
        actor: "agent-a".into(),
        broker: broker.to_owned(),
        grants: Grants::from_value(&zt_core::json::parse(g.to_string().as_bytes()).unwrap())
            .unwrap(),
        command: vec!["/usr/bin/cat".into(), "/srv/data/a".into()],
        landlock_abi: Some(6),
        unscoped: false,
        outcome: report::Outcome::Ran {
            exit_code: Some(0),
            signal: None,
            duration_ms: 12,
            stopped: None,
        },
    }
}

/// `POST /executions` with a filing (the report, signed when `key` is given).
async fn file(
    base: &str,
    token: Option<&str>,
    r: &ExecutionReport,
    key: Option<(&str, &SigningKey)>,
) -> (u16, Value) {
    let body = zt_broker::run::filed_json(r, key.map(|(n, k)| (n.to_owned(), k.clone())).as_ref());
    let filing: Value = serde_json::from_slice(&body).unwrap();
    zt_conformance::schema::check(zt_conformance::schema::Schema::ExecutionFiling, &filing)
        .unwrap_or_else(|e| panic!("the filing is off its schema: {e:?}"));
    crate::post_raw(base, "/executions", token, "application/json", body).await
}

/// Only a registered broker's signed report is an execution: it names its allow, carries the
/// grants that allow sealed, and is the only one for that allow. Anything else is still
/// sealed, as a deny that says why: an agent's own report (its word about itself), a second
/// report for one allow, other grants, a signature by another key, a decision nobody made.
/// Every answer with a record verifies under the pinned key.
#[tokio::test(flavor = "multi_thread")]
async fn only_a_registered_brokers_signed_report_is_an_execution() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let tb = register(&b, Some(&admin), "agent-b").await;
    allow_reads(&b, &admin, "agent-a").await;
    let (broker_token, broker_key) = register_broker(&b, Some(&admin), "broker-1").await;
    let (_, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    let (token, id) = (
        v["token"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    );
    let (s, v) = use_cap(&b, &ta, "agent-a", &token).await;
    assert_eq!(s, 200, "{v}");
    let allow = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let pinned = zt_client::PinnedKey::from_keyring_json(&cp.keyring()).unwrap();
    let sealed = |v: &Value| {
        zt_client::verify_sealed(v.to_string().as_bytes(), &pinned, Timestamp::now())
            .unwrap_or_else(|e| panic!("the answer does not verify: {e}\n{v}"))
    };
    let good = report_of(&allow, &id, "broker-1", &grants());
    let signed = Some(("broker-1", &broker_key));

    // the agent's own report, even with invented grants and a clean exit: a claim, sealed
    // as a deny, never an execution
    let mut invented = good.clone();
    invented.grants = Grants::default();
    for (tok, r) in [(&ta, &good), (&ta, &invented), (&tb, &good)] {
        let (s, v) = file(&b, Some(tok), r, None).await;
        assert_eq!(
            (s, v["audit"]["decision"].as_str()),
            (403, Some("deny")),
            "{v}"
        );
        assert!(
            v["audit"]["reason"]
                .as_str()
                .unwrap()
                .contains("claim, not evidence"),
            "{v}"
        );
        sealed(&v);
    }
    // an agent cannot pass its report off as the broker's: the signature is the broker's key
    let (s, v) = file(&b, Some(&ta), &good, signed).await;
    assert_eq!(s, 403, "{v}");

    // the broker's signed report: an execution, once
    let (s, v) = file(&b, Some(&broker_token), &good, signed).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["audit"]["action"], capability::EXECUTION_ACTION);
    assert_eq!(v["audit"]["decision"], "allow");
    assert_eq!(v["audit"]["actor"], "agent-a");
    assert_eq!(v["audit"]["resource"], "data/x");
    assert_eq!(v["audit"]["context"]["decision"], allow.as_str());
    assert_eq!(v["audit"]["context"]["attestation"]["broker"], "broker-1");
    assert!(
        v.get("reason").is_none(),
        "no member beside audit disagrees with it: {v}"
    );
    let first = sealed(&v);
    let (s, v) = file(&b, Some(&broker_token), &good, signed).await;
    assert_eq!(
        (s, v["audit"]["decision"].as_str()),
        (409, Some("deny")),
        "{v}"
    );
    assert!(
        v["audit"]["reason"].as_str().unwrap().contains(&format!(
            "already has its execution record {}",
            first.short()
        )),
        "{v}"
    );

    // a second allow: the broker's report must carry what that allow sealed
    let (_, v) = use_cap(&b, &ta, "agent-a", &token).await;
    let allow2 = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let mut other_grants = report_of(&allow2, &id, "broker-1", &grants());
    other_grants.grants.sandbox = zt_core::capability::SandboxKind::Process;
    let other_key = SigningKey::generate();
    let nobody = report_of(&"ab".repeat(32), &id, "broker-1", &grants());
    for (r, key, says) in [
        (&other_grants, &broker_key, "other grants"),
        (
            &report_of(&allow2, &id, "broker-1", &grants()),
            &other_key,
            "signed with key",
        ),
        (&nobody, &broker_key, "no allow made here"),
    ] {
        let (s, v) = file(&b, Some(&broker_token), r, Some(("broker-1", key))).await;
        assert_eq!(
            (s, v["audit"]["decision"].as_str()),
            (409, Some("deny")),
            "{says}: {v}"
        );
        assert!(
            v["audit"]["reason"].as_str().unwrap().contains(says),
            "{says}: {v}"
        );
        sealed(&v);
    }
    // ... and with them, it is
    let (s, v) = file(
        &b,
        Some(&broker_token),
        &report_of(&allow2, &id, "broker-1", &grants()),
        signed,
    )
    .await;
    assert_eq!(s, 201, "{v}");

    // bad filings: 400, nothing sealed; no credentials: 401
    let before = records(&cp.dir.join("decisions.db")).len();
    for body in [
        json!({"report": {"v": "zt-exec/0"}}),
        json!({"decision": allow}),
        json!({"report": serde_json::from_slice::<Value>(&zt_core::json::canonicalize(&good.to_value())).unwrap(), "sudo": true}),
    ] {
        let (s, v) = post(&b, "/executions", Some(&broker_token), &body).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, _) = file(&b, None, &good, signed).await;
    assert_eq!(s, 401);
    assert_eq!(records(&cp.dir.join("decisions.db")).len(), before);

    // a revoked broker attests nothing
    let (s, v) = delete(&b, "/brokers/broker-1", Some(&admin)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["action"], report::REVOKE_ACTION);
    let (s, _) = file(&b, Some(&broker_token), &good, signed).await;
    assert_eq!(s, 401);
    let (s, _) = delete(&b, &format!("/capabilities/{id}"), Some(&admin)).await;
    assert_eq!(s, 200);
    cp.stop();

    // after a restart the revocation holds
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let (s, v) = use_cap(&cp.base, &ta, "agent-a", &token).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("revoked"), "{v}");
    let (s, _) = file(&cp.base, Some(&broker_token), &good, signed).await;
    assert_eq!(s, 401, "the broker's revocation survives a restart");
    cp.stop();
    let db = tmp.path().join("decisions.db");
    let execs: Vec<Value> = records(&db)
        .into_iter()
        .filter(|r| r["action"] == capability::EXECUTION_ACTION)
        .collect();
    assert_eq!(execs.len(), 10, "every report is kept");
    assert_eq!(
        execs.iter().filter(|r| r["decision"] == "allow").count(),
        2,
        "two attested executions, one per allow"
    );
    let report = verify_store(
        &db,
        &std::fs::read(tmp.path().join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
}

/// Brokers are admin business: registration needs the admin token, a name once, a real
/// P-256 key; the list shows them; an SVID speaks for one principal only.
#[tokio::test(flavor = "multi_thread")]
async fn brokers_are_registered_and_revoked_by_admins_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let pem = SigningKey::generate().public_key().to_pem();
    let (s, _) = post(
        &b,
        "/brokers",
        Some(&ta),
        &json!({"name": "b", "public_key": pem}),
    )
    .await;
    assert_eq!(s, 403);
    for (body, says) in [
        (json!({"name": "b"}), "`public_key`"),
        (
            json!({"name": "b", "public_key": "nonsense"}),
            "not a P-256 public key",
        ),
        (json!({"name": "zt.b", "public_key": pem}), "zt."),
        (
            json!({"name": "b", "public_key": pem, "root": true}),
            "unknown member",
        ),
    ] {
        let (s, v) = post(&b, "/brokers", Some(&admin), &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or_default().contains(says),
            "{v}"
        );
    }
    register_broker(&b, Some(&admin), "b").await;
    let (s, _) = post(
        &b,
        "/brokers",
        Some(&admin),
        &json!({"name": "b", "public_key": pem}),
    )
    .await;
    assert_eq!(s, 409);
    let (s, v) = get(&b, "/brokers", Some(&admin)).await;
    assert_eq!(s, 200);
    assert_eq!(v["brokers"][0]["name"], "b", "{v}");
    let (s, _) = delete(&b, "/brokers/nobody", Some(&admin)).await;
    assert_eq!(s, 404);
    stop_and_verify(cp, tmp.path());
}

/// Members the control plane sets are refused in an agent's request: a policy written for
/// brokered use (`context.issuance == false`) cannot be met by an agent that writes it.
#[tokio::test(flavor = "multi_thread")]
async fn reserved_context_members_are_refused_in_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let (s, v) = post_cedar(
        &b,
        Some(&admin),
        "@id(\"brokered-only\")\npermit (principal, action == Action::\"files.read\", resource) when { context has issuance && context.issuance == false && context has grants };",
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let before = records(&cp.dir.join("decisions.db")).len();
    for (member, ctx) in [
        (
            "issuance",
            json!({"issuance": false, "grants": {"read": ["/"]}}),
        ),
        (
            "grants",
            json!({"grants": {"read": ["/"]}, "why": "brokered"}),
        ),
        ("capability", json!({"capability": {"id": "cap-1"}})),
        (
            "identity",
            json!({"identity": "spiffe://example.org/admin"}),
        ),
        ("sandbox", json!({"sandbox": "process"})),
    ] {
        let (s, v) = post(
            &b,
            "/actions",
            Some(&ta),
            &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "context": ctx}),
        )
        .await;
        assert_eq!(s, 400, "{member}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("`{member}` is the control plane's own")),
            "{member}: {v}"
        );
    }
    assert_eq!(
        records(&cp.dir.join("decisions.db")).len(),
        before,
        "nothing decided"
    );
    // the same rule is met through a capability, where the control plane sets them
    let (s, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    assert_eq!(s, 403, "issuance is not a use: {v}");
    cp.stop();
}

/// `/executions` is rate-limited per broker and per agent like `/actions`: past the limit,
/// 429 before the body is read, counted in the window's summary.
#[tokio::test(flavor = "multi_thread")]
async fn execution_reports_are_rate_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options {
        actor_rate: zt_control_plane::RateLimit {
            per_second: 0.5,
            burst: 2,
        },
        ..zt_control_plane::Options::default()
    };
    let cp = start(tmp.path(), opts);
    let (b, admin) = (cp.base.clone(), cp.admin_token.clone().unwrap());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let (bt, key) = register_broker(&b, Some(&admin), "broker-1").await;
    let r = report_of(&"ab".repeat(32), "cap-x", "broker-1", &grants());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(file(&b, Some(&bt), &r, Some(("broker-1", &key))).await.0);
        statuses.push(file(&b, Some(&ta), &r, None).await.0);
    }
    assert_eq!(
        statuses,
        [409, 403, 409, 403, 429, 429, 429, 429],
        "{statuses:?}"
    );
    cp.stop();
}

/// Open mode (loopback, no tokens): capabilities are issued, used, watched and reported
/// without any token, and still checked and recorded.
#[tokio::test(flavor = "multi_thread")]
async fn open_mode_needs_no_token_and_still_checks_and_records() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), crate::open_opts());
    let b = cp.base.clone();
    register(&b, None, "agent-a").await;
    post(
        &b,
        "/policies",
        None,
        &json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"}),
    )
    .await;
    let (s, v) = post(
        &b,
        "/capabilities",
        None,
        &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": 60, "grants": grants()}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (id, token) = (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    );
    let (s, v) = post(
        &b,
        "/actions",
        None,
        &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "capability": token}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let allow = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let (s, v) = get(&b, &format!("/capabilities/{id}"), None).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("active")), "{v}");
    // without a broker's credentials, a report is a claim even in open mode
    let (s, v) = file(&b, None, &report_of(&allow, &id, "none", &grants()), None).await;
    assert_eq!(
        (s, v["audit"]["decision"].as_str()),
        (403, Some("deny")),
        "{v}"
    );
    assert_eq!(v["audit"]["actor"], "agent-a", "the decision's agent");
    // a widened token is refused here too
    let widened = capability::attenuate_unchecked(
        &token,
        &Grants {
            read: vec!["/".into()],
            ..Grants::default()
        },
        Timestamp::now(),
    )
    .unwrap();
    let (s, v) = post(
        &b,
        "/actions",
        None,
        &json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "capability": widened}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    stop_and_verify(cp, tmp.path());
}
