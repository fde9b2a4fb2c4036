//! A deliberately misbehaving control plane: it holds the pinned key (so it can sign), and
//! answers each request in one wrong way. None of them may run the action.
//!
//! Like the real control plane, the honest fake seals the request's `context` object under the
//! envelope's `context.request`, so a decision names the policy facts it was made on.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::json::{Map, Value};
use zt_core::keyring::{KeyEntry, Keyring, WindowViolation};
use zt_core::time::Timestamp;
use zt_core::Hash32;

use crate::{assert_refused, call, SideEffect};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    Slow,
    Garbage,
    TruncatedJson,
    MissingAudit,
    ServerError,
    WrongSignature,
    OtherKey,
    Unsigned,
    EditedDecision,
    OtherAction,
    OtherResource,
    Stale,
    Replay,
    AllowWith403,
    Huge,
    Redirect,
    /// Genuine and signed, but sealed over other policy facts than the request's (an
    /// `approved: true` slipped in, or a context where the request had none).
    OtherContext,
    /// Genuine and signed, but the request's context left out of the envelope.
    DroppedContext,
    /// Dated 10 s ago (within the skew), to land before a revocation that has since happened.
    BackDated,
}

#[derive(Debug)]
struct Fake {
    mode: Mode,
    key: SigningKey,
    key_id: String,
    first: Mutex<Option<String>>,
    seq: Mutex<u64>,
}

/// An answer in the control plane's shape for `draft`, sealed by `key` as `key_id`.
fn http_answer(draft: &V1Draft, key: &SigningKey, key_id: &str) -> String {
    let sealed = draft.seal(Some((key, key_id)));
    http_shape(&sealed.json)
}

fn http_shape(record: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(record).unwrap();
    let mut top = serde_json::Map::new();
    let mut audit = serde_json::Map::new();
    top.insert("ok".into(), true.into());
    for (k, v) in v.as_object().unwrap() {
        if ["actor", "action", "resource", "decision", "reason"].contains(&k.as_str()) {
            top.insert(k.clone(), v.clone());
        } else {
            audit.insert(k.clone(), v.clone());
        }
    }
    top.insert("audit".into(), audit.into());
    serde_json::Value::Object(top).to_string()
}

async fn answer(State(f): State<Arc<Fake>>, body: Bytes) -> Response {
    let Ok(Value::Object(req)) = zt_core::json::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "not a JSON object").into_response();
    };
    let s = |k: &str| {
        req.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let seq = {
        let mut g = f.seq.lock().unwrap();
        *g += 1;
        *g - 1
    };
    let mut ctx = Map::new();
    ctx.push("request_id".into(), Value::String(s("request_id")));
    let asked_context = req.get("context").and_then(Value::as_object).cloned();
    match (f.mode, asked_context) {
        (Mode::DroppedContext, _) => {}
        (Mode::OtherContext, asked) => {
            let mut other = asked.unwrap_or_default();
            other.remove("approved");
            other.push("approved".into(), Value::Bool(true));
            ctx.push("request".into(), Value::Object(other));
        }
        (_, Some(asked)) => ctx.push("request".into(), Value::Object(asked)),
        (_, None) => {}
    }
    let mut draft = V1Draft {
        chain_id: "fake".into(),
        seq,
        actor: s("actor"),
        action: s("action"),
        resource: s("resource"),
        decision: "allow".into(),
        reason: "sure".into(),
        timestamp: Timestamp::now().to_rfc3339_millis(),
        previous_hash: Hash32::ZERO,
        context: Some(ctx),
    };
    let ok = |body: String| (StatusCode::OK, body).into_response();
    match f.mode {
        Mode::Honest | Mode::OtherContext | Mode::DroppedContext => {
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::BackDated => {
            let ten_s_ago = Timestamp::now().unix_nanos() - 10_000_000_000;
            draft.timestamp = Timestamp::from_unix_nanos(ten_s_ago).to_rfc3339_millis();
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::Garbage => ok("<html>502 Bad Gateway</html>".into()),
        Mode::TruncatedJson => {
            let full = http_answer(&draft, &f.key, &f.key_id);
            ok(full[..full.len() / 2].to_owned())
        }
        Mode::MissingAudit => ok(serde_json::json!({
            "ok": true, "actor": s("actor"), "action": s("action"),
            "resource": s("resource"), "decision": "allow", "reason": "trust me"
        })
        .to_string()),
        Mode::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"ok":false,"error":"database on fire"}"#,
        )
            .into_response(),
        Mode::WrongSignature => {
            // Signed by another key, claiming the pinned key's id.
            let other = SigningKey::generate();
            ok(http_answer(&draft, &other, &f.key_id))
        }
        Mode::OtherKey => {
            let other = SigningKey::generate();
            ok(http_answer(&draft, &other, "someone-else"))
        }
        Mode::Unsigned => ok(http_shape(&draft.seal(None).json)),
        Mode::EditedDecision => {
            draft.decision = "deny".into();
            let signed = http_answer(&draft, &f.key, &f.key_id);
            ok(signed.replace("\"decision\":\"deny\"", "\"decision\":\"allow\""))
        }
        Mode::OtherAction => {
            draft.action = "aws.ec2.terminate_instances".into();
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::OtherResource => {
            draft.resource = "prod/everything".into();
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::Stale => {
            let hour_ago = Timestamp::now().unix_nanos() - 3_600_000_000_000;
            draft.timestamp = Timestamp::from_unix_nanos(hour_ago).to_rfc3339_millis();
            ok(http_answer(&draft, &f.key, &f.key_id))
        }
        Mode::Replay => {
            // The first answer was genuine; every later request gets that same envelope.
            let mut first = f.first.lock().unwrap();
            let body = first
                .get_or_insert_with(|| http_answer(&draft, &f.key, &f.key_id))
                .clone();
            ok(body)
        }
        Mode::AllowWith403 => (
            StatusCode::FORBIDDEN,
            http_answer(&draft, &f.key, &f.key_id),
        )
            .into_response(),
        Mode::Huge => ok(format!(
            "{{\"ok\":true,\"pad\":\"{}\"}}",
            "x".repeat(3 << 20)
        )),
        Mode::Redirect => (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", "http://127.0.0.1:9/actions")],
        )
            .into_response(),
    }
}

/// A fake control plane on loopback, stopped on drop.
struct Server {
    addr: SocketAddr,
    key: SigningKey,
    key_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(mode: Mode) -> Server {
        let key = SigningKey::generate();
        let key_id = "pinned-key".to_owned();
        let fake = Arc::new(Fake {
            mode,
            key: key.clone(),
            key_id: key_id.clone(),
            first: Mutex::new(None),
            seq: Mutex::new(0),
        });
        let app = Router::new()
            .route("/actions", post(answer))
            .with_state(fake);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            key,
            key_id,
            stop: Some(tx),
        }
    }

    fn client(&self) -> GuardedClient {
        self.client_pinning(PinnedKey::new(self.key_id.clone(), self.key.public_key()))
    }

    /// A client that pins the fake's key from a keyring file whose entry `window` edits, the
    /// way an operator hands out `keyring.json` with `not_before`, `not_after`, `revoked_at`.
    fn client_with_window(&self, window: impl FnOnce(&mut KeyEntry)) -> GuardedClient {
        let mut entry = KeyEntry::new(self.key_id.clone(), self.key.public_key());
        window(&mut entry);
        let mut ring = Keyring::new();
        ring.insert(entry).unwrap();
        let file = ring.to_json().to_string();
        self.client_pinning(PinnedKey::from_keyring_json(file.as_bytes()).unwrap())
    }

    fn client_pinning(&self, pinned: PinnedKey) -> GuardedClient {
        let mut cfg = ClientConfig::new(format!("http://{}", self.addr), pinned);
        cfg.timeout = Duration::from_millis(800);
        GuardedClient::new(cfg).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn req() -> ActionRequest {
    ActionRequest::new("agent-hello", "hello-world.say_hello").resource("demo/greeting")
}

/// A request with policy facts: the change ticket is not approved.
fn req_with_context() -> ActionRequest {
    req()
        .context_json(r#"{"ticket":"CHG-7","approved":false,"hour":10}"#)
        .unwrap()
}

/// `now` moved by `secs` (negative: in the past).
fn from_now(secs: i64) -> Timestamp {
    Timestamp::from_unix_nanos(Timestamp::now().unix_nanos() + i128::from(secs) * 1_000_000_000)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_honest_fake_is_accepted_so_the_refusals_below_mean_something() {
    let srv = Server::start(Mode::Honest).await;
    let effect = SideEffect::default();
    call(&srv.client(), &req(), &effect).await.unwrap();
    assert_eq!(effect.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_misbehaviour_is_refused_and_nothing_runs() {
    for (mode, kind) in [
        (Mode::Slow, "timeout"),
        (Mode::Garbage, "malformed"),
        (Mode::TruncatedJson, "malformed"),
        (Mode::MissingAudit, "missing_audit"),
        (Mode::ServerError, "http"),
        (Mode::WrongSignature, "bad_signature"),
        (Mode::OtherKey, "wrong_key"),
        (Mode::Unsigned, "wrong_key"),
        (Mode::EditedDecision, "hash_mismatch"),
        (Mode::OtherAction, "mismatch"),
        (Mode::OtherResource, "mismatch"),
        (Mode::Stale, "stale"),
        (Mode::AllowWith403, "malformed"),
        (Mode::Huge, "malformed"),
        (Mode::Redirect, "http"),
    ] {
        let srv = Server::start(mode).await;
        let r = assert_refused(&srv.client(), &req(), kind).await;
        if mode == Mode::ServerError {
            assert!(r.to_string().contains("database on fire"), "{r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_allow_is_refused_the_second_time() {
    let srv = Server::start(Mode::Replay).await;
    let client = srv.client();
    let effect = SideEffect::default();
    // the first answer is genuine and runs once
    call(&client, &req(), &effect).await.unwrap();
    assert_eq!(effect.count(), 1);
    // the same envelope again, for a new request: refused, not run
    let r = assert_refused(&client, &req(), "replay").await;
    assert!(matches!(r, Refusal::Replay(_)));
    // and a second client, which never saw it, refuses it too (it answers another request)
    assert_refused(&srv.client(), &req(), "replay").await;
    assert_eq!(effect.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_then_a_stalled_body_is_a_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Raw TCP: 200 and half a body at once, the rest never.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"ok\":true,")
            .await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let key = SigningKey::generate();
    let mut cfg = ClientConfig::new(
        format!("http://{addr}"),
        PinnedKey::new("k", key.public_key()),
    );
    cfg.timeout = Duration::from_millis(500);
    let client = GuardedClient::new(cfg).unwrap();
    assert_refused(&client, &req(), "timeout").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_signed_outside_the_pinned_keys_window_is_refused() {
    let srv = Server::start(Mode::Honest).await;
    type Window = fn(&mut KeyEntry);
    let windows: [(&str, Window); 3] = [
        ("expired an hour ago", |e| {
            e.not_after = Some(from_now(-3600))
        }),
        ("revoked a minute ago", |e| {
            e.revoked_at = Some(from_now(-60))
        }),
        ("valid only from tomorrow", |e| {
            e.not_before = Some(from_now(86_400))
        }),
    ];
    for (what, window) in windows {
        let r = assert_refused(&srv.client_with_window(window), &req(), "key_not_valid").await;
        assert!(
            matches!(r, Refusal::KeyNotValid { ref key_id, .. } if key_id == "pinned-key"),
            "{what}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_back_dated_to_before_a_revocation_is_refused() {
    // Signed (it says) 10 s ago, inside the skew; the key was revoked 5 s ago. At its own
    // timestamp the key was still valid, but whoever holds a revoked key picks the timestamp:
    // a live decision needs the key not revoked now either.
    let srv = Server::start(Mode::BackDated).await;
    let client = srv.client_with_window(|e| e.revoked_at = Some(from_now(-5)));
    let r = assert_refused(&client, &req(), "key_not_valid").await;
    assert!(
        matches!(
            r,
            Refusal::KeyNotValid {
                violation: WindowViolation::Revoked(_),
                ..
            }
        ),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allow_for_other_policy_facts_is_refused() {
    for (mode, request) in [
        // the facts the request sent, with `approved` flipped to true
        (Mode::OtherContext, req_with_context()),
        // facts where the request sent none
        (Mode::OtherContext, req()),
        // the request's facts left out: decided on what?
        (Mode::DroppedContext, req_with_context()),
    ] {
        let srv = Server::start(mode).await;
        let r = assert_refused(&srv.client(), &request, "context_mismatch").await;
        let Refusal::ContextMismatch { asked, answered } = &r else {
            panic!("{mode:?}: {r}");
        };
        assert_ne!(asked, answered, "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_key_window_and_context_both_match_the_action_runs() {
    let srv = Server::start(Mode::Honest).await;
    let client = srv.client_with_window(|e| {
        e.not_before = Some(from_now(-3600));
        e.not_after = Some(from_now(3600));
        e.revoked_at = Some(from_now(7200));
    });
    let effect = SideEffect::default();
    let done = call(&client, &req_with_context(), &effect).await.unwrap();
    assert_eq!(effect.count(), 1);
    assert!(
        done.decision
            .envelope
            .contains(r#""request":{"approved":false"#),
        "{}",
        done.decision.envelope
    );
    // and without a context, nothing sealed, nothing to compare: runs too
    call(&client, &req(), &effect).await.unwrap();
    assert_eq!(effect.count(), 2);
}
