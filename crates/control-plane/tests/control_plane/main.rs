//! The control plane over real HTTP on loopback, its store read back by the real verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod api;
mod capabilities;
mod chain;
mod export;
mod federation;
mod flood;
mod lifecycle;
mod open_mode;
mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use zt_control_plane::signer::{LocalKey, Signer};
use zt_core::crypto::PublicKey;
use zt_core::Hash32;
pub use zt_testkit::inproc::{open_opts, start, start_with, verify_store, Running};
pub use zt_testkit::store::{count, records};

/// `POST path` with a JSON body and an optional bearer token: (status, body as JSON).
pub async fn post(base: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    post_raw(
        base,
        path,
        token,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

pub async fn post_raw(
    base: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .body(body);
    let (status, v) = send(req, token).await;
    schema_checked(path, status, &v);
    (status, v)
}

/// Every decision and capability answer these tests see must match its JSON Schema
/// (`docs/schema/`): a shape change the schemas do not describe fails here.
pub fn schema_checked(path: &str, status: u16, v: &Value) {
    use zt_conformance::schema::{check, Schema};
    let schema = match (path, status) {
        ("/actions", 200 | 401 | 403) => Schema::DecisionAnswer,
        ("/capabilities", 201) => Schema::CapabilityIssueAnswer,
        (p, 200 | 410) if p.starts_with("/capabilities/") && v.get("state").is_some() => {
            Schema::CapabilityStatus
        }
        _ => return,
    };
    if let Err(errors) = check(schema, v) {
        panic!("{path} answered {status} off its schema {schema:?}: {errors:?}\n{v:#}");
    }
    if let Some(c) = v
        .pointer("/audit/context/capability")
        .filter(|c| c.get("grants").is_some() && c.get("op").is_none())
    {
        if let Err(errors) = check(Schema::DecisionCapability, c) {
            panic!("context.capability off its schema: {errors:?}\n{c:#}");
        }
    }
}

/// `POST /policies` with Cedar text: `text/plain` and the header a cross-site form cannot
/// send.
pub async fn post_cedar(base: &str, token: Option<&str>, cedar: &str) -> (u16, Value) {
    let req = reqwest::Client::new()
        .post(format!("{base}/policies"))
        .header("content-type", "text/plain")
        .header("x-zt-admin", "1")
        .body(cedar.to_owned());
    send(req, token).await
}

/// `DELETE path` with an optional bearer token: (status, body as JSON).
pub async fn delete(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let req = reqwest::Client::new().delete(format!("{base}{path}"));
    send(req, token).await
}

pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let req = reqwest::Client::new().get(format!("{base}{path}"));
    let (status, v) = send(req, token).await;
    schema_checked(path, status, &v);
    (status, v)
}

/// Sends `req` with an optional bearer token: (status, body as JSON, or as a string when it is
/// not JSON).
async fn send(mut req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
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

/// How a test double of a signer fails (an HSM's failure modes); a double for the signer
/// only, never a mock of the control plane.
#[derive(Debug)]
pub enum Fault {
    /// Unreachable: every signature fails.
    Down,
    /// Signs the wrong digest: its signatures never verify.
    WrongDigest,
    /// Takes its time: this many milliseconds a signature.
    Slow(Arc<AtomicU64>),
}

/// A signer over `key` that fails as `fault` says.
#[derive(Debug)]
pub struct FaultySigner {
    pub key: LocalKey,
    pub fault: Fault,
}

impl Signer for FaultySigner {
    fn key_id(&self) -> &str {
        self.key.key_id()
    }
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }
    fn sign(&self, digest: &Hash32) -> Result<Vec<u8>, zt_control_plane::SignError> {
        match &self.fault {
            Fault::Down => Err(zt_control_plane::SignError::backend("HSM unreachable")),
            Fault::WrongDigest => self.key.sign(&Hash32::digest(b"something else")),
            Fault::Slow(ms) => {
                std::thread::sleep(Duration::from_millis(ms.load(Ordering::Relaxed)));
                self.key.sign(digest)
            }
        }
    }
}

/// A control plane in `dir` with tokens: it, its base URL and its admin token.
pub fn with_admin(dir: &std::path::Path) -> (Running, String, String) {
    let cp = start(dir, zt_control_plane::Options::default());
    let (b, admin) = (cp.base.clone(), cp.admin_token.clone().unwrap());
    (cp, b, admin)
}

/// An open-mode control plane in `dir` with agent `actor` registered and `policy` posted.
pub async fn open_with(dir: &std::path::Path, actor: &str, policy: Value) -> Running {
    with_agent(dir, open_opts(), actor, policy).await
}

/// A control plane in `dir` with `opts` (open mode: no tokens), agent `actor` registered and
/// `policy` posted.
pub async fn with_agent(
    dir: &std::path::Path,
    opts: zt_control_plane::Options,
    actor: &str,
    policy: Value,
) -> Running {
    let cp = start(dir, opts);
    register(&cp.base, None, actor).await;
    let (s, v) = post(&cp.base, "/policies", None, &policy).await;
    assert_eq!(s, 201, "{v}");
    cp
}

pub async fn register(base: &str, admin: Option<&str>, actor: &str) -> String {
    let (s, v) = post(base, "/agents", admin, &json!({"actor": actor})).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

pub async fn act(
    base: &str,
    token: Option<&str>,
    actor: &str,
    action: &str,
    resource: &str,
) -> (u16, Value) {
    post(
        base,
        "/actions",
        token,
        &json!({"actor": actor, "action": action, "resource": resource}),
    )
    .await
}

/// One HTTP/1.1 request written by hand, so a test controls every header (`Host` included):
/// (status, head, body).
pub fn raw_http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let a = zt_testkit::http::http(base, method, path, headers, body);
    let text = a.text();
    (a.status, a.head, text)
}
