//! What every request shares: the policy engine, the registries of agents, brokers and
//! capabilities, the rate limiter, `state.db`, the chain writer's handle, the keys and the
//! counters. Built by [`crate::ControlPlane::serve`], read by the routes (`crate::http`); it
//! holds the domain's types and knows nothing of HTTP.
//!
//! Lock order, where more than one is held: the registry, then the capabilities or the
//! brokers; `state.db`'s mutex last and never across an await.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use zt_core::Hash32;
use zt_tls::TlsServer;

use crate::chain::ChainHandle;
use crate::db::State;
use crate::domain::agents::Registry;
use crate::domain::brokers::Brokers;
use crate::domain::capabilities::Capabilities;
use crate::domain::limits::Limiter;
use crate::policy::PolicyEngine;
use crate::signer::Signer;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub unavailable: AtomicU64,
    pub bad_requests: AtomicU64,
    pub refused_origin: AtomicU64,
}

impl Metrics {
    /// Counts one more on `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The control plane's state while it serves.
pub(crate) struct Shared {
    pub engine: RwLock<Arc<PolicyEngine>>,
    /// Who tokens speak for. Async: admin routes hold it for writing while their record is
    /// sealed, decisions for reading from authentication to their place in the queue.
    pub registry: tokio::sync::RwLock<Registry>,
    /// TLS, for its counters on `/metrics`.
    pub tls: Option<Arc<TlsServer>>,
    /// The listener's connections and their counts (for `/metrics`).
    pub connections: Arc<zt_tls::Connections>,
    pub state: Mutex<State>,
    pub chain: ChainHandle,
    pub open: bool,
    /// The listening port: in open mode, `Host` must name it.
    pub port: u16,
    pub admin_tokens: Vec<Hash32>,
    pub keyring_json: String,
    pub metrics: Metrics,
    pub next_policy: AtomicU64,
    /// `zt-control-plane/VERSION`: every record's `context.broker`.
    pub broker: String,
    pub limiter: Limiter,
    /// Largest `/actions` body.
    pub body_limit: usize,
    /// Issued capabilities. Async, like the registry: a revocation holds it for writing
    /// while its record is sealed, a use for reading until its decision is queued. Taken
    /// after the registry when both are held.
    pub caps: tokio::sync::RwLock<Capabilities>,
    /// This control plane's own key, the trust root of the capabilities it issued.
    pub keyring: zt_core::keyring::Keyring,
    /// Signs capability issuances (the key decisions are signed with).
    pub signer: Arc<dyn Signer>,
    /// The registered execution brokers. Async; taken after the registry when both are held.
    pub brokers: tokio::sync::RwLock<Brokers>,
}

impl Shared {
    /// The policy engine in force.
    pub(crate) fn engine(&self) -> Arc<PolicyEngine> {
        Arc::clone(&self.engine.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The policy engine's slot, for a change of the set.
    pub(crate) fn engine_slot(&self) -> std::sync::RwLockWriteGuard<'_, Arc<PolicyEngine>> {
        self.engine.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// `state.db`, for one statement or transaction (never held across an await).
    pub(crate) fn db(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
