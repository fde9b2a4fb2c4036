//! Open mode (no tokens, loopback only) against the browser: a web page the operator visits
//! must not reach the control plane, by DNS rebinding or by a cross-site form.

use serde_json::json;

use crate::{count, get, open_opts, post, raw_http, records, start};

/// DNS rebinding: a page on `evil.example` re-resolves its own name to 127.0.0.1 and talks to
/// the open control plane as a same-origin page would. The browser still sends
/// `Host: evil.example:PORT`, which is how the server tells.
#[tokio::test(flavor = "multi_thread")]
async fn dns_rebinding_a_foreign_host_name_is_refused_in_open_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), open_opts());
    let b = cp.base.clone();
    let port = b.rsplit(':').next().unwrap().to_owned();
    let evil = format!("evil.example:{port}");
    let agent = br#"{"actor":"agent-evil"}"#;
    let (s, _, body) = raw_http(
        &b,
        "POST",
        "/agents",
        &[("Host", &evil), ("Content-Type", "application/json")],
        agent,
    );
    assert_eq!(s, 403, "a rebound name registered an agent: {body}");
    let (s, _, body) = raw_http(
        &b,
        "POST",
        "/actions",
        &[("Host", &evil), ("Content-Type", "application/json")],
        br#"{"actor":"agent-evil","action":"x.run"}"#,
    );
    assert_eq!(s, 403, "a rebound name asked for a decision: {body}");
    let (s, _, body) = raw_http(&b, "GET", "/policies", &[("Host", &evil)], b"");
    assert_eq!(s, 403, "a rebound name read the policies: {body}");
    // The right name with another port is another origin too.
    let (s, _, _) = raw_http(&b, "GET", "/policies", &[("Host", "localhost:1")], b"");
    assert_eq!(s, 403, "wrong port");
    // A loopback Origin header from another site is refused as well.
    let (s, _, _) = raw_http(
        &b,
        "GET",
        "/agents",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(s, 403, "foreign Origin");
    // and the `null` origin of sandboxed frames and file: pages
    let (s, _, _) = raw_http(
        &b,
        "POST",
        "/agents",
        &[("Origin", "null"), ("Content-Type", "application/json")],
        agent,
    );
    assert_eq!(s, 403, "null Origin");
    // The loopback names with the server's port still work.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (s, _, body) = raw_http(
            &b,
            "GET",
            "/agents",
            &[("Host", &host), ("Origin", &format!("http://{host}"))],
            b"",
        );
        assert_eq!(s, 200, "{host}: {body}");
    }
    let (s, v) = get(&b, "/agents", None).await;
    assert_eq!((s, v["agents"].clone()), (200, json!([])), "{v}");
    let db = cp.dir.join("decisions.db");
    cp.stop();
    // Refused at the door: no decision was made, so none is recorded.
    assert_eq!(count(&db), 0);
}

/// A cross-site form can POST `text/plain` (or form-encoded) to loopback without a preflight;
/// it must not change the policy set or the agents.
#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_form_cannot_change_policy_or_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = start(tmp.path(), open_opts());
    let b = cp.base.clone();
    let (_, before) = get(&b, "/policies", None).await;
    let permit_all = b"permit (principal, action, resource);";
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (s, head, body) =
            raw_http(&b, "POST", "/policies", &[("Content-Type", ct)], permit_all);
        assert_eq!(s, 415, "{ct}: a form applied a policy: {head}\n{body}");
        let (s, _, body) = raw_http(
            &b,
            "POST",
            "/agents",
            &[("Content-Type", ct)],
            br#"{"actor":"agent-form"}"#,
        );
        assert_eq!(s, 415, "{ct}: a form registered an agent: {body}");
    }
    let (_, after) = get(&b, "/policies", None).await;
    assert_eq!(
        before["version"], after["version"],
        "the policy set changed"
    );
    // text/plain with the custom header (which a form cannot send) is the operator's curl.
    let (s, _, body) = raw_http(
        &b,
        "POST",
        "/policies",
        &[("Content-Type", "text/plain"), ("X-ZT-Admin", "1")],
        br#"@id("ops") permit (principal, action == Action::"ops.read", resource);"#,
    );
    assert_eq!(s, 201, "{body}");
    let (s, v) = post(&b, "/agents", None, &json!({"actor": "agent-ok"})).await;
    assert_eq!(s, 201, "{v}");
    let db = cp.dir.join("decisions.db");
    cp.stop();
    assert!(records(&db)
        .iter()
        .all(|r| r["resource"] != "agent/agent-form"));
}

/// An admin token given with open mode would protect nothing: refused, not ignored.
#[test]
fn open_mode_refuses_an_admin_token_it_would_not_check() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = zt_control_plane::Options {
        open: true,
        admin_tokens: vec!["ztadm_given".into()],
        ..zt_control_plane::Options::default()
    };
    let e = zt_control_plane::ControlPlane::open(tmp.path(), opts).unwrap_err();
    assert!(
        e.to_string().contains("open mode takes no admin token"),
        "{e}"
    );
}
