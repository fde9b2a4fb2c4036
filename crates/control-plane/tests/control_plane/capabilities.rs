//! Capabilities: issued under policy, checked at use (signature, expiry, revocation,
//! attenuation, actor), revoked, and the execution reports linked to their decisions; every
//! step a record that verifies.

use serde_json::{json, Value};
use zt_core::capability::{self, Grants};
use zt_core::time::Timestamp;

use crate::{delete, get, post, post_cedar, records, register, start, verify_store};

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
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let (b, admin) = (cp.base.clone(), cp.admin_token.clone().unwrap());
    register(&b, Some(&admin), "agent-a").await;

    // no policy allows files.read yet: denied, recorded, no token
    let (s, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v.get("token").is_none() && v["audit"]["decision"] == "deny",
        "{v}"
    );

    post(
        &b,
        "/policies",
        Some(&admin),
        &json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"}),
    )
    .await;
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
    cp.stop();
    let report = verify_store(
        &tmp.path().join("decisions.db"),
        &std::fs::read(tmp.path().join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
}

/// Use: a valid capability gives a signed allow that records its id and effective grants;
/// expired, widened, another actor's, forged and revoked capabilities are recorded denies.
#[tokio::test(flavor = "multi_thread")]
async fn use_is_checked_and_every_refusal_is_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let (b, admin) = (cp.base.clone(), cp.admin_token.clone().unwrap());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let tb = register(&b, Some(&admin), "agent-b").await;
    for actor in ["agent-a", "agent-b"] {
        post(
            &b,
            "/policies",
            Some(&admin),
            &json!({"action": "files.read", "resource": "data/x", "actor": actor}),
        )
        .await;
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
                    write: vec!["/".into()],
                    exec: vec!["/".into()],
                    net: true,
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

/// A broker's execution report is sealed on the decision chain and names its allow; one that
/// names no allow of that agent is kept as a deny saying so, and the revocation survives a
/// restart.
#[tokio::test(flavor = "multi_thread")]
async fn execution_reports_link_to_their_decision() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let (b, admin) = (cp.base.clone(), cp.admin_token.clone().unwrap());
    let ta = register(&b, Some(&admin), "agent-a").await;
    let tb = register(&b, Some(&admin), "agent-b").await;
    post(
        &b,
        "/policies",
        Some(&admin),
        &json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"}),
    )
    .await;
    let (_, v) = issue(&b, &admin, "agent-a", 60, grants()).await;
    let (token, id) = (
        v["token"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    );
    let (s, v) = use_cap(&b, &ta, "agent-a", &token).await;
    assert_eq!(s, 200, "{v}");
    let allow = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let report = |decision: &str| {
        json!({"decision": decision, "capability_id": id, "sandbox": "nono", "grants": grants(),
               "command": ["/usr/bin/cat", "/srv/data/a"], "exit_code": 0, "signal": null,
               "duration_ms": 12, "stopped": null})
    };
    let (s, v) = post(&b, "/executions", Some(&ta), &report(&allow)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["audit"]["action"], capability::EXECUTION_ACTION);
    assert_eq!(v["audit"]["context"]["decision"], allow.as_str());
    assert_eq!(v["audit"]["resource"], "data/x");
    // another agent naming agent-a's decision; a decision nobody made
    let (s, v) = post(&b, "/executions", Some(&tb), &report(&allow)).await;
    assert_eq!(
        (s, v["audit"]["decision"].as_str()),
        (409, Some("deny")),
        "{v}"
    );
    let (s, v) = post(&b, "/executions", Some(&ta), &report(&"ab".repeat(32))).await;
    assert_eq!(
        (s, v["audit"]["decision"].as_str()),
        (409, Some("deny")),
        "{v}"
    );
    // bad reports: 400, nothing sealed
    let mut bad = report(&allow);
    bad["sandbox"] = "docker".into();
    let (s, _) = post(&b, "/executions", Some(&ta), &bad).await;
    assert_eq!(s, 400);
    let (s, _) = post(&b, "/executions", None, &report(&allow)).await;
    assert_eq!(s, 401);
    let (s, _) = delete(&b, &format!("/capabilities/{id}"), Some(&admin)).await;
    assert_eq!(s, 200);
    cp.stop();

    // after a restart the revocation holds
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let (s, v) = use_cap(&cp.base, &ta, "agent-a", &token).await;
    assert_eq!(s, 403, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("revoked"), "{v}");
    cp.stop();
    let db = tmp.path().join("decisions.db");
    let execs: Vec<Value> = records(&db)
        .into_iter()
        .filter(|r| r["action"] == capability::EXECUTION_ACTION)
        .collect();
    assert_eq!(execs.len(), 3, "every report is kept");
    let report = verify_store(
        &db,
        &std::fs::read(tmp.path().join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
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
    let (s, v) = post(
        &b,
        "/executions",
        None,
        &json!({"decision": allow, "capability_id": id, "sandbox": "process", "grants": grants(),
                "command": ["/usr/bin/cat"], "exit_code": 0, "signal": null, "duration_ms": 3, "stopped": null}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
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
    cp.stop();
    let report = verify_store(
        &tmp.path().join("decisions.db"),
        &std::fs::read(tmp.path().join("keyring.json")).unwrap(),
    );
    assert!(report.ok, "{:?}", report.errors);
}
