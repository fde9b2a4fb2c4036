//! The suites against the real implementations (they pass) and against implementations that
//! break the contract one way each (they fail, naming the case).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::Router;
use serde_json::{json, Value};
use zt_conformance::schema::{check, Schema};
use zt_conformance::{client, target, Report};
use zt_testkit::inproc::Running;

/// The real control plane, in-process on 127.0.0.1, in a folder of its own.
struct Cp {
    cp: Running,
    keyring: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Cp {
    async fn start(open: bool) -> Cp {
        zt_tls::install_default_provider();
        let dir = tempfile::tempdir().unwrap();
        let opts = zt_control_plane::Options {
            open,
            ..zt_control_plane::Options::default()
        };
        let cp = zt_testkit::inproc::start(dir.path(), opts);
        let keyring = cp.keyring();
        Cp {
            cp,
            keyring,
            _dir: dir,
        }
    }

    fn target(&self) -> target::Target {
        target::Target {
            url: self.cp.base.clone(),
            admin_token: self.cp.admin_token.clone(),
            keyring: Some(self.keyring.clone()),
        }
    }

    async fn stop(self) {
        tokio::task::spawn_blocking(move || self.cp.stop())
            .await
            .unwrap();
    }
}

fn assert_all_pass(report: &Report) {
    assert!(report.ok, "{}", report.to_text());
}

fn assert_fails(report: &Report, case: &str) {
    let c = report
        .case(case)
        .unwrap_or_else(|| panic!("no case {case}:\n{}", report.to_text()));
    assert!(!c.ok, "{case} passed:\n{}", report.to_text());
    assert!(!report.ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_plane_passes_with_tokens_and_in_open_mode() {
    for open in [false, true] {
        let cp = Cp::start(open).await;
        let report = target::run(&cp.target()).await.unwrap();
        assert_all_pass(&report);
        assert_eq!(report.cases.len(), 11, "{}", report.to_text());
        // again against the same control plane: the suite cleans up after itself
        let again = target::run(&cp.target()).await.unwrap();
        assert_all_pass(&again);
        cp.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_keyring_or_another_keyring_fails_envelopes_verify_and_nothing_else() {
    let cp = Cp::start(true).await;
    let mut t = cp.target();
    t.keyring = None;
    let report = target::run(&t).await.unwrap();
    assert_fails(&report, "envelopes_verify");
    assert_eq!(
        report.cases.iter().filter(|c| !c.ok).count(),
        1,
        "{}",
        report.to_text()
    );
    let other = Cp::start(true).await;
    t.keyring = Some(other.keyring.clone());
    let report = target::run(&t).await.unwrap();
    assert_fails(&report, "envelopes_verify");
    cp.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_target_is_no_verdict() {
    let closed = zt_testkit::http::free_port();
    let t = target::Target {
        url: format!("http://127.0.0.1:{closed}"),
        admin_token: None,
        keyring: None,
    };
    assert!(target::run(&t).await.is_err());
}

/// A proxy in front of the real control plane that changes its answers one way.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Break {
    /// Rewrites the reason of every decision (the envelope no longer hashes).
    Tamper,
    /// Answers a request id it has seen with the answer it gave before (a cache).
    Cache,
    /// Answers every malformed request (400) with a made-up deny.
    DecideMalformed,
    /// Rewrites every decision's `previous_hash` to the zero hash: no decision continues the
    /// one before it (and none hashes).
    Relink,
}

/// Answers given, by request id: (status, body).
type Answered = Arc<Mutex<std::collections::HashMap<String, (u16, Vec<u8>)>>>;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    how: Break,
    seen: Answered,
}

async fn forward(State(p): State<Proxy>, req: axum::extract::Request) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let url = format!("{}{}", p.upstream, parts.uri);
    let mut r = reqwest::Client::new().request(parts.method.clone(), url);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            r = r.header(k, v);
        }
    }
    let rid = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if p.how == Break::Cache && parts.uri.path() == "/actions" {
        if let Some(hit) = rid
            .as_ref()
            .and_then(|r| p.seen.lock().unwrap().get(r).cloned())
        {
            return (StatusCode::from_u16(hit.0).unwrap(), hit.1).into_response();
        }
    }
    let resp = r.body(body.to_vec()).send().await.unwrap();
    let status = resp.status().as_u16();
    let mut bytes = resp.bytes().await.unwrap().to_vec();
    if parts.uri.path() == "/actions" {
        match p.how {
            Break::Tamper => {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                if v.get("reason").is_some() {
                    v["reason"] = "approved by the CISO".into();
                }
                bytes = v.to_string().into_bytes();
            }
            Break::Cache => {
                if let Some(r) = rid {
                    p.seen.lock().unwrap().insert(r, (status, bytes.clone()));
                }
            }
            Break::DecideMalformed if status == 400 => {
                return (
                    StatusCode::FORBIDDEN,
                    r#"{"ok":true,"decision":"deny","reason":"malformed","audit":{}}"#,
                )
                    .into_response();
            }
            Break::DecideMalformed => {}
            Break::Relink => {
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                if v["audit"].get("previous_hash").is_some() {
                    v["audit"]["previous_hash"] = zt_core::Hash32::ZERO.to_hex().into();
                }
                bytes = v.to_string().into_bytes();
            }
        }
    }
    (StatusCode::from_u16(status).unwrap(), bytes).into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn control_planes_that_break_the_contract_fail_naming_the_case() {
    let cp = Cp::start(false).await;
    for (how, case) in [
        (Break::Tamper, "envelopes_verify"),
        (Break::Cache, "replayed_request_id"),
        (Break::DecideMalformed, "malformed_requests_refused"),
        (Break::Relink, "chain_continues"),
    ] {
        let proxy = Proxy {
            upstream: cp.cp.base.clone(),
            how,
            seen: Arc::default(),
        };
        let url = serve(Router::new().fallback(any(forward)).with_state(proxy)).await;
        let mut t = cp.target();
        t.url = url;
        let report = target::run(&t).await.unwrap();
        assert_fails(&report, case);
    }

    // A control plane that allows everything (signed by a key the tester pins, so only the
    // policy cases can catch it).
    let key = zt_core::crypto::SigningKey::generate();
    let mut ring = zt_core::keyring::Keyring::new();
    ring.insert(zt_core::keyring::KeyEntry::new("lax", key.public_key()))
        .unwrap();
    let head = Arc::new(Mutex::new((0u64, zt_core::Hash32::ZERO)));
    let lax = Router::new()
        .route(
            "/agents",
            post(|| async { (StatusCode::CREATED, r#"{"ok":true,"token":"t"}"#) }),
        )
        .route(
            "/policies",
            post(|| async { (StatusCode::CREATED, r#"{"ok":true}"#) }),
        )
        .route(
            "/actions",
            post(move |body: Bytes| {
                let key = key.clone();
                let head = Arc::clone(&head);
                async move {
                    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                        return (StatusCode::BAD_REQUEST, "{}".to_owned());
                    };
                    let f = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    let (seq, prev) = *head.lock().unwrap();
                    let mut ctx = zt_core::json::Map::new();
                    ctx.push(
                        "request_id".into(),
                        zt_core::json::Value::String(f("request_id")),
                    );
                    let sealed = zt_core::envelope::V1Draft {
                        chain_id: "lax".into(),
                        seq,
                        actor: f("actor"),
                        action: f("action"),
                        resource: f("resource"),
                        decision: "allow".into(),
                        reason: "everything is allowed here".into(),
                        timestamp: zt_core::time::Timestamp::now().to_rfc3339_millis(),
                        previous_hash: prev,
                        context: Some(ctx),
                    }
                    .seal(Some((&key, "lax")));
                    *head.lock().unwrap() = (seq + 1, sealed.current_hash);
                    let mut v: Value = serde_json::from_str(&sealed.json).unwrap();
                    let mut top = serde_json::Map::new();
                    top.insert("ok".into(), true.into());
                    for k in ["actor", "action", "resource", "decision", "reason"] {
                        top.insert(k.into(), v[k].take());
                    }
                    let audit: serde_json::Map<String, Value> = v
                        .as_object()
                        .unwrap()
                        .iter()
                        .filter(|(k, _)| !top.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    top.insert("audit".into(), Value::Object(audit));
                    (StatusCode::OK, Value::Object(top).to_string())
                }
            }),
        );
    let url = serve(lax).await;
    let report = target::run(&target::Target {
        url,
        admin_token: None,
        keyring: Some(format!("{:#}", ring.to_json()).into_bytes()),
    })
    .await
    .unwrap();
    for case in [
        "unregistered_actor_denied",
        "deny_by_default",
        "terminate_instances_denied",
        "narrow_policy",
        "actor_spoofing_denied",
    ] {
        assert_fails(&report, case);
    }
    assert!(
        report.case("envelopes_verify").unwrap().ok,
        "{}",
        report.to_text()
    );
    cp.stop().await;
}

/// The Rust guarded client passes the client suite.
#[tokio::test(flavor = "multi_thread")]
async fn the_rust_guarded_client_passes_the_client_suite() {
    zt_tls::install_default_provider();
    let report = client::run(|env| async move {
        let pinned =
            zt_client::PinnedKey::from_keyring_json(&std::fs::read(&env.keyring).unwrap()).unwrap();
        let mut cfg = zt_client::ClientConfig::new(env.url.clone(), pinned);
        cfg.timeout = Duration::from_millis(env.timeout_ms);
        let guarded = zt_client::GuardedClient::new(cfg).unwrap();
        let req = zt_client::ActionRequest::new(env.actor.clone(), env.action.clone())
            .resource(env.resource.clone());
        let marker = env.marker.clone();
        match guarded
            .guarded_call(&req, |_allowed| async move {
                std::fs::write(&marker, "ran").unwrap();
            })
            .await
        {
            Ok(_) => "allowed".to_owned(),
            Err(r) => format!("refused: {}: {r}", r.kind()),
        }
    })
    .await
    .unwrap();
    assert_all_pass(&report);
    assert_eq!(report.cases.len(), client::CASES.len());
    // the replayed allow is refused because it answers another request
    assert!(
        report
            .case("replayed_allow")
            .unwrap()
            .message
            .contains("refused"),
        "{}",
        report.to_text()
    );
}

/// Clients that do not verify fail the client suite, naming the cases.
#[tokio::test(flavor = "multi_thread")]
async fn clients_that_trust_a_200_fail_the_client_suite() {
    // a client that runs the action on any 200 (no verification at all), as an external
    // command: the runner drives any language this way
    let naive = [
        "/bin/sh",
        "-c",
        r#"code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -X POST -H 'content-type: application/json' -d "{\"actor\":\"$ZT_CONFORMANCE_ACTOR\",\"action\":\"$ZT_CONFORMANCE_ACTION\",\"resource\":\"$ZT_CONFORMANCE_RESOURCE\"}" "$ZT_CONFORMANCE_URL/actions"); if [ "$code" = 200 ]; then touch "$ZT_CONFORMANCE_MARKER"; echo "ran on 200"; else echo "not run ($code)"; fi"#,
    ]
    .map(std::ffi::OsString::from);
    let report = client::run_command(&naive).await.unwrap();
    assert!(report.case("allow").unwrap().ok, "{}", report.to_text());
    assert!(report.case("deny").unwrap().ok);
    for case in [
        "bad_signature",
        "unknown_key",
        "other_action",
        "other_resource",
        "other_actor",
        "replayed_allow",
    ] {
        assert_fails(&report, case);
    }
    // and a client that never runs anything fails the positive control
    let never = ["/bin/true"].map(std::ffi::OsString::from);
    let report = client::run_command(&never).await.unwrap();
    assert_fails(&report, "allow");
    assert!(client::run_command(&[]).await.is_err());
}

/// Every v1 fixture record has the envelope's shape, except the one whose number no double
/// holds exactly; large doubles match, integers no double holds do not.
#[test]
fn v1_fixtures_match_the_envelope_schema() {
    let dir = zt_testkit::fixture("v1");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text
            .split('\n')
            .filter(|l| !l.trim().is_empty())
            .enumerate()
        {
            let v: Value = serde_json::from_str(line).unwrap();
            let res = check(Schema::Envelope, &v);
            let name = p.file_name().unwrap().to_string_lossy();
            if name == "number-past-2-53.jsonl" && i == 1 {
                assert!(
                    res.is_err(),
                    "{name} {i}: an integer no double holds must not match"
                );
            } else {
                assert!(res.is_ok(), "{name} {i}: {res:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
    // and the schema can fail: a record without its signature, a bad hash, an extra member
    let valid: Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("valid.jsonl"))
            .unwrap()
            .split('\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    for (k, v) in [
        ("kms_signature", Value::Null),
        ("current_hash", json!("XYZ")),
        ("approved_by", json!("CISO")),
        ("decision", json!("maybe")),
    ] {
        let mut bad = valid.clone();
        bad[k] = v;
        assert!(check(Schema::Envelope, &bad).is_err(), "{k}");
    }
    // numbers in the context: what every reader agrees on matches, however large
    for (text, agreed) in [
        ("9007199254740992", true),
        ("9007199254740993", false),
        ("-9007199254740995", false),
        ("18446744073709549568", true),
        ("18446744073709551614", false),
        ("18446744073709551615", false),
        ("1e+21", true),
        ("1e20", true),
        ("0.1", true),
        ("-1.7976931348623157e308", true),
    ] {
        let mut with = valid.clone();
        with["context"]["n"] = serde_json::from_str(text).unwrap();
        assert_eq!(check(Schema::Envelope, &with).is_ok(), agreed, "{text}");
        // and the core reads the same text the same way
        assert_eq!(
            zt_core::json::parse(text.as_bytes()).is_ok(),
            agreed,
            "{text}"
        );
    }
}

#[test]
fn request_and_capability_schemas_accept_the_documented_shapes() {
    assert!(check(
        Schema::ActionRequest,
        &json!({"actor": "a", "action": "b", "resource": "c", "context": {"x": 1}, "request_id": "r"})
    )
    .is_ok());
    assert!(check(Schema::ActionRequest, &json!({"actor": "a"})).is_err());
    assert!(check(
        Schema::ActionRequest,
        &json!({"actor": "a", "action": "b", "extra": 1})
    )
    .is_err());
    assert!(check(
        Schema::ActionRequest,
        &json!({"actor": "a\u{7}", "action": "b"})
    )
    .is_err());
    let issue =
        json!({"actor": "a", "action": "b", "ttl_s": 60, "grants": {"read": ["/x"], "net": false}});
    assert!(check(Schema::CapabilityIssueRequest, &issue).is_ok());
    let mut bad = issue.clone();
    bad["grants"]["read"] = json!(["relative"]);
    assert!(check(Schema::CapabilityIssueRequest, &bad).is_err());
    assert!(check(
        Schema::CapabilityStatus,
        &json!({"id": "cap-1", "state": "revoked", "at": "2026-11-28T10:00:00.000Z"})
    )
    .is_ok());
    assert!(check(
        Schema::CapabilityStatus,
        &json!({"id": "cap-1", "state": "paused"})
    )
    .is_err());
}

/// The schemas' `visible` pattern (names and resources) is the core's rule of what a terminal
/// must be shown escaped (`zt_core::text::needs_escape`), for every character: what the
/// schema accepts in an `actor` the control plane accepts too, and the reverse.
#[test]
fn the_visible_pattern_is_the_core_rule_for_every_character() {
    let mut disagree = Vec::new();
    for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
        // One check per character would take long in a debug build: 64 at a time, and one
        // at a time where a batch holds a character the rule escapes or is refused.
        if u32::from(c) % 64 != 0 {
            continue;
        }
        let batch: Vec<char> = (u32::from(c)..u32::from(c) + 64)
            .filter_map(char::from_u32)
            .collect();
        let text: String = batch.iter().collect();
        let any_escaped = batch.iter().any(|c| zt_core::text::needs_escape(*c));
        let ok = check(
            Schema::ActionRequest,
            &json!({"actor": text, "action": "b"}),
        )
        .is_ok();
        // A batch the schema accepts and the rule has nothing against is settled; any other
        // is looked at character by character.
        if ok && !any_escaped {
            continue;
        }
        for c in batch {
            let ok = check(
                Schema::ActionRequest,
                &json!({"actor": c.to_string(), "action": "b"}),
            )
            .is_ok();
            if ok == zt_core::text::needs_escape(c) {
                disagree.push(format!("U+{:04X}", u32::from(c)));
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "schema and core disagree on {disagree:?}"
    );
}
