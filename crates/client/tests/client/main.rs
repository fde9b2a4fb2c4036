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

use zt_client::{ActionRequest, Executed, GuardedClient, Refusal};

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
