//! Token lifecycle: a leaked token must be revocable, rotatable and able to expire, and each
//! step is evidence on the chain like any decision.

use serde_json::{json, Value};

use crate::{act, post, records, register, start, verify_store};

async fn delete(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().delete(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

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
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
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
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
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
    let text = rot[0].to_string();
    assert!(!text.contains(&old) && !text.contains(&new), "{text}");
    assert!(rot[0]["context"]["token_id"].is_string(), "{text}");
    assert!(rot[0]["context"]["retired_token_id"].is_string(), "{text}");
}

/// `token_ttl_s`: a token that has expired is a recorded deny "token expired".
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_a_recorded_deny() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), zt_control_plane::Options::default());
    let b = cp.base.clone();
    let admin = cp.admin_token.clone().unwrap();
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
