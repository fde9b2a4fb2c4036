//! The HTTP API (axum).
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /actions` | agents | decide `{actor, action, resource?, context?, request_id?, capability?}`: 200 allow, 403 deny, 401 unauthenticated deny, 429 past a rate limit; the lineage's answer shape `{ok, actor, action, resource, decision, reason, audit: {...}}` |
//! | `POST /agents` | admin | register `{actor, spiffe_id?, token_ttl_s?}`: 201 `{ok, actor, token, token_id, token_expires_at?, audit}` (the token is shown once; the registration is a sealed record); `spiffe_id` binds the agent to an X.509-SVID's SPIFFE ID |
//! | `GET /agents` | admin | the active agents |
//! | `POST /agents/{actor}/token` | admin | rotate `{token_ttl_s?}`: 200 with a new token; the old one stops authenticating; a sealed record |
//! | `DELETE /agents/{actor}` | admin | revoke: its token stops authenticating; a sealed record |
//! | `POST /policies` | admin | add Cedar text (`text/plain` with `X-ZT-Admin: 1`, or `{"cedar": "..."}`) or a narrow allow rule `{action, resource?, actor?, reason?}`: 201 |
//! | `GET /policies` | admin | the set and its version; `?version=sha256:...` gives an earlier set |
//! | `DELETE /policies/{id}` | admin | remove one policy |
//! | `POST /capabilities` | admin | issue `{actor, action, resource?, ttl_s, grants}` under Cedar: 201 `{ok, id, token, expires_at, audit}`, 403 a recorded deny ([`crate::capabilities`]) |
//! | `DELETE /capabilities/{id}` | admin | revoke: a sealed record, then brokers under it stop |
//! | `GET /capabilities/{id}` | its agent, brokers, admin | 200 active, 410 revoked or expired: what a broker watches |
//! | `POST /brokers` | admin | register an execution broker `{name, public_key, spiffe_id?}`: 201 `{ok, name, key_id, token, token_id, audit}`; a sealed record carrying its key ([`crate::brokers`]) |
//! | `GET /brokers`, `DELETE /brokers/{name}` | admin | the active brokers; revoke one (a sealed record) |
//! | `POST /executions` | brokers | a registered broker's signed execution report, sealed and linked to its allow; an agent's own report is sealed as a claim (403) |
//! | `GET /keyring.json` | anyone | the control plane's public key as a zt-audit keyring |
//! | `GET /healthz`, `GET /metrics` | anyone | liveness; Prometheus counters |
//!
//! "admin" means `Authorization: Bearer <admin token>`; in open mode (loopback only, for the
//! quickstart) no token is needed anywhere, but an agent token that is presented still binds,
//! and every request must name the server by a loopback name ([`crate::origin`]). Admin
//! bodies are `application/json`, or `text/plain` with `X-ZT-Admin: 1`, in every mode.
//!
//! Every `/actions` request with a readable body is decided and audited, the refused ones too:
//! a token that speaks for another actor, no token, an expired or retired token, an
//! unregistered or revoked actor. A request past a rate limit is refused before its body is
//! read and counted in the sealed summary of its window ([`crate::limits`]).
//!
//! Who is asking, over mTLS (a client CA bundle, `zt-tls`): a connection that presented a
//! verified X.509-SVID is its SPIFFE ID, whatever the body claims and whatever bearer token
//! comes with it. The body's actor must be the agent bound to that ID (`POST /agents
//! {actor, spiffe_id}`); otherwise a recorded deny, "actor mismatch" (403), and an ID bound to
//! no agent is a recorded deny too. A client certificate that verified but is not an
//! acceptable SVID (no or several URI SANs, not a SPIFFE ID, a trust domain its CA does not
//! hold) is a recorded deny, 401, with the reason. The envelope's `context.identity` is the
//! SPIFFE ID. Without a client certificate, tokens work as over plain HTTP. Admin routes need
//! the admin token either way.
//!
//! Agent lifecycle records (registration, rotation, revocation) are v1 envelopes on the control
//! plane's own chain (`CHAIN.admin`, [`crate::chain::Lane::Admin`]): actor `zt.admin`, action `zt.agent.register`, `zt.agent.token.rotate` or
//! `zt.agent.revoke`, resource `agent/NAME`, decision `allow` (the administrator's request was
//! carried out), context `{identity: "admin-token:<id>", agent, token_id, retired_token_id,
//! token_expires_at, ...}`; token ids are the first 16 hex digits of a token's SHA-256. The
//! record is sealed before the change takes effect, under the registry's write lock, so no
//! decision made with a retired token is stamped after its retirement, and nothing
//! changes that is not on record. Actor names starting with `zt.` are the control plane's own,
//! and so are actions starting with `zt.`: an agent asking for one is denied.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use zt_core::json::{self, Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_tls::{PeerIdentity, TlsServer};

use crate::agents::{self, token_id, Auth, Registry};
use crate::brokers::{self, Brokers};
use crate::capabilities::{self, Capabilities};
use crate::chain::{ChainHandle, Committed, Decided, Lane};
use crate::db::CapabilityUse;
use crate::db::{self, Retired};
use crate::error::SealError;
use crate::limits::{Key, Limiter};
use crate::origin::{admin_body, AdminBody};
use crate::policy::{self, NarrowRule, PolicyEngine, PolicyEntry};
use crate::signer::Signer;

/// Longest actor, action or request id accepted, in characters (JSON Schema's maxLength).
pub const MAX_NAME: usize = 256;
/// Longest resource accepted, in characters.
pub const MAX_RESOURCE: usize = 2048;

/// Longest token lifetime accepted (`token_ttl_s`): ten years.
pub const MAX_TOKEN_TTL_S: u64 = 10 * 365 * 24 * 3600;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    unavailable: AtomicU64,
    bad_requests: AtomicU64,
    refused_origin: AtomicU64,
}

impl Metrics {
    pub(crate) fn count_refused_origin(&self) {
        self.refused_origin.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct Shared {
    pub engine: RwLock<Arc<PolicyEngine>>,
    /// Who tokens speak for. Async: admin routes hold it for writing while their record is
    /// sealed, decisions for reading from authentication to their place in the queue.
    pub registry: tokio::sync::RwLock<Registry>,
    /// TLS, for its counters on `/metrics`.
    pub tls: Option<Arc<TlsServer>>,
    /// The listener's connections and their counts (for `/metrics`).
    pub connections: Arc<zt_tls::Connections>,
    pub state: Mutex<db::State>,
    pub chain: ChainHandle,
    pub open: bool,
    /// The listening port: in open mode, `Host` must name it.
    pub port: u16,
    pub admin_tokens: Vec<Hash32>,
    pub keyring_json: String,
    pub metrics: Metrics,
    pub next_policy: AtomicU64,
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

pub(crate) type St = State<Arc<Shared>>;

pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn router(
    shared: Arc<Shared>,
    body_limit: usize,
    timeout: std::time::Duration,
) -> Router {
    let mut app = Router::new()
        .route("/actions", post(actions))
        .route("/agents", post(agents::register).get(agents::list))
        .route("/agents/{actor}", delete(agents::revoke))
        .route("/agents/{actor}/token", post(agents::rotate))
        .route("/capabilities", post(capabilities::issue))
        .route(
            "/capabilities/{id}",
            get(capabilities::status).delete(capabilities::revoke),
        )
        .route("/executions", post(capabilities::execution))
        .route("/brokers", post(brokers::register).get(brokers::list))
        .route("/brokers/{name}", delete(brokers::revoke))
        .route("/policies", post(add_policies).get(get_policies))
        .route("/policies/{id}", delete(remove_policy))
        .route("/keyring.json", get(keyring))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics));
    if shared.open {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            crate::origin::open_mode_guard,
        ));
    }
    app.layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1024))
        .with_state(shared)
}

pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(
        status,
        serde_json::json!({"ok": false, "error": message.into()}),
    )
}

/// A refusal with its status, rendered as `{ok: false, error}`.
/// Runs an admin change to its end on its own task. A change seals its record, then takes
/// effect; if the request timed out (or the client went away) in between and the handler's
/// future were dropped, the chain would say "revoked" of a token that still works. On its own
/// task, a dropped answer drops only the waiting.
pub(crate) async fn to_completion<F>(change: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    match tokio::spawn(change).await {
        Ok(r) => r,
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change did not finish ({e}); check the chain and retry"),
        ),
    }
}

#[derive(Debug)]
pub(crate) struct Reject(pub StatusCode, pub String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub(crate) fn token_hash(token: &str) -> Hash32 {
    Hash32::digest(token.as_bytes())
}

/// Admin routes: open mode, or an admin bearer token. Gives who is acting, for the records
/// of admin changes (`admin-token:` and the token's id, never the token).
pub(crate) fn admin(st: &Shared, headers: &HeaderMap) -> Result<String, Reject> {
    if st.open {
        return Ok("none (open mode, loopback)".into());
    }
    match bearer(headers) {
        Some(t) if st.admin_tokens.contains(&token_hash(t)) => {
            Ok(format!("admin-token:{}", token_id(&token_hash(t))))
        }
        Some(_) => Err(Reject(StatusCode::FORBIDDEN, "not an admin token".into())),
        None => Err(Reject(
            StatusCode::UNAUTHORIZED,
            "this route needs Authorization: Bearer <admin token>".into(),
        )),
    }
}

/// A checked `/actions` request.
struct ActionRequest {
    actor: String,
    action: String,
    resource: String,
    context: Option<Map>,
    request_id: Option<String>,
    /// A capability token presented for this action.
    capability: Option<String>,
}

pub(crate) fn name_ok(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("`{field}` must not be empty"));
    }
    // Characters, as JSON Schema's maxLength counts them (docs/schema).
    if s.chars().count() > max {
        return Err(format!("`{field}` is longer than {max} characters"));
    }
    invisible_free(field, s)
}

/// Names and resources hold no character a terminal acts on or that hides or reorders text
/// (`zt_core::text::needs_escape`: controls, bidi and other format characters, line and
/// paragraph separators), as `docs/schema/action-request.schema.json`'s `visible` says: a
/// record shown to an auditor reads as what was asked.
fn invisible_free(field: &str, s: &str) -> Result<(), String> {
    match s.chars().find(|c| zt_core::text::needs_escape(*c)) {
        Some(c) if c.is_control() => Err(format!(
            "`{field}` contains a control character (U+{:04X})",
            u32::from(c)
        )),
        Some(c) => Err(format!(
            "`{field}` contains an invisible or text-reordering character (U+{:04X})",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// A resource (empty allowed): the rule of `/actions` and `/capabilities` alike, and of
/// `docs/schema/action-request.schema.json`.
pub(crate) fn resource_ok(resource: &str) -> Result<(), String> {
    if resource.chars().count() > MAX_RESOURCE {
        return Err(format!(
            "`resource` is longer than {MAX_RESOURCE} characters"
        ));
    }
    invisible_free("resource", resource)
}

fn parse_action(body: &[u8]) -> Result<ActionRequest, String> {
    let v = json::parse(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let Value::Object(m) = v else {
        return Err(format!(
            "request body is a JSON {}, not an object",
            v.type_name()
        ));
    };
    let mut req = ActionRequest {
        actor: String::new(),
        action: String::new(),
        resource: String::new(),
        context: None,
        request_id: None,
        capability: None,
    };
    for (k, v) in m.iter() {
        let s = || {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`{k}` must be a string, found {}", v.type_name()))
        };
        match k {
            "actor" => req.actor = s()?,
            "action" => req.action = s()?,
            "resource" => match v {
                Value::Null => {}
                _ => req.resource = s()?,
            },
            "request_id" => req.request_id = Some(s()?),
            "capability" => match v {
                Value::Null => {}
                _ => req.capability = Some(s()?),
            },
            "context" => match v {
                Value::Object(c) => {
                    if let Some(k) = policy::RESERVED_CONTEXT.iter().find(|k| c.contains_key(k)) {
                        return Err(format!(
                            "context member `{k}` is the control plane's own (it sets it for policies to rely on): an agent may not send it"
                        ));
                    }
                    // Sealed, the context is written in RFC 8785 form: a number whose form is
                    // an integer no double holds (2^64 is 18446744073709552000) would make a
                    // record its verifiers refuse.
                    if let Some((path, n)) = json::first_inexact_number(v) {
                        let mut text = Vec::new();
                        json::write_number(n, &mut text);
                        return Err(format!(
                            "`context.{}` is {}, whose RFC 8785 form is an integer no double holds exactly: readers would disagree on it; send it as a string",
                            zt_core::envelope::shorten(&path),
                            String::from_utf8_lossy(&text)
                        ));
                    }
                    req.context = Some(c.clone());
                }
                Value::Null => {}
                other => {
                    return Err(format!(
                        "`context` must be an object, found {}",
                        other.type_name()
                    ))
                }
            },
            other => {
                return Err(format!(
                    "unknown member `{}`",
                    zt_core::envelope::shorten(other)
                ))
            }
        }
    }
    name_ok("actor", &req.actor, MAX_NAME)?;
    name_ok("action", &req.action, MAX_NAME)?;
    resource_ok(&req.resource)?;
    if let Some(r) = &req.request_id {
        name_ok("request_id", r, MAX_NAME)?;
    }
    Ok(req)
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use rand_core::RngCore;
    let mut b = vec![0u8; bytes];
    rand_core::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The answer: the lineage's shape, the envelope's other members under `audit`.
fn answer(committed: &Committed) -> Result<(bool, Vec<u8>), String> {
    let Value::Object(env) = json::parse(committed.json.as_bytes()).map_err(|e| e.to_string())?
    else {
        return Err("sealed envelope is not an object".into());
    };
    let allow = env.get("decision").and_then(Value::as_str) == Some("allow");
    Ok((allow, zt_core::envelope::lineage_answer(&env)))
}

/// How the asker authenticated, as Cedar sees it in `context.identity` (a member no agent may
/// write): `{kind: "svid", spiffe_id, trust_domain}`, `{kind: "token"}`, or `{kind: "open"}`,
/// so a policy can ask for an SVID, or an SVID of one trust domain.
fn cedar_identity(peer: Option<&PeerIdentity>, open: bool) -> Value {
    let mut m = Map::new();
    let s = |x: &str| Value::String(x.to_owned());
    match peer {
        Some(PeerIdentity::Spiffe(id)) => {
            m.push("kind".into(), s("svid"));
            m.push("spiffe_id".into(), s(id.as_str()));
            m.push("trust_domain".into(), s(id.trust_domain()));
        }
        _ if open => m.push("kind".into(), s("open")),
        _ => m.push("kind".into(), s("token")),
    }
    Value::Object(m)
}

/// Who is asking when the connection presented a client certificate: (identity, refusal,
/// status), as for a token; `None` without one (tokens decide). An SVID outranks any token.
fn svid_asker(
    registry: &Registry,
    peer: Option<&PeerIdentity>,
    actor: &str,
) -> Option<(String, Option<String>, StatusCode)> {
    match peer? {
        PeerIdentity::Anonymous => None,
        PeerIdentity::Spiffe(id) => Some(match registry.spiffe_actor(id.as_str()) {
            Some(a) if a == actor => (id.to_string(), None, StatusCode::FORBIDDEN),
            Some(a) => (
                id.to_string(),
                Some(format!(
                    "SVID {id} speaks for agent {a}, not {actor}: actor mismatch"
                )),
                StatusCode::FORBIDDEN,
            ),
            None => (
                id.to_string(),
                Some(format!("SVID {id} is bound to no agent")),
                StatusCode::FORBIDDEN,
            ),
        }),
        PeerIdentity::Refused(why) => Some((
            "unauthenticated".to_owned(),
            Some(format!("client certificate refused: {why}")),
            StatusCode::UNAUTHORIZED,
        )),
    }
}

pub(crate) use zt_store::now_ms;

pub(crate) fn rfc3339_ms(ms: i64) -> String {
    Timestamp::from_unix_millis(ms).to_rfc3339_millis()
}

fn json_ok(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// 429: past `key`'s rate limit; counted, not sealed (the summary of the window records it).
pub(crate) fn limited(key: &Key, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let who = key.who();
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit of {who} reached: no decision; this refusal is counted in the next sealed rate-limit summary; retry after {secs} s"
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Reads an `/actions` body up to `limit` bytes (413 past it, 400 when it breaks off).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over the {limit}-byte limit"),
            )
        } else {
            error(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
        }
    })
}

/// Who is asking and whether that already refuses the request: (identity, refusal, status
/// of a deny).
fn authenticate(auth: &Auth, claimed: &str, open: bool) -> (String, Option<String>, StatusCode) {
    let identity = auth.identity(open);
    let (refusal, status) = match auth {
        Auth::Agent(a) if a == claimed => (None, StatusCode::FORBIDDEN),
        Auth::Agent(a) => (
            Some(format!(
                "token speaks for agent {a}, not {claimed}: actor mismatch"
            )),
            StatusCode::FORBIDDEN,
        ),
        Auth::Expired { actor, at_ms } => (
            Some(format!(
                "token expired at {}: it no longer authenticates agent {actor} (an admin rotates it: POST /agents/{actor}/token)",
                rfc3339_ms(*at_ms)
            )),
            StatusCode::UNAUTHORIZED,
        ),
        Auth::Retired {
            actor,
            why: Retired::Rotated,
            at,
        } => (
            Some(format!(
                "token was rotated at {at}: it no longer authenticates agent {actor}"
            )),
            StatusCode::UNAUTHORIZED,
        ),
        Auth::Retired {
            actor,
            why: Retired::Revoked,
            at,
        } => (
            Some(format!(
                "agent {actor} was revoked at {at}: its token no longer authenticates"
            )),
            StatusCode::UNAUTHORIZED,
        ),
        Auth::Unknown => (
            Some("bearer token is not valid".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        Auth::Missing if open => (None, StatusCode::FORBIDDEN),
        Auth::Missing => (
            Some("no bearer token: an agent must authenticate as its actor".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
    };
    (identity, refusal, status)
}

async fn actions(State(st): St, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let token = bearer(&parts.headers).map(str::to_owned);
    // The verified peer certificate's identity (zt-tls, this connection): never a header.
    let peer = parts.extensions.get::<PeerIdentity>().cloned();
    // The rate limit first, on what the connection and the headers say, before the body is
    // read: a refused request costs a hash and a map lookup. An SVID's agent is limited as
    // that agent. In open mode a request without a token is limited by the actor it names,
    // so its body is read first.
    let early = {
        let registry = st.registry.read().await;
        match peer.as_ref() {
            Some(PeerIdentity::Spiffe(id)) => Some(
                registry
                    .spiffe_actor(id.as_str())
                    .map_or(Key::Unauthenticated, |a| Key::Actor(a.to_owned())),
            ),
            Some(PeerIdentity::Refused(_)) => Some(Key::Unauthenticated),
            Some(PeerIdentity::Anonymous) | None => {
                match registry.classify(token.as_deref(), now_ms()) {
                    Auth::Agent(a) => Some(Key::Actor(a)),
                    Auth::Missing if st.open => None,
                    _ => Some(Key::Unauthenticated),
                }
            }
        }
    };
    if let Some(key) = &early {
        if let Err(wait) = st.limiter.check(key, source) {
            return limited(key, wait);
        }
    }
    let bytes = match read_body(body, st.body_limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = match parse_action(&bytes) {
        Ok(r) => r,
        Err(e) => {
            st.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    if early.is_none() {
        let key = if st.registry.read().await.is_active(&req.actor) {
            Key::Actor(req.actor.clone())
        } else {
            Key::Unauthenticated
        };
        if let Err(wait) = st.limiter.check(&key, source) {
            return limited(&key, wait);
        }
    }
    let engine = Arc::clone(&read(&st.engine));
    let unauthenticated = early.as_ref().is_some_and(|k| *k == Key::Unauthenticated);
    // Decided and queued under the registry's read lock: a rotation or revocation (which
    // holds the write lock until its record is sealed) is before or after this decision on
    // the chain, never beside it.
    let (pending, status, used) = {
        let registry = st.registry.read().await;
        let auth = registry.classify(token.as_deref(), now_ms());
        let (identity, refusal, status) = authenticate(&auth, &req.actor, st.open);
        // An SVID outranks the token: the connection's identity decides.
        let (identity, refusal, status) =
            svid_asker(&registry, peer.as_ref(), &req.actor).unwrap_or((identity, refusal, status));
        let asker = cedar_identity(peer.as_ref(), st.open && token.is_none());
        // An unauthenticated refusal within the rate limit still gives way to agents: it
        // takes a place in the writer's queue only while half of it is free.
        if unauthenticated && status == StatusCode::UNAUTHORIZED && !st.chain.half_free() {
            drop(registry);
            st.limiter.refuse(&Key::Unauthenticated, source);
            return limited(&Key::Unauthenticated, Duration::from_secs(1));
        }
        let caps = st.caps.read().await;
        let mut used = None;
        let (allow, reason, policy_ids) = if let Some(r) = refusal {
            (false, r, Vec::new())
        } else if !registry.is_active(&req.actor) {
            let why = match registry.revoked_at(&req.actor) {
                Some(at) => format!("agent {} was revoked at {at}", req.actor),
                None => "agent is not registered".to_owned(),
            };
            (false, why, Vec::new())
        } else if req.action.starts_with("zt.") {
            (
                false,
                "actions under `zt.` are the control plane's own records; no agent may ask for one"
                    .to_owned(),
                Vec::new(),
            )
        } else if let Some(token) = &req.capability {
            // The capability checks out, then Cedar decides again, at use.
            match capabilities::check_use(&st, &caps, token, &req.actor, &req.action, &req.resource)
            {
                Ok(u) => {
                    let mut cedar = u.cedar_context(req.context.as_ref());
                    cedar.push("identity".into(), asker.clone());
                    let v = engine.decide(&req.actor, &req.action, &req.resource, Some(&cedar));
                    used = Some(u);
                    (v.allow, v.reason, v.policy_ids)
                }
                Err(why) => (false, why.to_string(), Vec::new()),
            }
        } else {
            let mut cedar = req.context.clone().unwrap_or_default();
            cedar.push("identity".into(), asker.clone());
            let v = engine.decide(&req.actor, &req.action, &req.resource, Some(&cedar));
            (v.allow, v.reason, v.policy_ids)
        };
        let mut ctx = Map::new();
        let s = |x: &str| Value::String(x.to_owned());
        let request_id = req
            .request_id
            .clone()
            .unwrap_or_else(|| format!("req-{}", random_hex(12)));
        ctx.push("request_id".into(), s(&request_id));
        ctx.push("identity".into(), s(&identity));
        if !policy_ids.is_empty() {
            ctx.push("policy_id".into(), s(&policy_ids.join(",")));
        }
        ctx.push("policy_version".into(), s(engine.version()));
        ctx.push("broker".into(), s(&st.broker));
        if let Some(c) = req.context {
            ctx.push("request".into(), Value::Object(c));
        }
        match (&used, &req.capability) {
            (Some(u), _) => ctx.push("capability".into(), u.record_value()),
            (None, Some(t)) => {
                // Refused: the id it claims, if it reads as a token at all.
                let mut c = Map::new();
                if let Some(id) = zt_core::capability::claimed_id(t) {
                    c.push("claimed_id".into(), Value::String(id));
                }
                ctx.push("capability".into(), Value::Object(c));
            }
            (None, None) => {}
        }
        let used = used.map(|u| CapabilityUse {
            capability: u.cap.id,
            actor: req.actor.clone(),
            resource: req.resource.clone(),
            grants: Some(u.cap.grants),
        });
        let decided = Decided {
            lane: Lane::Decisions,
            actor: req.actor,
            action: req.action,
            resource: req.resource,
            allow,
            reason,
            context: ctx,
        };
        let pending = st.chain.enqueue(decided);
        drop(caps);
        (pending, status, used)
    };
    let committed = match pending {
        Ok(p) => p.committed().await,
        Err(e) => Err(e),
    };
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            st.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no decision: {e}; nothing is allowed"),
            );
            if matches!(e, SealError::Busy) {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return r;
        }
    };
    let answered = answer(&committed);
    if let (Some(u), Ok((true, _))) = (&used, &answered) {
        // What the broker's execution report will name; without it the report could not be
        // linked, so the allow is not given out.
        if let Err(e) = capabilities::remember_use(&st, &committed.current_hash, u) {
            st.metrics.unavailable.fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no decision: the allow under capability {} is on record but state.db could not keep it ({e}); nothing is allowed, retry", u.capability),
            );
        }
    }
    match answered {
        Ok((true, body)) => {
            st.metrics.allowed.fetch_add(1, Ordering::Relaxed);
            json_ok(StatusCode::OK, body)
        }
        Ok((false, body)) => {
            st.metrics.denied.fetch_add(1, Ordering::Relaxed);
            json_ok(status, body)
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("no decision: {e}")),
    }
}

fn policies_json(engine: &PolicyEngine) -> serde_json::Value {
    serde_json::json!({
        "version": engine.version(),
        "policies": engine.entries().iter().map(|e| serde_json::json!({"id": e.id, "text": e.text})).collect::<Vec<_>>(),
    })
}

/// Applies `entries` (after the current ones) or answers why not.
fn apply(st: &Shared, added: Vec<PolicyEntry>) -> Result<Arc<PolicyEngine>, Reject> {
    let mut engine_slot = write(&st.engine);
    let mut all = engine_slot.entries().to_vec();
    for e in &added {
        if all.iter().any(|x| x.id == e.id) {
            return Err(Reject(
                StatusCode::CONFLICT,
                format!(
                    "policy id {} is already in the set (DELETE /policies/{} first)",
                    e.id, e.id
                ),
            ));
        }
        all.push(e.clone());
    }
    set_engine(st, &mut engine_slot, all)
}

fn set_engine(
    st: &Shared,
    slot: &mut Arc<PolicyEngine>,
    entries: Vec<PolicyEntry>,
) -> Result<Arc<PolicyEngine>, Reject> {
    let engine =
        PolicyEngine::new(entries).map_err(|e| Reject(StatusCode::BAD_REQUEST, e.to_string()))?;
    st.state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set_policies(engine.entries(), engine.version())
        .map_err(|e| Reject(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let engine = Arc::new(engine);
    *slot = Arc::clone(&engine);
    Ok(engine)
}

async fn add_policies(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    // Cedar text needs the custom header, so a cross-site form cannot post a policy.
    let is_json = match admin_body(&headers) {
        Ok(b) => b == AdminBody::Json,
        Err(r) => return r.into_response(),
    };
    let fresh = || format!("policy-{}", st.next_policy.fetch_add(1, Ordering::Relaxed));
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "policy body is not UTF-8");
    };
    let parsed = if is_json {
        // The one strict reader every route uses: duplicates, lone surrogates and integers no
        // double holds are refused here as in `/actions`.
        let m = match json::parse(text.as_bytes()) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "request body is a JSON {}, not an object",
                        other.type_name()
                    ),
                )
            }
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("request body is not JSON: {e}"),
                )
            }
        };
        let allowed: &[&str] = if m.contains_key("cedar") {
            &["cedar"]
        } else {
            &["action", "resource", "actor", "reason", "id"]
        };
        if let Some((k, _)) = m.iter().find(|(k, _)| !allowed.contains(k)) {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown member `{}` (expected {})",
                    zt_core::envelope::shorten(k),
                    allowed.join(", ")
                ),
            );
        }
        let mut fields: HashMap<&str, String> = HashMap::new();
        for (k, v) in m.iter() {
            let Some(s) = v.as_str() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`{k}` must be a string, found {}", v.type_name()),
                );
            };
            // Names go into Cedar text and records: no control character (NUL included).
            if k != "cedar" && k != "reason" {
                if let Err(e) = name_ok(
                    k,
                    s,
                    if k == "resource" {
                        MAX_RESOURCE
                    } else {
                        MAX_NAME
                    },
                ) {
                    if k != "resource" || !s.is_empty() {
                        return error(StatusCode::BAD_REQUEST, e);
                    }
                }
            }
            fields.insert(k, s.to_owned());
        }
        if let Some(cedar) = fields.remove("cedar") {
            policy::parse_cedar(&cedar, fresh)
        } else {
            let Some(action) = fields.remove("action") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected {\"cedar\": \"...\"} or a narrow rule {\"action\", \"resource\"?, \"actor\"?, \"reason\"?}",
                );
            };
            let rule = NarrowRule {
                action,
                resource: fields.remove("resource"),
                actor: fields.remove("actor"),
                reason: fields.remove("reason"),
            };
            let id = fields.remove("id").unwrap_or_else(fresh);
            policy::narrow_rule(&rule, &id).map(|e| vec![e])
        }
    } else {
        policy::parse_cedar(text, fresh)
    };
    let added = match parsed {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let ids: Vec<String> = added.iter().map(|e| e.id.clone()).collect();
    match apply(&st, added) {
        Ok(engine) => {
            let mut v = policies_json(&engine);
            v["ok"] = true.into();
            v["added"] = ids.into();
            json_response(StatusCode::CREATED, v)
        }
        Err(r) => r.into_response(),
    }
}

async fn get_policies(
    State(st): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    if let Some(version) = q.get("version") {
        let text = st
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .version_text(version);
        return match text {
            Ok(Some(t)) => {
                let policies: serde_json::Value =
                    serde_json::from_str(&t).unwrap_or(serde_json::Value::Null);
                json_response(
                    StatusCode::OK,
                    serde_json::json!({"version": version, "policies": policies}),
                )
            }
            Ok(None) => error(
                StatusCode::NOT_FOUND,
                format!("no policy set {version} on record"),
            ),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
    }
    json_response(StatusCode::OK, policies_json(&read(&st.engine)))
}

async fn remove_policy(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    let mut slot = write(&st.engine);
    let before = slot.entries().len();
    let rest: Vec<PolicyEntry> = slot
        .entries()
        .iter()
        .filter(|e| e.id != id)
        .cloned()
        .collect();
    if rest.len() == before {
        return error(StatusCode::NOT_FOUND, format!("no policy {id}"));
    }
    match set_engine(&st, &mut slot, rest) {
        Ok(engine) => {
            let mut v = policies_json(&engine);
            v["ok"] = true.into();
            json_response(StatusCode::OK, v)
        }
        Err(r) => r.into_response(),
    }
}

async fn keyring(State(st): St) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        st.keyring_json.clone(),
    )
        .into_response()
}

async fn metrics(State(st): St) -> Response {
    let m = &st.metrics;
    let mut body = format!(
        "# TYPE zt_cp_decisions_total counter\n\
         zt_cp_decisions_total{{decision=\"allow\"}} {}\n\
         zt_cp_decisions_total{{decision=\"deny\"}} {}\n\
         # TYPE zt_cp_unavailable_total counter\nzt_cp_unavailable_total {}\n\
         # TYPE zt_cp_bad_requests_total counter\nzt_cp_bad_requests_total {}\n\
         # TYPE zt_cp_rate_limited_total counter\n\
         zt_cp_rate_limited_total{{limit=\"unauthenticated\"}} {}\n\
         zt_cp_rate_limited_total{{limit=\"actor\"}} {}\n\
         # TYPE zt_cp_rate_summaries_total counter\nzt_cp_rate_summaries_total {}\n\
         # TYPE zt_cp_refused_origin_total counter\nzt_cp_refused_origin_total {}\n",
        m.allowed.load(Ordering::Relaxed),
        m.denied.load(Ordering::Relaxed),
        m.unavailable.load(Ordering::Relaxed),
        m.bad_requests.load(Ordering::Relaxed),
        st.limiter.refused_unauthenticated.load(Ordering::Relaxed),
        st.limiter.refused_actor.load(Ordering::Relaxed),
        st.limiter.summaries.load(Ordering::Relaxed),
        m.refused_origin.load(Ordering::Relaxed),
    );
    body.push_str(&st.connections.render_metrics());
    if let Some(tls) = &st.tls {
        body.push_str(&tls.render_metrics());
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_member_by_member() {
        let ok = parse_action(
            br#"{"actor":"a","action":"x.y","resource":"r","context":{"k":1},"request_id":"q"}"#,
        )
        .unwrap();
        assert_eq!((ok.actor.as_str(), ok.resource.as_str()), ("a", "r"));
        for (body, needle) in [
            (
                &br#"{"actor":"a","action":"x","actor":"b"}"#[..],
                "duplicate",
            ),
            (br#"{"actor":"a"}"#, "`action` must not be empty"),
            (br#"{"actor":7,"action":"x"}"#, "`actor` must be a string"),
            (
                br#"{"actor":"a","action":"x","sudo":true}"#,
                "unknown member `sudo`",
            ),
            (
                br#"{"actor":"a","action":"x","context":[1]}"#,
                "`context` must be an object",
            ),
            (
                br#"{"actor":"a","action":"x","context":{"n":9007199254740993}}"#,
                "no double holds exactly",
            ),
            (
                br#"{"actor":"a","action":"x","context":{"big":[18446744073709551616]}}"#,
                "`context.big[0]` is 18446744073709552000",
            ),
            (br#"[1]"#, "not an object"),
            (br#"{"actor":"a\u0000","action":"x"}"#, "control character"),
            (b"{", "not JSON"),
        ] {
            let err = parse_action(body).err().unwrap();
            assert!(
                err.contains(needle),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
