//! Capabilities: issued under policy, checked at use, revocable, and the execution reports of
//! the brokers that ran commands under them. The token format and its rules are
//! `zt_core::capability`'s; this module is who may do what with them, and their records.
//!
//! - `POST /capabilities` (admin): Cedar decides the issuance with the principal, action and
//!   resource of the action itself and `{"issuance": true, "grants": {...}}` as context; the
//!   issuance is a sealed decision on the decision chain (allowed or not), and only an allowed,
//!   recorded one gives a token (link 0 signed with the control plane's key).
//! - `DELETE /capabilities/{id}` (admin): a sealed record on the control plane's own chain,
//!   sealed before the revocation takes effect, under the capabilities' write lock.
//! - `GET /capabilities/{id}`: the state a broker watches (the agent the capability is bound
//!   to, a registered broker, or an admin): 200 active, 410 revoked or expired, the body
//!   [`zt_core::capability::standing::Standing::status_value`].
//! - Use: `POST /actions` with `"capability"` (see [`check_use`]).
//! - `POST /executions`: a registered broker's signed report
//!   (`zt_core::capability::report`), sealed on the decision chain as `zt.broker.execution`
//!   with the report and the broker's attestation in its context. It is an allow (201) only
//!   when the broker's signature verifies under its registered key, the report names an
//!   allow made here for that agent under that capability, the grants (the sandbox among
//!   them) are the ones that allow sealed, and no other attested record used that allow up.
//!   Anything else is still sealed, as a deny that says why: a broker's report that fails a
//!   check (409), and any report filed with an agent's own credentials, which is the agent's
//!   word about itself (403). Rate-limited per agent and per broker, like `/actions`.

use std::collections::HashMap;
use std::sync::PoisonError;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use zt_core::capability::report::{Attestation, BrokerKey, ExecutionReport};
use zt_core::capability::standing::{self, Held, Standing, State as CapState, UseRefusal};
use zt_core::capability::{self, Capability, Grants, Issue, EXECUTION_ACTION};
use zt_core::json::{self, Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_tls::PeerIdentity;

use crate::agents::{unrecorded, Auth};
use crate::chain::{Committed, Decided, Lane};
use crate::db::{CapabilityUse, Claim};
use crate::limits::Key;
use crate::origin::admin_body;
use crate::server::{
    admin, bearer, error, json_response, limited, name_ok, now_ms, random_hex, read, resource_ok,
    Reject, Shared, St, MAX_NAME,
};

/// Longest capability lifetime (`ttl_s`): one day. A capability is for one action.
pub const MAX_CAPABILITY_TTL_S: u64 = 24 * 3600;

/// Largest execution report, in bytes.
pub const MAX_REPORT: usize = 64 * 1024;

/// The issued capabilities: whom each is bound to, its expiry, its revocation.
#[derive(Debug, Default)]
pub(crate) struct Capabilities {
    held: HashMap<String, Held>,
}

impl Capabilities {
    pub(crate) fn load(stored: Vec<(String, Held)>) -> Self {
        Self {
            held: stored.into_iter().collect(),
        }
    }

    pub(crate) fn standing(&self, id: &str, now: Timestamp) -> Standing {
        Standing::of(self.held.get(id), now)
    }

    fn actor_of(&self, id: &str) -> Option<&str> {
        self.held.get(id).map(|h| h.actor.as_str())
    }
}

/// The capability part of a use's record and Cedar context.
fn cap_value(cap: &Capability) -> Value {
    let s = |x: &str| Value::String(x.to_owned());
    let mut m = Map::new();
    m.push("id".into(), s(&cap.id));
    m.push("grants".into(), cap.grants.to_value());
    m.push("not_after".into(), s(&cap.not_after.to_rfc3339_millis()));
    m.push(
        "attenuations".into(),
        Value::Number(cap.attenuations as f64),
    );
    Value::Object(m)
}

/// A use of a capability that checked out: what goes into the decision's record and Cedar.
#[derive(Debug)]
pub(crate) struct Use {
    pub cap: Capability,
}

impl Use {
    /// The Cedar context at use: the request's own (which holds no reserved member, see
    /// [`crate::policy::RESERVED_CONTEXT`]), with `issuance: false` and the capability's
    /// effective grants.
    pub(crate) fn cedar_context(&self, request: Option<&Map>) -> Map {
        let mut m = request.cloned().unwrap_or_default();
        m.push("issuance".into(), Value::Bool(false));
        m.push("grants".into(), self.cap.grants.to_value());
        m
    }

    pub(crate) fn record_value(&self) -> Value {
        cap_value(&self.cap)
    }
}

/// Checks a capability presented with `POST /actions` by `actor` for `action` on
/// `resource`: the token verifies under this control plane's key (signatures, every
/// attenuation narrowing, expiry), then the checks of
/// [`zt_core::capability::standing::check_use`] (issued here, active, bound to this actor,
/// for this action and resource).
pub(crate) fn check_use(
    st: &Shared,
    caps: &Capabilities,
    token: &str,
    actor: &str,
    action: &str,
    resource: &str,
) -> Result<Use, Box<UseRefusal>> {
    let now = Timestamp::now();
    let cap = capability::verify(token, &st.keyring, now).map_err(|e| Box::new(e.into()))?;
    standing::check_use(&cap, caps.held.get(&cap.id), actor, action, resource, now)
        .map_err(Box::new)?;
    Ok(Use { cap })
}

fn base_context(st: &Shared, identity: &str) -> Map {
    let s = |x: &str| Value::String(x.to_owned());
    let mut ctx = Map::new();
    ctx.push("request_id".into(), s(&format!("cap-{}", random_hex(12))));
    ctx.push("identity".into(), s(identity));
    ctx.push("policy_version".into(), s(read(&st.engine).version()));
    ctx.push("broker".into(), s(&st.broker));
    ctx
}

fn with_audit(status: StatusCode, mut fields: serde_json::Value, c: &Committed) -> Response {
    fields["audit"] = serde_json::from_str(&c.json).unwrap_or(serde_json::Value::Null);
    json_response(status, fields)
}

/// An admin's JSON body, parsed as I-JSON (duplicates refused), only `allowed` members.
fn admin_object(headers: &HeaderMap, body: &[u8], allowed: &[&str]) -> Result<Map, Reject> {
    admin_body(headers)?;
    object(body, allowed)
}

fn object(body: &[u8], allowed: &[&str]) -> Result<Map, Reject> {
    let bad = |m: String| Reject(StatusCode::BAD_REQUEST, m);
    let v = json::parse(body).map_err(|e| bad(format!("request body is not JSON: {e}")))?;
    let Value::Object(m) = v else {
        return Err(bad(format!(
            "request body is a JSON {}, not an object",
            v.type_name()
        )));
    };
    if let Some((k, _)) = m.iter().find(|(k, _)| !allowed.contains(k)) {
        return Err(bad(format!(
            "unknown member `{}` (expected {})",
            zt_core::envelope::shorten(k),
            allowed.join(", ")
        )));
    }
    Ok(m)
}

fn string(m: &Map, k: &str) -> Result<Option<String>, Reject> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!("`{k}` must be a string, found {}", v.type_name()),
        )),
    }
}

fn whole(m: &Map, k: &str, max: u64) -> Result<Option<u64>, Reject> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.fract() == 0.0 && *n >= 0.0 && *n <= max as f64 => {
            Ok(Some(*n as u64))
        }
        Some(_) => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!("`{k}` must be a whole number from 0 to {max}"),
        )),
    }
}

/// What `POST /capabilities` asks for.
struct IssueRequest {
    actor: String,
    action: String,
    resource: String,
    ttl_s: u64,
    grants: Grants,
}

fn parse_issue(m: &Map) -> Result<IssueRequest, Reject> {
    let bad = |s: String| Reject(StatusCode::BAD_REQUEST, s);
    let actor = string(m, "actor")?.unwrap_or_default();
    name_ok("actor", &actor, MAX_NAME).map_err(bad)?;
    let action = string(m, "action")?.unwrap_or_default();
    name_ok("action", &action, MAX_NAME).map_err(bad)?;
    if action.starts_with("zt.") {
        return Err(bad(
            "actions under `zt.` are the control plane's own; no capability is issued for one"
                .into(),
        ));
    }
    let resource = string(m, "resource")?.unwrap_or_default();
    resource_ok(&resource).map_err(bad)?;
    let ttl_s = match whole(m, "ttl_s", MAX_CAPABILITY_TTL_S)? {
        Some(t) if t >= 1 => t,
        _ => {
            return Err(bad(format!(
                "`ttl_s` (seconds, 1 to {MAX_CAPABILITY_TTL_S}) is required"
            )))
        }
    };
    let grants = match m.get("grants") {
        Some(v) => Grants::from_value(v).map_err(|e| bad(e.to_string()))?,
        None => return Err(bad("`grants` is required".into())),
    };
    // Grants are files: on this host, every path's text must be what it resolves to (the
    // broker checks again where the command runs; that is the check that counts).
    zt_broker::paths::check_on_host(&grants).map_err(|e| bad(e.to_string()))?;
    Ok(IssueRequest {
        actor,
        action,
        resource,
        ttl_s,
        grants,
    })
}

pub(crate) async fn issue(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    crate::server::to_completion(issue_change(State(st), headers, body)).await
}

async fn issue_change(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let who = match admin(&st, &headers) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let m = match admin_object(
        &headers,
        &body,
        &["actor", "action", "resource", "ttl_s", "grants"],
    ) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let req = match parse_issue(&m) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let issued_at = Timestamp::now();
    let not_after =
        Timestamp::from_unix_nanos(issued_at.unix_nanos() + i128::from(req.ttl_s) * 1_000_000_000);
    let engine = std::sync::Arc::clone(&read(&st.engine));
    // Decided and queued under the registry's read lock, as decisions are: a revocation of
    // the agent is before or after this issuance on record, never beside it.
    let registry = st.registry.read().await;
    let mut cedar = Map::new();
    cedar.push("issuance".into(), Value::Bool(true));
    cedar.push("grants".into(), req.grants.to_value());
    let (allow, reason, policy_ids) = if !registry.is_active(&req.actor) {
        (false, "agent is not registered".to_owned(), Vec::new())
    } else {
        let v = engine.decide(&req.actor, &req.action, &req.resource, Some(&cedar));
        (v.allow, v.reason, v.policy_ids)
    };
    let id = format!("cap-{}", random_hex(8));
    let mut ctx = base_context(&st, &who);
    if !policy_ids.is_empty() {
        ctx.push("policy_id".into(), Value::String(policy_ids.join(",")));
    }
    let mut c = Map::new();
    c.push("op".into(), Value::String("issue".into()));
    if allow {
        c.push("id".into(), Value::String(id.clone()));
    }
    c.push("grants".into(), req.grants.to_value());
    c.push(
        "not_after".into(),
        Value::String(not_after.to_rfc3339_millis()),
    );
    ctx.push("capability".into(), Value::Object(c));
    let decided = Decided {
        lane: Lane::Decisions,
        actor: req.actor.clone(),
        action: req.action.clone(),
        resource: req.resource.clone(),
        allow,
        reason: format!("capability issuance: {reason}"),
        context: ctx,
    };
    let pending = st.chain.enqueue(decided);
    drop(registry);
    let committed = match pending {
        Ok(p) => p.committed().await,
        Err(e) => Err(e),
    };
    let committed = match committed {
        Ok(c) => c,
        Err(e) => return unrecorded("the issuance", &e),
    };
    if !allow {
        return with_audit(
            StatusCode::FORBIDDEN,
            serde_json::json!({"ok": false, "decision": "deny", "reason": reason}),
            &committed,
        );
    }
    let spec = Issue {
        id: id.clone(),
        actor: req.actor,
        action: req.action,
        resource: req.resource,
        grants: req.grants,
        issued_at,
        not_after,
        issuer_key_id: st.signer.key_id().to_owned(),
    };
    let token = match capability::issue(&spec, |d| st.signer.sign(d)) {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the issuance of {id} is on record but signing the token failed ({e}): no token was given; ask again"),
            )
        }
    };
    let cap = Capability::from(spec);
    let mut caps = st.caps.write().await;
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_capability(&cap, not_after.unix_millis());
    if let Err(e) = stored {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the issuance of {id} is on record but state.db could not be written ({e}): no token was given; ask again"),
        );
    }
    caps.held.insert(
        id.clone(),
        Held {
            actor: cap.actor.clone(),
            not_after,
            revoked_at: None,
        },
    );
    drop(caps);
    with_audit(
        StatusCode::CREATED,
        serde_json::json!({
            "ok": true,
            "id": id,
            "token": token,
            "expires_at": not_after.to_rfc3339_millis(),
            "actor": cap.actor,
            "grants": serde_json::from_slice::<serde_json::Value>(&json::canonicalize(&cap.grants.to_value())).unwrap_or_default(),
        }),
        &committed,
    )
}

pub(crate) async fn revoke(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    crate::server::to_completion(revoke_change(State(st), headers, Path(id))).await
}

async fn revoke_change(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let who = match admin(&st, &headers) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    // The record first, under the write lock; the revocation takes effect once it is sealed,
    // and no use is decided in between (uses hold the read lock until they are queued).
    let mut caps = st.caps.write().await;
    let actor = match caps.standing(&id, Timestamp::now()) {
        Standing::Unknown => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no capability {} was issued here",
                    zt_core::text::escape(&id)
                ),
            )
        }
        Standing::Revoked { at } => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "capability {id} was revoked already, at {}",
                    at.to_rfc3339_millis()
                ),
            )
        }
        Standing::Active { .. } | Standing::Expired { .. } => {
            caps.actor_of(&id).unwrap_or_default().to_owned()
        }
    };
    let mut ctx = base_context(&st, &who);
    ctx.push("capability_id".into(), Value::String(id.clone()));
    ctx.push("agent".into(), Value::String(actor.clone()));
    let decided = Decided {
        lane: Lane::Admin,
        actor: "zt.admin".into(),
        action: "zt.capability.revoke".into(),
        resource: format!("capability/{id}"),
        allow: true,
        reason: format!("capability {id} of agent {actor} revoked: it no longer authorizes anything, and brokers running under it stop"),
        context: ctx,
    };
    let committed = match st.chain.append(decided).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the revocation", &e),
    };
    let now = Timestamp::now();
    let at = now.to_rfc3339_millis();
    if let Some(h) = caps.held.get_mut(&id) {
        h.revoked_at = Some(now);
    }
    drop(caps);
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .revoke_capability(&id, &at);
    if let Err(e) = stored {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the revocation of {id} is on record and in effect, but state.db could not be written ({e}): after a restart it would be usable again; revoke again once the disk is fixed"),
        );
    }
    with_audit(
        StatusCode::OK,
        serde_json::json!({"ok": true, "id": id, "revoked_at": at}),
        &committed,
    )
}

/// Who is asking, for the routes agents and brokers call outside `/actions`: the SVID's agent
/// or broker, an admin token, a broker's token, an agent's token, nobody in open mode, or a
/// refusal saying why.
async fn caller(st: &Shared, headers: &HeaderMap, peer: Option<&PeerIdentity>) -> Caller {
    let registry = st.registry.read().await;
    let brokers = st.brokers.read().await;
    if let Some(PeerIdentity::Spiffe(id)) = peer {
        if let Some(b) = brokers.by_spiffe(id.as_str()) {
            return Caller::Broker(b.key.clone(), id.to_string());
        }
        return match registry.spiffe_actor(id.as_str()) {
            Some(a) => Caller::Agent(a.to_owned(), id.to_string()),
            None => Caller::Refused(format!("SVID {id} is bound to no agent or broker")),
        };
    }
    if let Some(PeerIdentity::Refused(why)) = peer {
        return Caller::Refused(format!("client certificate refused: {why}"));
    }
    let token = bearer(headers);
    if let Some(t) = token {
        if st.admin_tokens.contains(&crate::server::token_hash(t)) {
            return Caller::Admin;
        }
        if let Some(b) = brokers.by_token(t) {
            let identity = format!("broker-token:{}", b.key.broker);
            return Caller::Broker(b.key.clone(), identity);
        }
    }
    match registry.classify(token, now_ms()) {
        Auth::Agent(a) => {
            let identity = format!("agent-token:{a}");
            Caller::Agent(a, identity)
        }
        Auth::Missing if st.open => Caller::Open,
        other => Caller::Refused(format!(
            "this route needs an agent's or a broker's token or SVID ({})",
            other.identity(st.open)
        )),
    }
}

enum Caller {
    /// An agent: its name and how it authenticated.
    Agent(String, String),
    /// A registered broker: its key on record and how it authenticated.
    Broker(BrokerKey, String),
    Admin,
    Open,
    Refused(String),
}

pub(crate) async fn status(State(st): St, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let peer = parts.extensions.get::<PeerIdentity>();
    let who = caller(&st, &parts.headers, peer).await;
    let caps = st.caps.read().await;
    match who {
        Caller::Refused(why) => return error(StatusCode::UNAUTHORIZED, why),
        Caller::Agent(a, _) if caps.actor_of(&id).is_some_and(|b| b != a) => {
            return error(
                StatusCode::FORBIDDEN,
                format!("capability {id} is not bound to agent {a}"),
            )
        }
        _ => {}
    }
    let standing = caps.standing(&id, Timestamp::now());
    match (standing.state(), standing.status_value(&id)) {
        (Some(state), Some(body)) => (
            if state == CapState::Active {
                StatusCode::OK
            } else {
                StatusCode::GONE
            },
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            json::canonicalize(&body),
        )
            .into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            format!(
                "no capability {} was issued here",
                zt_core::text::escape(&id)
            ),
        ),
    }
}

/// Keeps an allow decision made under a capability, for the execution report that will name
/// it. A failure is logged in the answer's place by the caller: the decision stands.
pub(crate) fn remember_use(
    st: &Shared,
    decision: &Hash32,
    used: &CapabilityUse,
) -> Result<(), crate::ControlPlaneError> {
    st.state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_capability_use(decision, used)
}

/// What `POST /executions` carries: `{"report": {...}, "attestation": {...}?}`.
struct Filed {
    /// The report as sent (it goes into the record exactly so, so that its digest, which
    /// the broker signed, can be recomputed from the record).
    value: Value,
    report: ExecutionReport,
    attestation: Option<Attestation>,
}

fn parse_filed(body: &[u8]) -> Result<Filed, Reject> {
    let bad = |s: String| Reject(StatusCode::BAD_REQUEST, s);
    let m = object(body, &["report", "attestation"])?;
    let value = m
        .get("report")
        .cloned()
        .ok_or_else(|| bad("`report` (the execution report) is required".into()))?;
    let report = ExecutionReport::from_value(&value).map_err(|e| bad(e.to_string()))?;
    // What the record holds is the report re-read, member for member: the canonical form of
    // `value` and of `report.to_value()` are then the same bytes.
    let value = report.to_value();
    let attestation = match m.get("attestation") {
        None | Some(Value::Null) => None,
        Some(a) => Some(Attestation::from_value(a).map_err(|e| bad(e.to_string()))?),
    };
    Ok(Filed {
        value,
        report,
        attestation,
    })
}

/// Why a broker's report is not sealed as an attested execution: the deny's reason.
fn unattested(filed: &Filed, broker: &BrokerKey, used: Option<&CapabilityUse>) -> Option<String> {
    let r = &filed.report;
    let d = r.decision.short();
    let Some(a) = &filed.attestation else {
        return Some("it carries no broker signature".into());
    };
    if a.broker != broker.broker || r.broker != broker.broker {
        return Some(format!(
            "it is filed by broker {} but signed as {} for broker {}",
            broker.broker, a.broker, r.broker
        ));
    }
    if let Err(e) = a.verify(&r.digest(), broker) {
        return Some(e.to_string());
    }
    let Some(u) = used else {
        return Some(format!(
            "it names decision {d}, which is no allow made here under a capability"
        ));
    };
    if u.actor != r.actor {
        return Some(format!(
            "it names decision {d} of agent {}, not of {}",
            u.actor, r.actor
        ));
    }
    if u.capability != r.capability_id {
        return Some(format!(
            "it names capability {}, but decision {d} was made under {}",
            r.capability_id, u.capability
        ));
    }
    match &u.grants {
        None => Some(format!(
            "decision {d} was made before allows kept their grants: nothing to hold the report to"
        )),
        Some(g) if *g != r.grants => Some(format!(
            "the broker applied other grants than decision {d} sealed ({}; sealed: {g})",
            r.grants
        )),
        Some(_) => None,
    }
}

pub(crate) async fn execution(State(st): St, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let source = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let peer = parts.extensions.get::<PeerIdentity>().cloned();
    let who = caller(&st, &parts.headers, peer.as_ref()).await;
    let key = match &who {
        Caller::Refused(why) => return error(StatusCode::UNAUTHORIZED, why.clone()),
        Caller::Admin => {
            return error(
                StatusCode::FORBIDDEN,
                "an execution is reported by the broker that ran it, not by an admin",
            )
        }
        Caller::Agent(a, _) => Key::Actor(a.clone()),
        Caller::Broker(b, _) => Key::Broker(b.broker.clone()),
        Caller::Open => Key::Unauthenticated,
    };
    if let Err(wait) = st.limiter.check(&key, source) {
        return limited(&key, wait);
    }
    let bytes = match axum::body::to_bytes(body, MAX_REPORT).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("execution report over {MAX_REPORT} bytes or broken off: {e}"),
            )
        }
    };
    let filed = match parse_filed(&bytes) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let decision = filed.report.decision;
    let used = match st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .capability_use(&decision)
    {
        Ok(u) => u,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("state.db could not be read ({e}); retry"),
            )
        }
    };
    // Only a registered broker's signed report can count; anything else is kept as what it
    // is, an attempt or a claim, and sealed as a deny that says so.
    let (identity, refusal, status) = match &who {
        Caller::Broker(b, identity) => match unattested(&filed, b, used.as_ref()) {
            None => (identity.clone(), None, StatusCode::CREATED),
            Some(why) => (identity.clone(), Some(why), StatusCode::CONFLICT),
        },
        Caller::Agent(a, identity) => (
            identity.clone(),
            Some(format!(
                "it was filed by agent {a} itself: an agent's account of its own execution is a claim, not evidence (only a registered broker attests one)"
            )),
            StatusCode::FORBIDDEN,
        ),
        _ => (
            "none (open mode, loopback)".to_owned(),
            Some("it was filed by no broker: only a registered broker attests an execution".into()),
            StatusCode::FORBIDDEN,
        ),
    };
    // Exactly one attested record per allow: claimed before it is sealed.
    let claimed = if refusal.is_none() {
        let claim = st
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .claim_execution(&decision);
        match claim {
            Ok(Claim::Claimed) => None,
            Ok(Claim::Taken(h)) => Some(if h == Hash32([0; 32]) {
                format!(
                    "decision {} is being recorded as executed by another report",
                    decision.short()
                )
            } else {
                format!(
                    "decision {} already has its execution record {}: one allow, one execution",
                    decision.short(),
                    h.short()
                )
            }),
            Err(e) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("state.db could not be written ({e}); retry"),
                )
            }
        }
    } else {
        None
    };
    let (refusal, status) = match (refusal, claimed) {
        (None, Some(why)) => (Some(why), StatusCode::CONFLICT),
        (r, _) => (r, status),
    };
    let s = |x: &str| Value::String(x.to_owned());
    let mut ctx = base_context(&st, &identity);
    ctx.push("decision".into(), s(&decision.to_hex()));
    ctx.push("capability_id".into(), s(&filed.report.capability_id));
    ctx.push("report".into(), filed.value.clone());
    if let Some(a) = &filed.attestation {
        ctx.push("attestation".into(), a.to_value());
    }
    let summary = filed.report.summary();
    let reason = match &refusal {
        None => format!(
            "executed under decision {}, attested by broker {}: {summary}",
            decision.short(),
            filed.report.broker
        ),
        Some(why) => format!("execution report not accepted: {why}; it says: {summary}"),
    };
    let actor = match (&who, &used) {
        (Caller::Agent(a, _), _) => a.clone(),
        (_, Some(u)) => u.actor.clone(),
        _ => filed.report.actor.clone(),
    };
    let decided = Decided {
        lane: Lane::Decisions,
        actor,
        action: EXECUTION_ACTION.into(),
        resource: used
            .as_ref()
            .map(|u| u.resource.clone())
            .unwrap_or_default(),
        allow: refusal.is_none(),
        reason,
        context: ctx,
    };
    let committed = st.chain.append(decided).await;
    let state = || st.state.lock().unwrap_or_else(PoisonError::into_inner);
    let committed = match committed {
        Ok(c) => c,
        Err(e) => {
            if refusal.is_none() {
                let _ = state().unclaim(&decision);
            }
            return unrecorded("the execution report", &e);
        }
    };
    if refusal.is_none() {
        if let Err(e) = state().executed(&decision, &committed.current_hash) {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the execution record is sealed but state.db could not keep it ({e}); a second report for this allow stays refused until a restart"),
            );
        }
    }
    let ok = refusal.is_none();
    // Only `ok` beside `audit`: a guarded client reads every other top-level member as one
    // of the record's own (the lineage's answer shape), so a `reason` or `linked` here would
    // make the sealed answer fail to verify.
    with_audit(status, serde_json::json!({"ok": ok}), &committed)
}
