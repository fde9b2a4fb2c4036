//! The guarded client against a real control plane and against deliberately misbehaving
//! servers. Every refusal test asserts the action's side effect did not happen.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod misbehaving;
mod real;
mod tls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use zt_client::{ActionRequest, ClientConfig, Executed, GuardedClient, PinnedKey, Refusal};
pub use zt_testkit::inproc::{start, Ingest, Running};
use zt_tls::ClientTls;

/// Counts how often the guarded action ran.
#[derive(Debug, Clone, Default)]
pub struct SideEffect(Arc<AtomicUsize>);

impl SideEffect {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Runs a guarded call whose action bumps `effect`.
pub async fn call(
    client: &GuardedClient,
    req: &ActionRequest,
    effect: &SideEffect,
) -> Result<Executed<()>, Refusal> {
    let e = effect.clone();
    client
        .guarded_call(req, move |_allowed| async move {
            e.0.fetch_add(1, Ordering::SeqCst);
        })
        .await
}

/// Asserts the call was refused with `kind` and the action did not run.
pub async fn assert_refused(client: &GuardedClient, req: &ActionRequest, kind: &str) -> Refusal {
    let effect = SideEffect::default();
    let out = call(client, req, &effect).await;
    let refusal = match out {
        Ok(done) => panic!(
            "expected a {kind} refusal, but the action ran under {:?}",
            done.decision
        ),
        Err(r) => r,
    };
    assert_eq!(refusal.kind(), kind, "{refusal}");
    assert_eq!(effect.count(), 0, "the action ran despite: {refusal}");
    refusal
}

/// A guarded client of `cp`, pinning its keyring, over `tls`, with `token`.
pub fn client(cp: &Running, tls: ClientTls, token: Option<String>) -> GuardedClient {
    let mut cfg = ClientConfig::new(
        cp.base.clone(),
        PinnedKey::from_keyring_json(&cp.keyring()).unwrap(),
    );
    cfg.tls = tls;
    cfg.token = token.map(Into::into);
    GuardedClient::new(cfg).unwrap()
}

/// `POST path` of `body` through `http` with `cp`'s admin token (if it has one); asserts a
/// success: the answer.
pub async fn admin_post(
    cp: &Running,
    http: &reqwest::Client,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut req = http
        .post(format!("{}{path}", cp.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = &cp.admin_token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}
