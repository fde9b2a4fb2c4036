//! Token lifecycle: a leaked token must be revocable, rotatable and able to expire, and each
//! step is evidence on the chain like any decision.

use serde_json::{json, Value};

use crate::{act, delete, post, records, register, start, verify_store};

/// The records of `db` whose action is `action`.
fn with_action(db: &std::path::Path, action: &str) -> Vec<Value> {
    records(db)
        .into_iter()
        .filter(|r| r["action"] == action)
        .collect()
}

/// A leaked agent token keeps working until the agent is revoked; after that every request
/// with it is a recorded deny, and the revocation itself is a sealed record.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_agent_is_refused_and_the_revocation_is_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let leaked = register(&b, Some(&admin), "agent-leaky").await;
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let (s, _) = act(&b, Some(&leaked), "agent-leaky", "x.run", "").await;
    assert_eq!(s, 200);

    // only the admin may revoke
    let (s, _) = delete(&b, "/agents/agent-leaky", Some(&leaked)).await;
    assert_eq!(s, 403);
    let (s, v) = delete(&b, "/agents/agent-leaky", Some(&admin)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true);
    let revocation_hash = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let (s, _) = delete(&b, "/agents/agent-nobody", Some(&admin)).await;
    assert_eq!(s, 404);

    let (s, v) = act(&b, Some(&leaked), "agent-leaky", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("revoked"),
        "the reason names the revocation: {v}"
    );
    // the agent's name without a token is no way back in
    let (s, _) = act(&b, None, "agent-leaky", "x.run", "").await;
    assert_eq!(s, 401);
    let (_, listed) = crate::get(&b, "/agents", Some(&admin)).await;
    assert_eq!(listed["agents"], json!([]), "{listed}");

    let db = cp.dir.join("decisions.db");
    let keyring = cp.keyring();
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    let rev = with_action(&db, "zt.agent.revoke");
    assert_eq!(rev.len(), 1, "one revocation record");
    assert_eq!(rev[0]["current_hash"], revocation_hash.as_str());
    assert_eq!(rev[0]["actor"], "zt.admin");
    assert_eq!(rev[0]["resource"], "agent/agent-leaky");
    assert_eq!(rev[0]["decision"], "allow");
    assert!(rev[0]["context"]["identity"]
        .as_str()
        .unwrap()
        .starts_with("admin-token:"));
    let denied = records(&db)
        .into_iter()
        .filter(|r| r["actor"] == "agent-leaky" && r["decision"] == "deny")
        .count();
    assert_eq!(
        denied, 2,
        "both refusals after the revocation are on record"
    );
}

/// Rotation: a new token comes back, the old one stops working at once, and the rotation is
/// on record naming both tokens' ids (never the tokens).
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_token_stops_working_and_the_rotation_is_on_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let old = register(&b, Some(&admin), "agent-r").await;
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;

    let (s, v) = post(&b, "/agents/agent-r/token", Some(&old), &json!({})).await;
    assert_eq!(s, 403, "an agent cannot rotate its own token: {v}");
    let (s, v) = post(&b, "/agents/agent-r/token", Some(&admin), &json!({})).await;
    assert_eq!(s, 200, "{v}");
    let new = v["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let (s, v) = act(&b, Some(&old), "agent-r", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("rotated"), "{v}");
    let (s, _) = act(&b, Some(&new), "agent-r", "x.run", "").await;
    assert_eq!(s, 200);

    let db = cp.dir.join("decisions.db");
    cp.stop();
    let rot = with_action(&db, "zt.agent.token.rotate");
    assert_eq!(rot.len(), 1);
    let refused = records(&db)
        .into_iter()
        .filter(|r| {
            r["context"]["identity"] == "retired-token:agent-r"
                && r["reason"].as_str().unwrap().contains("rotated")
        })
        .count();
    assert_eq!(refused, 1, "the old token's refusal is on record");
    let text = rot[0].to_string();
    assert!(!text.contains(&old) && !text.contains(&new), "{text}");
    assert!(rot[0]["context"]["token_id"].is_string(), "{text}");
    assert!(rot[0]["context"]["retired_token_id"].is_string(), "{text}");
}

/// `token_ttl_s`: a token that has expired is a recorded deny "token expired".
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_a_recorded_deny() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let (s, v) = post(
        &b,
        "/agents",
        Some(&admin),
        &json!({"actor": "agent-brief", "token_ttl_s": 1}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["token_expires_at"].is_string(), "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let (s, _) = act(&b, Some(&token), "agent-brief", "x.run", "").await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (s, v) = act(&b, Some(&token), "agent-brief", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("token expired"),
        "{v}"
    );
    // a rotation with a new ttl brings the agent back
    let (s, v) = post(
        &b,
        "/agents/agent-brief/token",
        Some(&admin),
        &json!({"token_ttl_s": 3600}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let fresh = v["token"].as_str().unwrap().to_owned();
    let (s, _) = act(&b, Some(&fresh), "agent-brief", "x.run", "").await;
    assert_eq!(s, 200);
    for bad in [json!(0), json!(-5), json!("60"), json!(1.5)] {
        let (s, v) = post(
            &b,
            "/agents",
            Some(&admin),
            &json!({"actor": "agent-x", "token_ttl_s": bad}),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let db = cp.dir.join("decisions.db");
    cp.stop();
    let expired = records(&db)
        .into_iter()
        .filter(|r| r["reason"].as_str().unwrap_or("").contains("token expired"))
        .count();
    assert_eq!(expired, 1);
}

/// Revocations, rotations and expiry survive a restart (state.db), and a revoked agent named
/// in open mode without a token is refused naming the revocation.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_rotation_and_expiry_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options::default;
    let cp = start(tmp.path(), opts());
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let gone = register(&b, Some(&admin), "agent-gone").await;
    let old = register(&b, Some(&admin), "agent-rot").await;
    let (_, v) = post(&b, "/agents/agent-rot/token", Some(&admin), &json!({})).await;
    let new = v["token"].as_str().unwrap().to_owned();
    let (_, v) = post(
        &b,
        "/agents",
        Some(&admin),
        &json!({"actor": "agent-brief", "token_ttl_s": 1}),
    )
    .await;
    let brief = v["token"].as_str().unwrap().to_owned();
    let (s, _) = delete(&b, "/agents/agent-gone", Some(&admin)).await;
    assert_eq!(s, 200);
    cp.stop();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let cp = start(tmp.path(), opts());
    let b = cp.base.clone();
    for (token, actor, status, needle) in [
        (&gone, "agent-gone", 401, "revoked"),
        (&old, "agent-rot", 401, "rotated"),
        (&new, "agent-rot", 200, ""),
        (&brief, "agent-brief", 401, "token expired"),
    ] {
        let (s, v) = act(&b, Some(token), actor, "x.run", "").await;
        assert_eq!(s, status, "{actor}: {v}");
        assert!(
            v["reason"].as_str().unwrap_or("").contains(needle),
            "{actor}: {v}"
        );
    }
    cp.stop();
    // open mode: the name alone is refused, and says why
    let cp = start(tmp.path(), crate::open_opts());
    let (s, v) = act(&cp.base, None, "agent-gone", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("was revoked at"),
        "{v}"
    );
    // registering it again is a new registration, on record
    let (s, v) = post(&cp.base, "/agents", None, &json!({"actor": "agent-gone"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["audit"]["action"], "zt.agent.register");
    cp.stop();
}

/// A rotation or revocation whose record cannot be sealed changes nothing: the token keeps
/// working, and the admin is told to retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_unrecordable_revocation_or_rotation_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options {
        store_busy_timeout: std::time::Duration::from_millis(200),
        ..zt_control_plane::Options::default()
    };
    let cp = start(tmp.path(), opts);
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    let token = register(&b, Some(&admin), "agent-a").await;
    let db = cp.dir.join("decisions.db");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (s, v) = delete(&b, "/agents/agent-a", Some(&admin)).await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("nothing changed"),
        "{v}"
    );
    let (s, v) = post(&b, "/agents/agent-a/token", Some(&admin), &json!({})).await;
    assert_eq!(s, 503, "{v}");
    assert!(v.get("token").is_none(), "no token without a record: {v}");
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    let (s, v) = act(&b, Some(&token), "agent-a", "x.run", "").await;
    assert_eq!(s, 200, "the token still works: {v}");
    cp.stop();
    assert!(with_action(&db, "zt.agent.revoke").is_empty());
    assert!(with_action(&db, "zt.agent.token.rotate").is_empty());
}

/// `zt.` names are the control plane's own: no agent can be registered as `zt.admin`, and an
/// agent asking for a `zt.` action is denied, on record.
#[tokio::test(flavor = "multi_thread")]
async fn the_zt_namespace_is_the_control_planes_own() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), crate::open_opts());
    let b = cp.base.clone();
    let (s, v) = post(&b, "/agents", None, &json!({"actor": "zt.admin"})).await;
    assert_eq!(s, 400, "{v}");
    register(&b, None, "agent-a").await;
    post(&b, "/policies", None, &json!({"action": "zt.agent.revoke"})).await;
    let (s, v) = act(&b, None, "agent-a", "zt.agent.revoke", "agent/agent-b").await;
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("`zt.`"), "{v}");
    let (s, v) = post(
        &b,
        "/agents",
        None,
        &json!({"actor": "agent-b", "admin": true}),
    )
    .await;
    assert_eq!(s, 400, "unknown members are refused: {v}");
    cp.stop();
}

/// The content-type rule holds with an admin token too.
#[tokio::test(flavor = "multi_thread")]
async fn admin_bodies_are_json_in_token_mode_too() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let admin = cp.admin_token.clone().unwrap();
    let (s, v) = crate::post_raw(
        &cp.base,
        "/agents",
        Some(&admin),
        "text/plain",
        br#"{"actor":"agent-a"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 415, "{v}");
    let (s, v) = crate::post_cedar(
        &cp.base,
        Some(&admin),
        r#"permit (principal, action == Action::"a", resource);"#,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    cp.stop();
}

/// A revocation whose answer times out (a slow signer, a short request timeout) is still
/// carried out once it is on record: "on record but not in effect" would leave a leaked
/// token, or capability, working while the chain says it was revoked.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_that_times_out_still_takes_effect_once_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let delay = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let key =
        zt_control_plane::signer::LocalKey::load_or_create(&tmp.path().join("signing-key.pem"))
            .unwrap();
    let signer = std::sync::Arc::new(crate::FaultySigner {
        key,
        fault: crate::Fault::Slow(std::sync::Arc::clone(&delay)),
    });
    let opts = zt_control_plane::Options {
        request_timeout: std::time::Duration::from_millis(300),
        ..zt_control_plane::Options::default()
    };
    let cp = crate::start_with(tmp.path(), opts, Some(signer));
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
    let leaked = register(&b, Some(&admin), "agent-slow").await;
    post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    post(
        &b,
        "/capabilities",
        Some(&admin),
        &json!({"actor": "agent-slow", "action": "x.run", "ttl_s": 600, "grants": {}}),
    )
    .await;
    let (_, v) = post(
        &b,
        "/capabilities",
        Some(&admin),
        &json!({"actor": "agent-slow", "action": "x.run", "ttl_s": 600, "grants": {}}),
    )
    .await;
    let cap_id = v["id"].as_str().unwrap().to_owned();

    delay.store(600, std::sync::atomic::Ordering::Relaxed);
    let (s, _) = delete(&b, &format!("/capabilities/{cap_id}"), Some(&admin)).await;
    assert_eq!(s, 408, "the answer timed out");
    let (s, _) = delete(&b, "/agents/agent-slow", Some(&admin)).await;
    assert_eq!(s, 408, "the answer timed out");
    // the records are sealed a moment later; the revocations must then be in effect
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    delay.store(0, std::sync::atomic::Ordering::Relaxed);
    let (s, v) = crate::get(&b, &format!("/capabilities/{cap_id}"), Some(&admin)).await;
    assert_eq!((s, v["state"].as_str()), (410, Some("revoked")), "{v}");
    let (s, v) = act(&b, Some(&leaked), "agent-slow", "x.run", "").await;
    assert_eq!(s, 401, "the revoked agent's token must not work: {v}");
    cp.stop();
    let db = tmp.path().join("decisions.db");
    assert_eq!(with_action(&db, "zt.agent.revoke").len(), 1);
    assert_eq!(with_action(&db, "zt.capability.revoke").len(), 1);
}
