//! The HTTP API: decisions, the answer's shape, actor binding, policies, bad input.

use serde_json::json;
use zt_core::Envelope;

use crate::{
    act, count, get, open_opts, post, post_cedar, post_raw, register, start, verify_store,
};

/// `actor` asks to say hello on demo/greeting, in open mode.
async fn say_hello(base: &str, actor: &str) -> (u16, serde_json::Value) {
    act(base, None, actor, "hello-world.say_hello", "demo/greeting").await
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_path_deny_then_narrow_allow_and_the_chain_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), open_opts());
    let b = cp.base.clone();
    register(&b, None, "agent-hello").await;

    let (s, v) = act(
        &b,
        None,
        "agent-hello",
        "aws.ec2.terminate_instances",
        "i-0abc",
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["decision"], "deny");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("forbidden by default"),
        "{v}"
    );
    assert_eq!(
        v["audit"]["context"]["policy_id"],
        "default-forbid-terminate-instances"
    );

    let (s, v) = say_hello(&b, "agent-hello").await;
    assert_eq!((s, v["decision"].as_str()), (403, Some("deny")), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("deny by default"));

    let (s, p) = post(
        &b,
        "/policies",
        None,
        &json!({"action": "hello-world.say_hello", "resource": "demo/greeting", "reason": "hello is harmless"}),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let version = p["version"].as_str().unwrap().to_owned();

    let (s, v) = say_hello(&b, "agent-hello").await;
    assert_eq!(s, 200, "{v}");
    // the lineage's shape: ok, the decision's subject on top, the rest under audit
    assert_eq!(v["ok"], true);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["reason"], "hello is harmless");
    assert_eq!(v["audit"]["version"], 1);
    // the decision chain holds decisions only (registrations are on the admin chain)
    assert_eq!(v["audit"]["seq"], 2);
    assert_eq!(v["audit"]["context"]["policy_version"], version.as_str());
    assert_eq!(v["audit"]["kms_signature"]["algorithm"], "ECDSA_SHA_256");
    // the answer itself is a verifiable record (zt-audit verify reads saved answers)
    let env = Envelope::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(env.detect_profile(), Some(zt_core::Profile::V1));

    let (s, v) = say_hello(&b, "agent-nobody").await;
    assert_eq!(s, 403);
    assert_eq!(v["reason"], "agent is not registered");

    let keyring = cp.keyring();
    let db = cp.dir.join("decisions.db");
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.records, 5, "a registration and four decisions");
    // the decision chain, and the control plane's own (the registration)
    assert_eq!(report.chains.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_speaks_for_one_actor_and_every_refusal_is_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());

    // admin routes need the admin token
    let (s, _) = post(&b, "/agents", None, &json!({"actor": "a"})).await;
    assert_eq!(s, 401);
    let (s, _) = post(&b, "/agents", Some("nope"), &json!({"actor": "a"})).await;
    assert_eq!(s, 403);
    let ta = register(&b, Some(&admin), "agent-a").await;
    let tb = register(&b, Some(&admin), "agent-b").await;
    let (s, _) = post(&b, "/agents", Some(&admin), &json!({"actor": "agent-a"})).await;
    assert_eq!(s, 409);
    let (s, _) = post(&b, "/policies", Some(&admin), &json!({"action": "x.run"})).await;
    assert_eq!(s, 201);

    // a's token, claiming to be b: denied, and on record
    let (s, v) = act(&b, Some(&ta), "agent-b", "x.run", "").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["decision"], "deny");
    assert!(v["reason"]
        .as_str()
        .unwrap()
        .contains("token speaks for agent agent-a, not agent-b"));
    assert_eq!(v["audit"]["context"]["identity"], "agent-token:agent-a");
    // no token, a bad token: 401, on record
    let (s, v) = act(&b, None, "agent-a", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    let (s, v) = act(&b, Some("ztcp_forged"), "agent-a", "x.run", "").await;
    assert_eq!((s, v["decision"].as_str()), (401, Some("deny")), "{v}");
    // each token for its own actor: allowed
    let (s, _) = act(&b, Some(&ta), "agent-a", "x.run", "").await;
    assert_eq!(s, 200);
    let (s, v) = act(&b, Some(&tb), "agent-b", "x.run", "").await;
    assert_eq!(s, 200);
    assert_eq!(v["audit"]["context"]["identity"], "agent-token:agent-b");

    let db = cp.dir.join("decisions.db");
    let keyring = cp.keyring();
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(
        report.records, 7,
        "two registrations, and every request with a readable body"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_400_and_leave_no_trace_in_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), open_opts());
    let b = cp.base.clone();
    for (body, needle) in [
        (&b"{"[..], "not JSON"),
        (br#"{"actor":"a","action":"x","actor":"b"}"#, "duplicate"),
        (
            br#"{"actor":"a","action":"x","admin":true}"#,
            "unknown member `admin`",
        ),
        (br#"{"actor":"","action":"x"}"#, "`actor` must not be empty"),
        (
            br#"{"actor":"a","action":"x","context":"s"}"#,
            "`context` must be an object",
        ),
    ] {
        let (s, v) = post_raw(&b, "/actions", None, "application/json", body.to_vec()).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["ok"], false);
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    // over the body limit
    let big = format!(
        r#"{{"actor":"a","action":"x","resource":"{}"}}"#,
        "r".repeat(2 << 20)
    );
    let (s, _) = post_raw(&b, "/actions", None, "application/json", big.into_bytes()).await;
    assert_eq!(s, 413);
    let db = cp.dir.join("decisions.db");
    cp.stop();
    assert_eq!(count(&db), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cedar_policies_in_text_by_id_with_history() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), open_opts());
    let b = cp.base.clone();
    register(&b, None, "agent-hello").await;
    let (s, v0) = get(&b, "/policies", None).await;
    assert_eq!(s, 200);
    let v0 = v0["version"].as_str().unwrap().to_owned();

    let cedar = r#"@id("reports") @reason("reports are read-only")
        permit (principal == Agent::"agent-hello", action == Action::"report.read", resource)
        when { context.pages < 100 };"#;
    let (s, v) = post_cedar(&b, None, cedar).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["added"], json!(["reports"]));
    let (s, v) = post_cedar(&b, None, cedar).await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = post_cedar(&b, None, "permit (principal").await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("does not parse"),
        "{v}"
    );

    let ask = |pages: i64| json!({"actor": "agent-hello", "action": "report.read", "context": {"pages": pages}});
    let (s, v) = post(&b, "/actions", None, &ask(3)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["context"]["request"]["pages"], 3);
    let (s, _) = post(&b, "/actions", None, &ask(300)).await;
    assert_eq!(s, 403);

    // removing the policy denies again; the old version's text stays on record
    let resp = reqwest::Client::new()
        .delete(format!("{b}/policies/reports"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (s, _) = post(&b, "/actions", None, &ask(3)).await;
    assert_eq!(s, 403);
    let (s, old) = get(&b, &format!("/policies?version={v0}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        old["policies"][0]["id"],
        "default-forbid-terminate-instances"
    );
    let (s, _) = get(&b, "/policies?version=sha256:00", None).await;
    assert_eq!(s, 404);
}

/// No policy ends the process: a Cedar text of 40,000 conjuncts (under the body limit) is a
/// clear 400 naming the limit, and the control plane answers the next request; `/policies`
/// reads JSON with the same strict reader as `/actions` (duplicate members, a NUL in a name).
#[tokio::test(flavor = "multi_thread")]
async fn no_policy_ends_the_process_and_policies_are_read_as_strictly_as_actions() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, b, admin) = crate::with_admin(tmp.path());
    let conjuncts = |n: usize| {
        let body = vec!["context.a == 1"; n].join(" && ");
        format!("permit (principal, action, resource) when {{ {body} }};")
    };
    let bomb = conjuncts(40_000);
    assert!(bomb.len() < 1 << 20, "under the body limit");
    let (s, v) = post_cedar(&b, Some(&admin), &bomb).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("operators, more than the 1024"),
        "{v}"
    );
    let (s, v) = post_cedar(
        &b,
        Some(&admin),
        &format!(
            "permit (principal, action, resource) when {}true{};",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("nesting depth"),
        "{v}"
    );
    // what the limits allow (340 conjuncts: 1,020 operators) parses and decides, on a stack
    // grown for it where the request's thread has too little left
    let (s, v) = post_cedar(&b, Some(&admin), &conjuncts(340)).await;
    assert_eq!(s, 201, "{v}");
    let token = register(&b, Some(&admin), "agent-a").await;
    let (s, v) = post(
        &b,
        "/actions",
        Some(&token),
        &json!({"actor": "agent-a", "action": "x", "context": {"a": 1}}),
    )
    .await;
    assert_eq!((s, v["decision"].as_str()), (200, Some("allow")), "{v}");
    // the same reader as /actions
    for (body, says) in [
        (
            r#"{"action":"x","action":"y"}"#,
            "duplicate member name `action`",
        ),
        (r#"{"action":"x","actor":"a\u0000b"}"#, "control character"),
        (
            r#"{"cedar":"permit (principal, action, resource);","id":"p"}"#,
            "unknown member `id`",
        ),
        (r#"{"action":7}"#, "`action` must be a string"),
        (r#"[1]"#, "not an object"),
    ] {
        let (s, v) = post_raw(
            &b,
            "/policies",
            Some(&admin),
            "application/json",
            body.as_bytes().to_vec(),
        )
        .await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (s, _) = get(&b, "/healthz", None).await;
    assert_eq!(s, 200, "alive");
    cp.stop();
}
