//! The HTTP API (axum).
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /actions` | agents | decide `{actor, action, resource?, context?, request_id?}`: 200 allow, 403 deny, 401 unauthenticated deny; the lineage's answer shape `{ok, actor, action, resource, decision, reason, audit: {...}}` |
//! | `POST /agents` | admin | register `{actor, spiffe_id?}`: 201 `{actor, token}` (the token is shown once); `spiffe_id` binds the agent to an X.509-SVID's SPIFFE ID |
//! | `GET /agents` | admin | registered actors |
//! | `POST /policies` | admin | add Cedar text (`text/plain`, or `{"cedar": "..."}`) or a narrow allow rule `{action, resource?, actor?, reason?}`: 201 |
//! | `GET /policies` | admin | the set and its version; `?version=sha256:...` gives an earlier set |
//! | `DELETE /policies/{id}` | admin | remove one policy |
//! | `GET /keyring.json` | anyone | the control plane's public key as a zt-audit keyring |
//! | `GET /healthz`, `GET /metrics` | anyone | liveness; Prometheus counters |
//!
//! "admin" means `Authorization: Bearer <admin token>`; in open mode (loopback only, for the
//! quickstart) no token is needed anywhere, but an agent token that is presented still binds.
//! Every `/actions` request with a readable body is decided and audited, the refused ones too:
//! a token that speaks for another actor, no token, an unregistered actor.
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

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use zt_core::json::{self, Map, Value};
use zt_core::Hash32;
use zt_tls::{PeerIdentity, SpiffeId, TlsServer};

use crate::chain::{ChainHandle, Committed, Decided};
use crate::error::{ControlPlaneError, SealError};
use crate::policy::{self, NarrowRule, PolicyEngine, PolicyEntry};
use crate::state;

/// Longest actor, action or request id accepted, in bytes.
pub const MAX_NAME: usize = 256;
/// Longest resource accepted, in bytes.
pub const MAX_RESOURCE: usize = 2048;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: AtomicU64,
    denied: AtomicU64,
    unavailable: AtomicU64,
    bad_requests: AtomicU64,
}

pub(crate) struct Shared {
    pub engine: RwLock<Arc<PolicyEngine>>,
    /// actor -> token hash
    pub agents: RwLock<HashMap<String, Hash32>>,
    /// token hash -> actor
    pub tokens: RwLock<HashMap<Hash32, String>>,
    /// SPIFFE ID -> actor
    pub spiffe: RwLock<HashMap<String, String>>,
    /// TLS, for its counters on `/metrics`.
    pub tls: Option<Arc<TlsServer>>,
    pub state: Mutex<state::State>,
    pub chain: ChainHandle,
    pub open: bool,
    pub admin_tokens: Vec<Hash32>,
    pub keyring_json: String,
    pub metrics: Metrics,
    pub next_policy: AtomicU64,
    pub broker: String,
}

type St = State<Arc<Shared>>;

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
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
    Router::new()
        .route("/actions", post(actions))
        .route("/agents", post(register).get(list_agents))
        .route("/policies", post(add_policies).get(get_policies))
        .route("/policies/{id}", delete(remove_policy))
        .route("/keyring.json", get(keyring))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1024))
        .with_state(shared)
}

/// Runs `app` on `listener` until `shutdown`, over TLS when `tls` is given.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<TlsServer>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        Some(tls) => zt_tls::serve(listener, app, tls, shutdown).await,
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(
        status,
        serde_json::json!({"ok": false, "error": message.into()}),
    )
}

/// A refusal with its status, rendered as `{ok: false, error}`.
#[derive(Debug)]
pub(crate) struct Reject(StatusCode, String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn token_hash(token: &str) -> Hash32 {
    Hash32::digest(token.as_bytes())
}

/// Admin routes: open mode, or an admin bearer token.
fn admin(st: &Shared, headers: &HeaderMap) -> Result<(), Reject> {
    if st.open {
        return Ok(());
    }
    match bearer(headers) {
        Some(t) if st.admin_tokens.contains(&token_hash(t)) => Ok(()),
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
}

fn name_ok(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("`{field}` must not be empty"));
    }
    if s.len() > max {
        return Err(format!("`{field}` is longer than {max} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("`{field}` contains a control character"));
    }
    Ok(())
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
            "context" => match v {
                Value::Object(c) => req.context = Some(c.clone()),
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
    if req.resource.len() > MAX_RESOURCE {
        return Err(format!("`resource` is longer than {MAX_RESOURCE} bytes"));
    }
    if req.resource.chars().any(char::is_control) {
        return Err("`resource` contains a control character".into());
    }
    if let Some(r) = &req.request_id {
        name_ok("request_id", r, MAX_NAME)?;
    }
    Ok(req)
}

fn random_hex(bytes: usize) -> String {
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
    const TOP: [&str; 5] = ["actor", "action", "resource", "decision", "reason"];
    let ok = Value::Bool(true);
    let mut top: Vec<(&str, &Value)> = vec![("ok", &ok)];
    let mut audit = Map::new();
    for (k, v) in env.iter() {
        if TOP.contains(&k) {
            top.push((k, v));
        } else {
            audit.push(k.to_owned(), v.clone());
        }
    }
    let allow = env.get("decision").and_then(Value::as_str) == Some("allow");
    let audit = Value::Object(audit);
    top.push(("audit", &audit));
    let mut out = Vec::with_capacity(committed.json.len() + 32);
    json::write_ordered_object(&top, &mut out);
    Ok((allow, out))
}

/// Who is asking when the connection presented a client certificate: (identity, refusal,
/// status), as for a token; `None` without one (tokens decide).
fn svid_asker(
    st: &Shared,
    peer: Option<&PeerIdentity>,
    actor: &str,
) -> Option<(String, Option<String>, StatusCode)> {
    match peer? {
        PeerIdentity::Anonymous => None,
        PeerIdentity::Spiffe(id) => Some(match read(&st.spiffe).get(id.as_str()) {
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

async fn actions(
    State(st): St,
    peer: Option<Extension<PeerIdentity>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match parse_action(&body) {
        Ok(r) => r,
        Err(e) => {
            st.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    // Who is asking: the token's actor, whatever the body claims.
    let (identity, refusal, status) = match bearer(&headers) {
        Some(t) => match read(&st.tokens).get(&token_hash(t)).cloned() {
            Some(a) if a == req.actor => (format!("agent-token:{a}"), None, StatusCode::FORBIDDEN),
            Some(a) => (
                format!("agent-token:{a}"),
                Some(format!(
                    "token speaks for agent {a}, not {}: actor mismatch",
                    req.actor
                )),
                StatusCode::FORBIDDEN,
            ),
            None => (
                "unauthenticated".to_owned(),
                Some("bearer token is not valid".to_owned()),
                StatusCode::UNAUTHORIZED,
            ),
        },
        None if st.open => (
            "none (open mode, loopback)".to_owned(),
            None,
            StatusCode::FORBIDDEN,
        ),
        None => (
            "unauthenticated".to_owned(),
            Some("no bearer token: an agent must authenticate as its actor".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
    };
    // An SVID outranks the token: the connection's identity decides.
    let (identity, refusal, status) =
        svid_asker(&st, peer.as_ref().map(|Extension(p)| p), &req.actor)
            .unwrap_or((identity, refusal, status));
    let engine = Arc::clone(&read(&st.engine));
    let (allow, reason, policy_ids) = if let Some(r) = refusal {
        (false, r, Vec::new())
    } else if !read(&st.agents).contains_key(&req.actor) {
        (false, "agent is not registered".to_owned(), Vec::new())
    } else {
        let v = engine.decide(&req.actor, &req.action, &req.resource, req.context.as_ref());
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
    let decided = Decided {
        actor: req.actor,
        action: req.action,
        resource: req.resource,
        allow,
        reason,
        context: ctx,
    };
    let committed = match st.chain.append(decided).await {
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
    match answer(&committed) {
        Ok((true, body)) => {
            st.metrics.allowed.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
        Ok((false, body)) => {
            st.metrics.denied.fetch_add(1, Ordering::Relaxed);
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
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("no decision: {e}")),
    }
}

async fn register(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    let (actor, spiffe_id) = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => match v.get("actor").and_then(serde_json::Value::as_str) {
            Some(a) => match spiffe_member(&v) {
                Ok(id) => (a.to_owned(), id),
                Err(r) => return r.into_response(),
            },
            None => return error(StatusCode::BAD_REQUEST, "expected {\"actor\": \"NAME\"}"),
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("request body is not JSON: {e}"),
            )
        }
    };
    if let Err(e) = name_ok("actor", &actor, MAX_NAME) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let token = format!("ztcp_{}", random_hex(24));
    let h = token_hash(&token);
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_agent(&actor, &h, spiffe_id.as_ref().map(SpiffeId::as_str));
    match stored {
        Ok(()) => {}
        Err(ControlPlaneError::AgentExists(a)) => {
            return error(
                StatusCode::CONFLICT,
                format!("agent {a} is already registered"),
            )
        }
        Err(e @ ControlPlaneError::SpiffeIdBound { .. }) => {
            return error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    write(&st.agents).insert(actor.clone(), h);
    write(&st.tokens).insert(h, actor.clone());
    if let Some(id) = spiffe_id {
        write(&st.spiffe).insert(id.to_string(), actor.clone());
    }
    json_response(
        StatusCode::CREATED,
        serde_json::json!({"ok": true, "actor": actor, "token": token}),
    )
}

/// The optional `spiffe_id` of a registration, checked as the SPIFFE ID specification says.
fn spiffe_member(v: &serde_json::Value) -> Result<Option<SpiffeId>, Reject> {
    match v.get("spiffe_id") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => SpiffeId::parse(s).map(Some).map_err(|e| {
            Reject(
                StatusCode::BAD_REQUEST,
                format!("`spiffe_id` is not a workload's SPIFFE ID: {e}"),
            )
        }),
        Some(_) => Err(Reject(
            StatusCode::BAD_REQUEST,
            "`spiffe_id` must be a string".into(),
        )),
    }
}

async fn list_agents(State(st): St, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    let mut actors: Vec<String> = read(&st.agents).keys().cloned().collect();
    actors.sort();
    json_response(StatusCode::OK, serde_json::json!({"agents": actors}))
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
    let fresh = || format!("policy-{}", st.next_policy.fetch_add(1, Ordering::Relaxed));
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "policy body is not UTF-8");
    };
    let parsed = if is_json {
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("request body is not JSON: {e}"),
                )
            }
        };
        if let Some(cedar) = v.get("cedar").and_then(serde_json::Value::as_str) {
            policy::parse_cedar(cedar, fresh)
        } else {
            let field = |k: &str| {
                v.get(k)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let Some(action) = field("action") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "expected {\"cedar\": \"...\"} or a narrow rule {\"action\", \"resource\"?, \"actor\"?, \"reason\"?}",
                );
            };
            if let Some(obj) = v.as_object() {
                if let Some(k) = obj.keys().find(|k| {
                    !["action", "resource", "actor", "reason", "id"].contains(&k.as_str())
                }) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("unknown member `{k}` in a narrow rule"),
                    );
                }
            }
            let rule = NarrowRule {
                action,
                resource: field("resource"),
                actor: field("actor"),
                reason: field("reason"),
            };
            let id = field("id").unwrap_or_else(fresh);
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
         # TYPE zt_cp_bad_requests_total counter\nzt_cp_bad_requests_total {}\n",
        m.allowed.load(Ordering::Relaxed),
        m.denied.load(Ordering::Relaxed),
        m.unavailable.load(Ordering::Relaxed),
        m.bad_requests.load(Ordering::Relaxed),
    );
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
