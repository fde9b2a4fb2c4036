//! zt-audit's reference control plane: agents ask "may I run this action?" and get a decision
//! that is already signed, chained and durable.
//!
//! - [`policy`]: Cedar (`cedar-policy`) decides, deny by default, with a default forbid on
//!   `aws.ec2.terminate_instances`.
//! - [`chain`]: one writer seals each decision as a v1 envelope (P-256, [`signer`]) and
//!   commits groups of them to the evidence store (`zt-store`) before anyone is answered.
//! - `http`: the HTTP API (axum) on top: routing, reading requests, the lineage's answer
//!   shape, open mode against the browser (DNS rebinding, cross-site forms). Who is asking:
//!   bearer tokens and SPIFFE X.509-SVIDs (over mTLS, `zt-tls`) binding an agent to its actor.
//! - `domain`, below it and free of HTTP: the agent registry (registration, token rotation
//!   and expiry, revocation, each a sealed record), execution brokers, capabilities (issued
//!   under Cedar, checked at use, revocable; the execution reports of brokers, linked to
//!   their allow; `zt_core::capability` is the token format), the decision of `/actions`,
//!   and rate limits (what they refuse is counted in one sealed summary per window instead of
//!   one sealed record each).
//! - `shared`: the state every request shares, holding the domain's types.
//! - [`export`]: committed decisions go out over OTLP/HTTP (`zt-export`) with retries; a
//!   failing export never changes a decision.
//! - [`db`]: agents, brokers, capabilities, policies and their versions, the export cursor
//!   (`state.db`): the one module that speaks SQL.
//!
//! Modules refer to each other in one direction only: `http` -> `shared` -> `domain` ->
//! `chain`, `db`, `policy`, `signer` -> `error`, `util`; `lib.rs` wires them together.
//!
//! The data directory holds `signing-key.pem` (0600), `public.pem`, `keyring.json`,
//! `decisions.db` (a zt-audit store: `zt-audit verify --db` reads it), `state.db`, and, when
//! no admin token is given, `admin-token` (0600).
//!
//! ```no_run
//! use zt_control_plane::{ControlPlane, Options};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cp = ControlPlane::open(std::path::Path::new("cp-data"), Options::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! cp.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod chain;
pub mod db;
mod domain;
pub mod error;
pub mod export;
mod http;
pub mod policy;
mod shared;
pub mod signer;
mod util;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use domain::limits::RateLimit;
pub use error::{ControlPlaneError, PolicyError, SealError, SignError};
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::secret::Secret;
use zt_core::Hash32;
use zt_export::ExportConfig;
use zt_store::Store;

use crate::chain::{Lane, WriterConfig};
use crate::domain::agents::Registry;
use crate::domain::brokers::Brokers;
use crate::domain::capabilities::Capabilities;
use crate::domain::limits::{self, Limiter};
use crate::domain::record::Stamp;
use crate::export::ExportWatch;
use crate::policy::PolicyEngine;
use crate::shared::{Metrics, Shared};
use crate::signer::{LocalKey, Signer};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The chain id; default: the one stored on first run, `cp-` and the key's fingerprint.
    pub chain_id: Option<String>,
    /// No tokens needed (loopback only): the quickstart.
    pub open: bool,
    /// Admin bearer tokens; when empty (and not open), one is created in `admin-token`.
    pub admin_tokens: Vec<Secret>,
    /// Export committed decisions here.
    pub export: Option<ExportConfig>,
    /// Decisions waiting to be sealed before 503.
    pub queue: usize,
    /// Most decisions per commit.
    pub max_group: usize,
    /// Largest request body.
    pub body_limit: usize,
    /// Per request.
    pub request_timeout: Duration,
    /// How long a commit waits for a store lock before it fails (503).
    pub store_busy_timeout: Duration,
    /// Serve over TLS (certificate reloaded when its files change); with a client CA
    /// bundle, an X.509-SVID decides who is asking. None: plain HTTP.
    pub tls: Option<Arc<zt_tls::TlsServer>>,
    /// What a connection may hold: connections in all and per source address, header and
    /// idle timeouts (see [`zt_tls::connections`]).
    pub connections: zt_tls::ConnectionLimits,
    /// Requests that do not authenticate (no, unknown, expired or retired token), all
    /// together; past it 429, counted in the window's summary record.
    pub unauthenticated_rate: RateLimit,
    /// Each agent's requests; past it 429, counted in the window's summary record.
    pub actor_rate: RateLimit,
    /// How often the counts of rate-limited requests are sealed as summary records.
    pub summary_window: Duration,
    /// Where the decisions are stored (None: `decisions.db` in the data directory). A
    /// PostgreSQL store may be shared by several control planes, each writing its own chains.
    pub decisions: Option<zt_store::Location>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            chain_id: None,
            open: false,
            admin_tokens: Vec::new(),
            export: None,
            queue: 4096,
            max_group: 256,
            body_limit: 1 << 20,
            request_timeout: Duration::from_secs(10),
            store_busy_timeout: Duration::from_secs(5),
            tls: None,
            connections: zt_tls::ConnectionLimits::default(),
            unauthenticated_rate: RateLimit::UNAUTHENTICATED,
            actor_rate: RateLimit::PER_ACTOR,
            summary_window: Duration::from_secs(10),
            decisions: None,
        }
    }
}

/// A control plane opened on its data directory, ready to serve.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    options: Options,
    signer: Arc<dyn Signer>,
    chain_id: String,
    admin_token_file: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Records committed over the run: decisions (allow and deny), agent registrations,
    /// rotations and revocations, rate-limit summaries.
    pub decisions: u64,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let path = path.to_owned();
    move |source| ControlPlaneError::Io { what, path, source }
}

impl ControlPlane {
    /// Opens `dir` (created if missing) with a local signing key in `dir/signing-key.pem`.
    pub fn open(dir: &Path, options: Options) -> Result<Self, ControlPlaneError> {
        std::fs::create_dir_all(dir).map_err(io("data directory", dir))?;
        let key = LocalKey::load_or_create(&dir.join("signing-key.pem"))?;
        Self::with_signer(dir, options, Arc::new(key))
    }

    /// Opens `dir` with another signer (a KMS, an HSM; a faulty one in tests).
    pub fn with_signer(
        dir: &Path,
        mut options: Options,
        signer: Arc<dyn Signer>,
    ) -> Result<Self, ControlPlaneError> {
        if options.open && !options.admin_tokens.is_empty() {
            return Err(ControlPlaneError::OpenWithAdminToken);
        }
        std::fs::create_dir_all(dir).map_err(io("data directory", dir))?;
        let state = db::State::open(&dir.join("state.db"))?;
        let chain_id = match (&options.chain_id, state.meta("chain_id")?) {
            (Some(given), Some(stored)) if *given != stored => {
                return Err(ControlPlaneError::ChainIdMismatch {
                    stored,
                    given: given.clone(),
                })
            }
            (Some(given), _) => given.clone(),
            (None, Some(stored)) => stored,
            (None, None) => format!("cp-{}", &signer.key_id().trim_start_matches("cp-")),
        };
        if chain_id.is_empty() || chain_id.chars().any(char::is_control) {
            return Err(ControlPlaneError::BadChainId { chain_id });
        }
        state.set_meta("chain_id", &chain_id)?;
        // The public half, for verifiers: a PEM and a zt-audit keyring.
        let public = signer.public_key();
        let pem_path = dir.join("public.pem");
        std::fs::write(&pem_path, public.to_pem()).map_err(io("public key", &pem_path))?;
        let ring_path = dir.join("keyring.json");
        std::fs::write(&ring_path, keyring_json(signer.as_ref(), &chain_id))
            .map_err(io("keyring", &ring_path))?;
        let mut admin_token_file = None;
        if !options.open && options.admin_tokens.is_empty() {
            let p = dir.join("admin-token");
            if !p.exists() {
                let token = format!("ztadm_{}", util::random_hex(24));
                signer::write_private(&p, format!("{token}\n").as_bytes())
                    .map_err(io("admin token", &p))?;
            }
            let t = std::fs::read_to_string(&p).map_err(io("admin token", &p))?;
            options.admin_tokens.push(t.trim().into());
            admin_token_file = Some(p);
        }
        Ok(Self {
            dir: dir.to_owned(),
            options,
            signer,
            chain_id,
            admin_token_file,
        })
    }

    /// The chain this control plane writes.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The signer's key id.
    pub fn key_id(&self) -> &str {
        self.signer.key_id()
    }

    /// The signer's public key.
    pub fn public_key(&self) -> &zt_core::crypto::PublicKey {
        self.signer.public_key()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The evidence store of this control plane's decisions.
    pub fn decisions_db(&self) -> zt_store::Location {
        self.options
            .decisions
            .clone()
            .unwrap_or_else(|| self.dir.join("decisions.db").into())
    }

    /// Where the generated admin token was written, if one was.
    pub fn admin_token_file(&self) -> Option<&Path> {
        self.admin_token_file.as_deref()
    }

    /// Starts the writer (and exporter) and serves until `shutdown`, then drains: every
    /// decision in flight is committed and answered.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Summary, ControlPlaneError> {
        self.serve_with(listener, shutdown, |_| {}).await
    }

    /// As [`serve`](Self::serve); `on_export` receives the exporter's watch (when exporting)
    /// before the first request is taken, so a caller can wait for the export to catch up.
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        on_export: impl FnOnce(Option<Arc<ExportWatch>>),
    ) -> Result<Summary, ControlPlaneError> {
        let addr = listener
            .local_addr()
            .map_err(io("listener", Path::new("-")))?;
        // Plain `reqwest::Client::new()`s in this process (tests, embedders) need a rustls
        // provider: see zt_tls::install_default_provider.
        zt_tls::install_default_provider();
        if self.options.open && !addr.ip().is_loopback() {
            return Err(ControlPlaneError::OpenNotLoopback { addr });
        }
        let loaded = self.load()?;
        let store = self.lead_store()?;
        let exporter = self.start_export()?;
        let watch = exporter.as_ref().map(|(w, _)| Arc::clone(w));
        let committed = Arc::new(AtomicU64::new(0));
        let on_commit = {
            let watch = watch.clone();
            let committed = Arc::clone(&committed);
            Box::new(move |lane: chain::Lane, pos: u64, n: u64| {
                committed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                if let Some(w) = &watch {
                    w.committed(lane, pos);
                }
            })
        };
        let (chain, writer) = chain::spawn(
            store,
            Arc::clone(&self.signer),
            &WriterConfig {
                chain_id: self.chain_id.clone(),
                queue: self.options.queue,
                max_group: self.options.max_group,
            },
            on_commit,
        )?;
        let connections = zt_tls::Connections::new(self.options.connections);
        let shared = Arc::new(self.shared(loaded, chain, addr.port(), Arc::clone(&connections)));
        on_export(watch);
        let stop_summaries = Arc::new(tokio::sync::Notify::new());
        let summaries = tokio::spawn(summarise(
            Arc::clone(&shared),
            self.options.summary_window,
            Arc::clone(&stop_summaries),
        ));
        let app = http::router(
            shared,
            self.options.body_limit,
            self.options.request_timeout,
        );
        let served = zt_tls::serve(
            listener,
            app,
            self.options.tls.clone(),
            connections,
            shutdown,
        )
        .await;
        // No request is left: the last window's summary is sealed, then the summariser lets
        // go of its chain handle.
        stop_summaries.notify_one();
        let _ = summaries.await;
        // The router (and every chain handle) is gone: the writer drains its queue and stops.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        if let Some((w, j)) = exporter {
            w.stop();
            let _ = tokio::task::spawn_blocking(move || j.join()).await;
        }
        served.map_err(io("serving", Path::new("-")))?;
        Ok(Summary {
            decisions: committed.load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// What `state.db` holds at start: the policy set and the registries.
struct Loaded {
    state: db::State,
    engine: PolicyEngine,
    registry: Registry,
    caps: Capabilities,
    brokers: Brokers,
}

impl ControlPlane {
    /// Opens `state.db`: the policy set (its version recorded) and the registries.
    fn load(&self) -> Result<Loaded, ControlPlaneError> {
        let state = db::State::open(&self.dir.join("state.db"))?;
        let engine = PolicyEngine::new(state.policies()?)?;
        state.record_version(engine.entries(), engine.version())?;
        let registry = Registry::load(state.agents()?, state.retired_tokens()?);
        let caps = Capabilities::load(state.capabilities()?);
        let brokers = Brokers::load(state.brokers()?);
        Ok(Loaded {
            state,
            engine,
            registry,
            caps,
            brokers,
        })
    }

    /// Connects the decision store and takes the lead of this control plane's chains.
    fn lead_store(&self) -> Result<Store, ControlPlaneError> {
        let decisions = self.decisions_db();
        let store = Store::connect(&decisions)?;
        store.set_busy_timeout(self.options.store_busy_timeout)?;
        // One writer per chain: a second control plane appending to the same chains of a shared
        // store would fork them (each keeps its own head). Held while this store is open.
        if !store.try_lead(&format!("chain writer {}", self.chain_id))? {
            return Err(ControlPlaneError::ChainTaken {
                chain: self.chain_id.clone(),
                store: decisions.to_string(),
            });
        }
        Ok(store)
    }

    /// Starts the exporter, when exporting: its watch and its thread.
    fn start_export(&self) -> Result<Option<export::Running>, ControlPlaneError> {
        let Some(cfg) = &self.options.export else {
            return Ok(None);
        };
        export::spawn(export::Exporter {
            config: cfg.clone(),
            decisions: self.decisions_db(),
            state: self.dir.join("state.db"),
            chain: self.chain_id.clone(),
        })
        .map(Some)
    }

    /// The state every request shares.
    fn shared(
        &self,
        loaded: Loaded,
        chain: chain::ChainHandle,
        port: u16,
        connections: Arc<zt_tls::Connections>,
    ) -> Shared {
        let o = &self.options;
        let next_policy = loaded.engine.entries().len() as u64 + 1;
        Shared {
            engine: RwLock::new(Arc::new(loaded.engine)),
            registry: tokio::sync::RwLock::new(loaded.registry),
            tls: o.tls.clone(),
            connections,
            state: Mutex::new(loaded.state),
            chain,
            open: o.open,
            port,
            admin_tokens: o
                .admin_tokens
                .iter()
                .map(|t| Hash32::digest(t.expose().as_bytes()))
                .collect(),
            keyring_json: keyring_json(self.signer.as_ref(), &self.chain_id),
            metrics: Metrics::default(),
            next_policy: AtomicU64::new(next_policy),
            broker: format!("zt-control-plane/{}", env!("CARGO_PKG_VERSION")),
            limiter: Limiter::new(o.unauthenticated_rate, o.actor_rate),
            body_limit: o.body_limit,
            caps: tokio::sync::RwLock::new(loaded.caps),
            brokers: tokio::sync::RwLock::new(loaded.brokers),
            keyring: own_keyring(self.signer.as_ref(), &self.chain_id),
            signer: Arc::clone(&self.signer),
        }
    }
}

/// Every `every`, seals the rate limiter's window of refusals; when `stop` is notified, seals
/// the last window and returns.
async fn summarise(shared: Arc<Shared>, every: Duration, stop: Arc<tokio::sync::Notify>) {
    let every = every.max(Duration::from_millis(10));
    loop {
        let last = tokio::select! {
            () = tokio::time::sleep(every) => false,
            () = stop.notified() => true,
        };
        let engine = shared.engine();
        let stamp = Stamp {
            policy_version: engine.version(),
            broker: &shared.broker,
        };
        limits::flush(&shared.limiter, &shared.chain, &stamp).await;
        if last {
            return;
        }
    }
}

/// The signer's key as a keyring, bound to the control plane's two chains: on a shared store or
/// receiver, a record of another chain signed with this key does not count.
fn own_keyring(signer: &dyn Signer, chain_id: &str) -> Keyring {
    let mut ring = Keyring::new();
    let entry = KeyEntry::new(signer.key_id(), signer.public_key().clone()).bound_to([
        Lane::Decisions.chain_id(chain_id),
        Lane::Admin.chain_id(chain_id),
    ]);
    // A fresh keyring cannot already hold this id.
    let _ = ring.insert(entry);
    ring
}

/// The signer's public key as a zt-audit keyring (JSON text), bound to `chain_id` and
/// `chain_id.admin`.
pub fn keyring_json(signer: &dyn Signer, chain_id: &str) -> String {
    format!("{:#}\n", own_keyring(signer, chain_id).to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_token() {
        let mut opts = Options {
            admin_tokens: vec!["ztadm_s3cret-admin".into()],
            ..Options::default()
        };
        let mut export = ExportConfig::new("http://127.0.0.1:4318/v1/logs");
        export.token = Some("ingest-s3cret".into());
        opts.export = Some(export);
        let shown = format!("{opts:?} {opts:#?}");
        for secret in ["ztadm_s3cret-admin", "ingest-s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
