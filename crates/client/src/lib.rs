//! The guarded client: an agent asks the control plane whether it may run an action, and the
//! action runs only after an `allow` whose envelope verifies.
//!
//! "Verifies" means all of: the answer is a v1 envelope; its hash recomputes; it is signed
//! with ECDSA P-256 by the **pinned** control-plane key, at a time inside that key's validity
//! window; its actor, action, resource, request id and policy facts (the request's `context`,
//! sealed as the envelope's `context.request`) are the ones asked about; its timestamp is
//! within the allowed skew of the local clock; and this client has not seen it before.
//! Anything else — a deny, an HTTP error, a timeout, a refused connection, malformed JSON, a
//! missing `audit`, a bad signature, a key outside its window, a decision on other facts, a
//! replay — is a typed [`Refusal`] and the action does not run.
//!
//! Fail closed is a type-level property: the action can only be given to
//! [`Allowed::run`], and an [`Allowed`] can only come out of the verification in this crate.
//! There is no code path from an error to the action.
//!
//! ```no_run
//! use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pinned = PinnedKey::from_keyring_json(&std::fs::read("cp-data/keyring.json")?)?;
//! let client = GuardedClient::new(ClientConfig::new("http://127.0.0.1:8080", pinned))?;
//! let req = ActionRequest::new("agent-hello", "hello-world.say_hello").resource("demo/greeting");
//! match client.guarded_call(&req, |_allowed| async { println!("hello, world") }).await {
//!     Ok(done) => println!("ran under decision {}", done.decision.current_hash),
//!     Err(refusal) => println!("not run: {refusal}"),
//! }
//! # Ok(()) }
//! ```

mod error;

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use error::Refusal;
use zt_core::crypto::{self, PublicKey};
use zt_core::envelope::SignatureKind;
use zt_core::json::{self, Map, Value};
use zt_core::keyring::{KeyEntry, Keyring, WindowViolation};
use zt_core::time::Timestamp;
use zt_core::{Envelope, Hash32, Profile};
use zt_export::{ExportConfig, ExportQueue};

/// Largest answer read, in bytes.
pub const MAX_ANSWER: usize = 1 << 20;

/// Client set-up errors (not refusals: nothing was asked yet).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The keyring does not hold exactly one usable key.
    #[error("pinned key: {0}")]
    Key(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// The CA file or the client certificate cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] zt_tls::TlsError),
}

/// The control plane's public key, pinned out of band, with its validity window.
#[derive(Debug, Clone)]
pub struct PinnedKey {
    entry: KeyEntry,
}

impl PinnedKey {
    /// A key and its id, without a validity window.
    pub fn new(key_id: impl Into<String>, public: PublicKey) -> Self {
        Self::from_entry(KeyEntry::new(key_id, public))
    }

    /// A keyring entry: the key, its id and its window (`not_before`, `not_after`,
    /// `revoked_at`), which every decision's timestamp must fall inside.
    pub fn from_entry(entry: KeyEntry) -> Self {
        Self { entry }
    }

    /// The one key of a zt-audit keyring (`keyring.json` in the control plane's directory),
    /// window included.
    pub fn from_keyring_json(bytes: &[u8]) -> Result<Self, ClientError> {
        let ring = Keyring::from_json(bytes).map_err(|e| ClientError::Key(e.to_string()))?;
        let entries = ring.entries();
        match entries.as_slice() {
            [one] => Ok(Self::from_entry((*one).clone())),
            other => Err(ClientError::Key(format!(
                "expected exactly one key in the keyring, found {}",
                other.len()
            ))),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.entry.key_id
    }

    /// The keyring entry: key, id, window.
    pub fn entry(&self) -> &KeyEntry {
        &self.entry
    }

    /// Whether a decision signed at `signed_at` and received at `now` may rest on this key.
    /// The whole window is checked at the signing time. Its end (`not_after`, `revoked_at`)
    /// is checked at `now` too: whoever holds a withdrawn key picks the timestamp it signs
    /// (up to the allowed skew), and a live decision must not rest on a key withdrawn since.
    /// Its start is not checked at `now`, so a key rotated in a moment ago is not refused
    /// over a clock difference the skew already tolerates.
    fn check_window(&self, signed_at: Timestamp, now: Timestamp) -> Result<(), Refusal> {
        let refusal = |at, violation| Refusal::KeyNotValid {
            key_id: self.entry.key_id.clone(),
            at,
            violation,
        };
        self.entry
            .check_window(signed_at)
            .map_err(|v| refusal(signed_at, v))?;
        match self.entry.check_window(now) {
            Err(v @ (WindowViolation::Expired(_) | WindowViolation::Revoked(_))) => {
                Err(refusal(now, v))
            }
            Ok(()) | Err(WindowViolation::NotYetValid(_)) => Ok(()),
        }
    }
}

/// How the client talks and what it accepts.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The control plane, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// The key every decision must be signed with.
    pub pinned: PinnedKey,
    /// This agent's bearer token (binds it to its actor; never shown by `Debug`).
    pub token: Option<zt_core::secret::Secret>,
    /// For the whole exchange.
    pub timeout: Duration,
    /// Largest distance between the decision's timestamp and the local clock.
    pub max_skew: Duration,
    /// Re-export verified envelopes to an OTLP/HTTP logs endpoint (ingest).
    pub export: Option<ExportConfig>,
    /// For `https://`: the CAs to trust (`tls.ca`, default the system's) and this agent's
    /// X.509-SVID for mTLS (`tls.identity`, reloaded when its files change). Over mTLS the
    /// SVID, not the token, says who is asking.
    pub tls: zt_tls::ClientTls,
}

impl ClientConfig {
    /// 5 s timeout, 30 s skew, no token, no export, the system's CAs, no client certificate.
    pub fn new(base_url: impl Into<String>, pinned: PinnedKey) -> Self {
        Self {
            base_url: base_url.into(),
            pinned,
            token: None,
            timeout: Duration::from_secs(5),
            max_skew: Duration::from_secs(30),
            export: None,
            tls: zt_tls::ClientTls::default(),
        }
    }
}

/// What to ask about.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRequest {
    /// Who asks.
    pub actor: String,
    /// The action.
    pub action: String,
    /// On what (empty when none).
    pub resource: String,
    /// Facts for the policy (a JSON object).
    pub context: Option<Map>,
    /// A capability token presented with the request (sent as `capability`; never shown by
    /// `Debug`). The allow must then name the same capability id in its signed
    /// `context.capability`, whose grants are what the action may use.
    pub capability: Option<zt_core::secret::Secret>,
}

impl ActionRequest {
    /// `actor` asks to run `action`.
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            resource: String::new(),
            context: None,
            capability: None,
        }
    }

    /// Presents a capability token (see [`ActionRequest::capability`]).
    pub fn capability(mut self, token: impl Into<String>) -> Self {
        self.capability = Some(zt_core::secret::Secret::new(token));
        self
    }

    /// On this resource.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// With a context object given as JSON text; `None` back when it is not a JSON object.
    pub fn context_json(mut self, json_text: &str) -> Option<Self> {
        match json::parse(json_text.as_bytes()).ok()? {
            Value::Object(m) => {
                self.context = Some(m);
                Some(self)
            }
            _ => None,
        }
    }
}

/// A decision that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDecision {
    /// The envelope as a record (one line of JSON).
    pub envelope: String,
    /// Its hash.
    pub current_hash: Hash32,
    /// Its chain.
    pub chain_id: String,
    /// Its position.
    pub seq: u64,
    /// Its reason.
    pub reason: String,
    /// Its timestamp.
    pub timestamp: String,
    /// When a capability was presented: the capability as the control plane signed it into
    /// the decision (`context.capability`). Its grants are the ones to apply, never the
    /// token's own.
    pub capability: Option<SignedCapability>,
}

/// A capability as sealed in a verified decision's `context.capability`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCapability {
    /// `id`: the same as the presented token's.
    pub id: String,
    /// `grants`, checked by [`zt_core::capability::Grants::from_value`].
    pub grants: zt_core::capability::Grants,
    /// `not_after`, when the decision states one.
    pub not_after: Option<Timestamp>,
}

/// A verified `allow`. Only this crate makes one; only it runs an action.
#[derive(Debug)]
pub struct Allowed {
    decision: VerifiedDecision,
}

impl Allowed {
    /// The decision behind this allow.
    pub fn decision(&self) -> &VerifiedDecision {
        &self.decision
    }

    /// Runs `action` under this allow.
    pub async fn run<F, Fut, T>(self, action: F) -> Executed<T>
    where
        F: FnOnce(&Allowed) -> Fut,
        Fut: Future<Output = T>,
    {
        let output = action(&self).await;
        Executed {
            output,
            decision: self.decision,
        }
    }
}

/// An action that ran, and the decision it ran under.
#[derive(Debug)]
pub struct Executed<T> {
    /// What the action returned.
    pub output: T,
    /// The verified allow.
    pub decision: VerifiedDecision,
}

/// Envelopes this client has accepted, most recent last (bounded).
#[derive(Debug, Default)]
struct Seen {
    set: HashSet<Hash32>,
    order: VecDeque<Hash32>,
}

const SEEN_CAP: usize = 100_000;

impl Seen {
    /// False when `h` was seen before.
    fn insert(&mut self, h: Hash32) -> bool {
        if !self.set.insert(h) {
            return false;
        }
        self.order.push_back(h);
        if self.order.len() > SEEN_CAP {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// The guarded client.
#[derive(Debug)]
pub struct GuardedClient {
    http: reqwest::Client,
    config: ClientConfig,
    seen: Mutex<Seen>,
    export: Option<ExportQueue>,
}

fn random_request_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut b);
    format!("req-{}", hex::encode(b))
}

impl GuardedClient {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        // For the embedding process's own plain reqwest clients: see
        // zt_tls::install_default_provider (this one gets its rustls config below).
        zt_tls::install_default_provider();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config.tls.config()?)
            .timeout(config.timeout)
            // A redirect could lead anywhere; the pinned key makes that harmless, but an
            // answer from elsewhere is still not an answer.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let export = config
            .export
            .clone()
            .map(|cfg| ExportQueue::start(cfg, 4096));
        Ok(Self {
            http,
            config,
            seen: Mutex::new(Seen::default()),
            export,
        })
    }

    /// Asks, then runs `action` only on a verified allow. On any refusal the action is
    /// dropped unrun and the refusal says why.
    pub async fn guarded_call<F, Fut, T>(
        &self,
        request: &ActionRequest,
        action: F,
    ) -> Result<Executed<T>, Refusal>
    where
        F: FnOnce(&Allowed) -> Fut,
        Fut: Future<Output = T>,
    {
        let allowed = self.decide(request).await?;
        Ok(allowed.run(action).await)
    }

    /// Asks and verifies; an [`Allowed`] only for a verified allow.
    pub async fn decide(&self, request: &ActionRequest) -> Result<Allowed, Refusal> {
        let request_id = random_request_id();
        let (status, body) = self.exchange(request, &request_id).await?;
        let verdict = verify_answer(
            status,
            &body,
            request,
            &request_id,
            &self.config.pinned,
            Timestamp::now(),
            self.config.max_skew,
        );
        let (allow, decision) = match verdict {
            Ok(v) => v,
            Err(r) => return Err(r),
        };
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(decision.current_hash);
        if !fresh {
            return Err(Refusal::Replay(format!(
                "envelope {} was already accepted once",
                decision.current_hash.short()
            )));
        }
        if let Some(q) = &self.export {
            // Best effort: the control plane exports the same envelope durably.
            q.send(decision.envelope.clone());
        }
        match allow {
            Allow::Yes => Ok(Allowed { decision }),
            Allow::No { status } => Err(Refusal::Denied {
                reason: decision.reason,
                status,
                current_hash: decision.current_hash,
            }),
        }
    }

    /// Waits for re-exported envelopes to reach ingest; false on timeout (or no export).
    pub fn flush_export(&self, timeout: Duration) -> bool {
        self.export.as_ref().is_some_and(|q| q.flush(timeout))
    }

    async fn exchange(
        &self,
        request: &ActionRequest,
        request_id: &str,
    ) -> Result<(u16, Vec<u8>), Refusal> {
        let body = request_body(request, request_id);
        let url = format!("{}/actions", self.config.base_url.trim_end_matches('/'));
        let timeout_ms = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Refusal::Timeout { timeout_ms }
            } else {
                Refusal::Connect(error_chain(&e))
            }
        };
        let fut = async {
            let mut req = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(t) = &self.config.token {
                req = req.bearer_auth(t.expose());
            }
            let mut resp = req.send().await.map_err(transport)?;
            let status = resp.status().as_u16();
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(transport)? {
                if buf.len() + chunk.len() > MAX_ANSWER {
                    return Err(Refusal::Malformed(format!(
                        "answer larger than {MAX_ANSWER} bytes"
                    )));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((status, buf))
        };
        // reqwest's timeout covers the exchange; this bounds it whatever the transport does.
        tokio::time::timeout(self.config.timeout + Duration::from_millis(100), fut)
            .await
            .unwrap_or(Err(Refusal::Timeout { timeout_ms }))
    }
}

use zt_core::text::error_chain;

fn request_body(request: &ActionRequest, request_id: &str) -> Vec<u8> {
    let s = |x: &str| Value::String(x.to_owned());
    let (actor, action, resource, rid) = (
        s(&request.actor),
        s(&request.action),
        s(&request.resource),
        s(request_id),
    );
    let ctx = request.context.clone().map(Value::Object);
    let mut members: Vec<(&str, &Value)> = vec![
        ("actor", &actor),
        ("action", &action),
        ("resource", &resource),
        ("request_id", &rid),
    ];
    if let Some(c) = &ctx {
        members.push(("context", c));
    }
    let cap = request
        .capability
        .as_ref()
        .map(|t| Value::String(t.expose().to_owned()));
    if let Some(c) = &cap {
        members.push(("capability", c));
    }
    let mut out = Vec::with_capacity(256);
    json::write_ordered_object(&members, &mut out);
    out
}

/// Whether a verified decision allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// A verified allow with HTTP 200.
    Yes,
    /// A verified deny, with its HTTP status.
    No {
        /// 403 or 401.
        status: u16,
    },
}

fn short(bytes: &[u8]) -> String {
    zt_core::envelope::shorten(&String::from_utf8_lossy(bytes))
}

/// The checks every sealed answer gets: a v1 envelope whose hash recomputes, signed by the
/// pinned key inside its window.
fn check_sealed(
    value: &Value,
    pinned: &PinnedKey,
    now: Timestamp,
) -> Result<(Envelope, zt_core::envelope::V1Fields), Refusal> {
    let env = Envelope::from_value(value.clone())
        .map_err(|e| Refusal::Malformed(format!("not an audit envelope: {e}")))?;
    let Some(v1) = env.v1.clone() else {
        return Err(Refusal::Malformed(
            "not a v1 envelope (no version, chain id, seq)".into(),
        ));
    };
    let computed = env
        .compute_hash(Profile::V1)
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    if computed != env.current_hash {
        return Err(Refusal::HashMismatch {
            claimed: env.current_hash,
            computed,
        });
    }
    let pinned_id = pinned.key_id();
    if env.signature.kind() != SignatureKind::Ecdsa
        || env.signature.key_id != pinned_id
        || v1.signer_key_id != pinned_id
    {
        return Err(Refusal::WrongKey {
            pinned: pinned_id.to_owned(),
            found: env.signature.key_id.clone(),
            algorithm: env.signature.algorithm.clone(),
        });
    }
    let bad_sig = || Refusal::BadSignature {
        key_id: pinned_id.to_owned(),
    };
    let der = crypto::decode_signature(&env.signature.signature).map_err(|_| bad_sig())?;
    pinned
        .entry
        .public_key
        .verify_digest(&env.current_hash, &der)
        .map_err(|_| bad_sig())?;
    // The pinned key made this signature; a key that was not valid then (or has been
    // withdrawn since) vouches for nothing, nor does one signing a chain it is not bound to.
    pinned.check_window(env.signed_at, now)?;
    if !pinned.entry.binds(Some(&v1.chain_id)) {
        return Err(Refusal::UnauthorizedSigner {
            key_id: pinned_id.to_owned(),
            chain: v1.chain_id.clone(),
            bound: pinned.entry.chains.clone().unwrap_or_default().join(", "),
        });
    }
    Ok((env, v1))
}

/// Verifies a record the control plane sealed for something other than a decision (e.g. the
/// answer to an execution report, `{"ok": true, "audit": {...}}`): hash and pinned signature
/// inside the key's window. Its hash back.
pub fn verify_sealed(body: &[u8], pinned: &PinnedKey, now: Timestamp) -> Result<Hash32, Refusal> {
    let value = json::parse(body).map_err(|e| Refusal::Malformed(format!("not JSON: {e}")))?;
    if !value.as_object().is_some_and(|m| m.contains_key("audit")) {
        return Err(Refusal::MissingAudit);
    }
    let (env, _) = check_sealed(&value, pinned, now)?;
    Ok(env.current_hash)
}

/// Verifies one answer of `POST /actions` (see the crate docs for what that means). Pure: the
/// clock is an argument; the replay cache is the caller's.
pub fn verify_answer(
    status: u16,
    body: &[u8],
    request: &ActionRequest,
    request_id: &str,
    pinned: &PinnedKey,
    now: Timestamp,
    max_skew: Duration,
) -> Result<(Allow, VerifiedDecision), Refusal> {
    let value = match json::parse(body) {
        Ok(v) => v,
        Err(e) if status == 200 => return Err(Refusal::Malformed(format!("not JSON: {e}"))),
        Err(_) => {
            return Err(Refusal::Http {
                status,
                message: short(body),
            })
        }
    };
    let Value::Object(top) = &value else {
        return Err(Refusal::Malformed(format!(
            "a JSON {}, not an object",
            value.type_name()
        )));
    };
    if !top.contains_key("audit") {
        if status == 200 {
            return Err(Refusal::MissingAudit);
        }
        let message = top
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| short(body), zt_core::envelope::shorten);
        return Err(Refusal::Http { status, message });
    }
    let record = flatten(top);
    let (env, v1) = check_sealed(&value, pinned, now)?;
    // Signed by the control plane: now, is it about this request?
    for (field, asked, answered) in [
        ("actor", &request.actor, &env.actor),
        ("action", &request.action, &env.action),
        (
            "resource",
            &request.resource,
            env.resource.as_ref().unwrap_or(&String::new()),
        ),
    ] {
        if asked != answered {
            return Err(Refusal::Mismatch {
                field,
                asked: asked.clone(),
                answered: answered.clone(),
            });
        }
    }
    // The rest of the request is in the signed context: read it from the hashed members,
    // so what is compared is what the signature covers.
    let sealed = match env.context() {
        None => None,
        Some(Value::Object(c)) => Some(c),
        Some(other) => {
            return Err(Refusal::Malformed(format!(
                "the envelope's `context` is a JSON {}, not an object",
                other.type_name()
            )))
        }
    };
    let answered_request_id = sealed
        .and_then(|c| c.get("request_id"))
        .and_then(Value::as_str);
    if answered_request_id != Some(request_id) {
        return Err(Refusal::Replay(format!(
            "the envelope answers request {}, not {request_id}",
            answered_request_id.unwrap_or("(none)")
        )));
    }
    check_policy_facts(
        request.context.as_ref(),
        sealed.and_then(|c| c.get("request")),
    )?;
    // Only an allow carries the capability it was made under; a deny says why in its reason
    // (and the action does not run either way).
    let capability = match &request.capability {
        Some(token) if env.decision == "allow" => Some(signed_capability(
            token.expose(),
            sealed.and_then(|c| c.get("capability")),
        )?),
        _ => None,
    };
    let skew_ns = (now.unix_nanos() - env.signed_at.unix_nanos()).abs();
    if skew_ns > max_skew.as_nanos() as i128 {
        return Err(Refusal::Stale {
            timestamp: env.timestamp.clone(),
            skew_ms: i64::try_from(skew_ns / 1_000_000).unwrap_or(i64::MAX),
            max_ms: u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX),
        });
    }
    let decision = VerifiedDecision {
        envelope: record,
        current_hash: env.current_hash,
        chain_id: v1.chain_id,
        seq: v1.seq,
        reason: env.reason.clone(),
        timestamp: env.timestamp.clone(),
        capability,
    };
    match (env.decision.as_str(), status) {
        ("allow", 200) => Ok((Allow::Yes, decision)),
        ("allow", other) => Err(Refusal::Malformed(format!(
            "a signed allow came with HTTP status {other}"
        ))),
        (_, status) => Ok((Allow::No { status }, decision)),
    }
}

/// The capability a decision sealed (`context.capability`) must be the one the request
/// presented (same id); its grants are parsed here so that a broker gets them only from the
/// signed envelope.
fn signed_capability(token: &str, sealed: Option<&Value>) -> Result<SignedCapability, Refusal> {
    let sent = zt_core::capability::claimed_id(token);
    let mismatch = |answered: Option<&str>| Refusal::CapabilityMismatch {
        sent: sent.clone(),
        answered: answered.map(zt_core::envelope::shorten),
    };
    let Some(Value::Object(c)) = sealed else {
        return Err(mismatch(None));
    };
    let id = c.get("id").and_then(Value::as_str);
    if sent.is_none() || id != sent.as_deref() {
        return Err(mismatch(id));
    }
    let grants = c
        .get("grants")
        .ok_or_else(|| Refusal::Malformed("`context.capability` has no `grants`".into()))
        .and_then(|g| {
            zt_core::capability::Grants::from_value(g)
                .map_err(|e| Refusal::Malformed(format!("`context.capability.grants`: {e}")))
        })?;
    let not_after = match c.get("not_after") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(Timestamp::parse_rfc3339)
                .ok_or_else(|| {
                    Refusal::Malformed(
                        "`context.capability.not_after` is not an RFC 3339 time".into(),
                    )
                })?,
        ),
    };
    Ok(SignedCapability {
        id: id.unwrap_or_default().to_owned(),
        grants,
        not_after,
    })
}

/// The policy facts a decision was made on (`context.request`, sealed by the control plane)
/// must be the ones this request sent: the same action on the same resource can be allowed
/// on some facts and denied on others. Compared in RFC 8785 form, so member order and number
/// spelling do not matter; absent and `{}` differ, as the control plane seals what it got.
fn check_policy_facts(asked: Option<&Map>, answered: Option<&Value>) -> Result<(), Refusal> {
    let asked = asked.map(|m| {
        let mut out = Vec::new();
        json::write_canonical_object(m, &mut out);
        out
    });
    let answered = answered.map(json::canonicalize);
    if asked == answered {
        return Ok(());
    }
    Err(Refusal::ContextMismatch {
        asked: asked.as_deref().map(short),
        answered: answered.as_deref().map(short),
    })
}

/// The record inside an HTTP answer: every member but `ok` and `audit`, then `audit`'s.
fn flatten(top: &Map) -> String {
    let mut members: Vec<(&str, &Value)> = Vec::new();
    for (k, v) in top.iter() {
        match k {
            "ok" => {}
            "audit" => {
                if let Some(a) = v.as_object() {
                    members.extend(a.iter());
                }
            }
            _ => members.push((k, v)),
        }
    }
    let mut out = Vec::with_capacity(1024);
    json::write_ordered_object(&members, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An allow in the control plane's HTTP shape, sealed by `key`, for `req` asked as
    /// `request_id`, with `capability` sealed under `context.capability`.
    fn answer_with(
        key: &zt_core::crypto::SigningKey,
        req: &ActionRequest,
        request_id: &str,
        capability: Option<Value>,
    ) -> Vec<u8> {
        let mut ctx = Map::new();
        ctx.push("request_id".into(), Value::String(request_id.into()));
        if let Some(c) = capability {
            ctx.push("capability".into(), c);
        }
        let sealed = zt_core::envelope::V1Draft {
            chain_id: "t".into(),
            seq: 0,
            actor: req.actor.clone(),
            action: req.action.clone(),
            resource: req.resource.clone(),
            decision: "allow".into(),
            reason: "ok".into(),
            timestamp: Timestamp::now().to_rfc3339_millis(),
            previous_hash: Hash32::ZERO,
            context: Some(ctx),
        }
        .seal(Some((key, "cp-1")));
        let Ok(Value::Object(rec)) = json::parse(sealed.json.as_bytes()) else {
            panic!("sealed record")
        };
        let (mut top, mut audit) = (Map::new(), Map::new());
        for (k, v) in rec.iter() {
            if ["actor", "action", "resource", "decision", "reason"].contains(&k) {
                top.push(k.into(), v.clone());
            } else {
                audit.push(k.into(), v.clone());
            }
        }
        top.push("audit".into(), Value::Object(audit));
        json::canonicalize(&Value::Object(top))
    }

    #[test]
    fn a_presented_capability_must_come_back_sealed_with_its_grants() {
        use zt_core::capability::{issue, Grants, Issue};
        let key = zt_core::crypto::SigningKey::generate();
        let pinned = PinnedKey::new("cp-1", key.public_key());
        let token = issue(
            &Issue {
                id: "cap-7".into(),
                actor: "agent-a".into(),
                action: "run".into(),
                resource: String::new(),
                grants: Grants {
                    read: vec!["/".into()],
                    ..Grants::default()
                },
                issued_at: Timestamp::now(),
                not_after: Timestamp::from_unix_nanos(
                    Timestamp::now().unix_nanos() + 60_000_000_000,
                ),
                issuer_key_id: "cp-1".into(),
            },
            |d| Ok::<_, ()>(key.sign_digest(d)),
        )
        .unwrap_or_else(|()| panic!("issue"));
        let req = ActionRequest::new("agent-a", "run").capability(token.clone());
        assert!(!format!("{req:?}").contains(&token));
        let body = String::from_utf8(request_body(&req, "r-1")).unwrap_or_default();
        assert!(
            body.contains(&format!("\"capability\":\"{token}\"")),
            "{body}"
        );
        let verify = |cap: Option<Value>| {
            verify_answer(
                200,
                &answer_with(&key, &req, "r-1", cap),
                &req,
                "r-1",
                &pinned,
                Timestamp::now(),
                Duration::from_secs(30),
            )
        };
        let sealed = |id: &str, grants: &str| {
            json::parse(format!(r#"{{"id":"{id}","grants":{grants}}}"#).as_bytes()).ok()
        };
        // the signed grants (narrower than the token's) are what comes out
        let (allow, d) = verify(sealed(
            "cap-7",
            r#"{"read":["/data"],"exec":["/bin/true"]}"#,
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(allow, Allow::Yes);
        let c = d.capability.unwrap_or_else(|| panic!("no capability"));
        assert_eq!(
            (c.id.as_str(), c.grants.read.clone()),
            ("cap-7", vec!["/data".to_owned()])
        );
        assert_eq!(c.grants.exec, vec!["/bin/true".to_owned()]);
        // another capability, none at all, or grants that do not parse: refused
        assert!(matches!(
            verify(sealed("cap-8", "{}")),
            Err(Refusal::CapabilityMismatch { answered: Some(a), .. }) if a == "cap-8"
        ));
        assert!(matches!(
            verify(None),
            Err(Refusal::CapabilityMismatch { answered: None, .. })
        ));
        assert!(matches!(
            verify(sealed("cap-7", r#"{"read":["relative"]}"#)),
            Err(Refusal::Malformed(_))
        ));
        // and the same envelope checks as a sealed record
        let ok = answer_with(&key, &req, "r-1", sealed("cap-7", "{}"));
        assert!(verify_sealed(&ok, &pinned, Timestamp::now()).is_ok());
        let other = PinnedKey::new("cp-1", zt_core::crypto::SigningKey::generate().public_key());
        assert!(matches!(
            verify_sealed(&ok, &other, Timestamp::now()),
            Err(Refusal::BadSignature { .. })
        ));
        // the pinned key bound to other chains than the answer's (`t`): refused
        let bound =
            PinnedKey::from_entry(KeyEntry::new("cp-1", key.public_key()).bound_to(["cp-x"]));
        assert!(matches!(
            verify_sealed(&ok, &bound, Timestamp::now()),
            Err(Refusal::UnauthorizedSigner { chain, .. }) if chain == "t"
        ));
        let right = PinnedKey::from_entry(
            KeyEntry::new("cp-1", key.public_key()).bound_to(["t", "t.admin"]),
        );
        assert!(verify_sealed(&ok, &right, Timestamp::now()).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_agent_token() {
        let key = zt_core::crypto::SigningKey::generate().public_key();
        let mut c = ClientConfig::new("http://127.0.0.1:8080", PinnedKey::new("cp-1", key));
        c.token = Some("ztcp_s3cret-agent-token".into());
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("ztcp_s3cret-agent-token"), "{shown}");
    }
}
