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
//!   to, or an admin): 200 active, 410 revoked or expired.
//! - Use: `POST /actions` with `"capability"` (see [`check_use`]).
//! - `POST /executions`: a broker's report, sealed on the decision chain as
//!   `zt.broker.execution`, linked to the allow it ran under. A report that names no allow of
//!   that agent under that capability is still sealed (evidence of an attempt), as a deny.

use std::collections::HashMap;
use std::sync::PoisonError;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use zt_core::capability::{self, Capability, Grants, Issue, EXECUTION_ACTION};
use zt_core::json::{self, Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_tls::PeerIdentity;

use crate::agents::{unrecorded, Auth};
use crate::chain::{Committed, Decided, Lane};
use crate::origin::admin_body;
use crate::server::{
    admin, bearer, error, json_response, name_ok, now_ms, random_hex, read, rfc3339_ms, Reject,
    Shared, St, MAX_NAME, MAX_RESOURCE,
};
use crate::state::CapabilityUse;

/// Longest capability lifetime (`ttl_s`): one day. A capability is for one action.
pub const MAX_CAPABILITY_TTL_S: u64 = 24 * 3600;

/// Largest execution report, in bytes.
pub const MAX_REPORT: usize = 64 * 1024;

#[derive(Debug, Clone)]
struct Held {
    actor: String,
    not_after_ms: i64,
    revoked_at: Option<String>,
}

/// The issued capabilities: whom each is bound to, its expiry, its revocation.
#[derive(Debug, Default)]
pub(crate) struct Capabilities {
    held: HashMap<String, Held>,
}

/// Where a capability stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Usable until (Unix ms).
    Active { not_after_ms: i64 },
    /// Revoked at (RFC 3339).
    Revoked { at: String },
    /// Expired at (Unix ms).
    Expired { at_ms: i64 },
    /// Not issued here.
    Unknown,
}

impl Capabilities {
    pub(crate) fn load(stored: Vec<crate::state::StoredCapability>) -> Self {
        Self {
            held: stored
                .into_iter()
                .map(|c| {
                    (
                        c.id,
                        Held {
                            actor: c.actor,
                            not_after_ms: c.not_after_ms,
                            revoked_at: c.revoked_at,
                        },
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn standing(&self, id: &str, now_ms: i64) -> Standing {
        match self.held.get(id) {
            None => Standing::Unknown,
            Some(Held {
                revoked_at: Some(at),
                ..
            }) => Standing::Revoked { at: at.clone() },
            Some(h) if now_ms >= h.not_after_ms => Standing::Expired {
                at_ms: h.not_after_ms,
            },
            Some(h) => Standing::Active {
                not_after_ms: h.not_after_ms,
            },
        }
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
    /// The Cedar context at use: the request's own, with `issuance: false` and the
    /// capability's effective grants.
    pub(crate) fn cedar_context(&self, request: Option<&Map>) -> Result<Map, String> {
        let mut m = request.cloned().unwrap_or_default();
        for k in ["issuance", "grants"] {
            if m.contains_key(k) {
                return Err(format!(
                    "context member `{k}` is the control plane's when a capability is used"
                ));
            }
        }
        m.push("issuance".into(), Value::Bool(false));
        m.push("grants".into(), self.cap.grants.to_value());
        Ok(m)
    }

    pub(crate) fn record_value(&self) -> Value {
        cap_value(&self.cap)
    }
}

/// Checks a capability presented with `POST /actions` by `actor` for `action` on
/// `resource`: the token verifies under this control plane's key (signatures, every
/// attenuation narrowing, expiry), it was issued here and is not revoked, it is bound to this
/// actor, and it is for this action and resource. `Err` is the deny's reason.
pub(crate) fn check_use(
    st: &Shared,
    caps: &Capabilities,
    token: &str,
    actor: &str,
    action: &str,
    resource: &str,
) -> Result<Use, String> {
    let now = Timestamp::now();
    let cap = capability::verify(token, &st.keyring, now)
        .map_err(|e| format!("capability refused: {e}"))?;
    match caps.standing(&cap.id, now.unix_millis()) {
        Standing::Active { .. } => {}
        Standing::Revoked { at } => {
            return Err(format!(
                "capability refused: capability {} was revoked at {at}",
                cap.id
            ))
        }
        Standing::Expired { at_ms } => {
            return Err(format!(
                "capability refused: capability {} expired at {}",
                cap.id,
                rfc3339_ms(at_ms)
            ))
        }
        Standing::Unknown => {
            return Err(format!(
                "capability refused: capability {} was not issued by this control plane",
                cap.id
            ))
        }
    }
    if cap.actor != actor || caps.actor_of(&cap.id) != Some(actor) {
        return Err(format!(
            "capability refused: capability {} is bound to agent {}, not {actor}",
            cap.id, cap.actor
        ));
    }
    if cap.action != action || cap.resource != resource {
        return Err(format!(
            "capability refused: capability {} is for {} on {:?}, not {action} on {resource:?}",
            cap.id, cap.action, cap.resource
        ));
    }
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
    if resource.len() > MAX_RESOURCE || resource.chars().any(char::is_control) {
        return Err(bad(format!(
            "`resource` must be at most {MAX_RESOURCE} bytes without control characters"
        )));
    }
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
            not_after_ms: not_after.unix_millis(),
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
    let actor = match caps.standing(&id, now_ms()) {
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
                format!("capability {id} was revoked already, at {at}"),
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
    let at = Timestamp::now().to_rfc3339_millis();
    if let Some(h) = caps.held.get_mut(&id) {
        h.revoked_at = Some(at.clone());
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

/// Who is asking, for the routes agents call outside `/actions`: the SVID's agent, the
/// token's agent, an admin token, nobody in open mode, or a refusal saying why.
async fn caller(st: &Shared, headers: &HeaderMap, peer: Option<&PeerIdentity>) -> Caller {
    let registry = st.registry.read().await;
    if let Some(PeerIdentity::Spiffe(id)) = peer {
        return match registry.spiffe_actor(id.as_str()) {
            Some(a) => Caller::Agent(a.to_owned(), id.to_string()),
            None => Caller::Refused(format!("SVID {id} is bound to no agent")),
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
    }
    match registry.classify(token, now_ms()) {
        Auth::Agent(a) => {
            let identity = format!("agent-token:{a}");
            Caller::Agent(a, identity)
        }
        Auth::Missing if st.open => Caller::Open,
        other => Caller::Refused(format!(
            "this route needs the agent's token or SVID ({})",
            other.identity(st.open)
        )),
    }
}

enum Caller {
    Agent(String, String),
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
    match caps.standing(&id, now_ms()) {
        Standing::Active { not_after_ms } => json_response(
            StatusCode::OK,
            serde_json::json!({"id": id, "state": "active", "not_after": rfc3339_ms(not_after_ms)}),
        ),
        Standing::Revoked { at } => json_response(
            StatusCode::GONE,
            serde_json::json!({"id": id, "state": "revoked", "at": at}),
        ),
        Standing::Expired { at_ms } => json_response(
            StatusCode::GONE,
            serde_json::json!({"id": id, "state": "expired", "at": rfc3339_ms(at_ms)}),
        ),
        Standing::Unknown => error(
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

/// A broker's execution report, checked.
struct Report {
    decision: Hash32,
    capability_id: String,
    members: Map,
    summary: String,
}

fn parse_report(m: &Map) -> Result<Report, Reject> {
    let bad = |s: String| Reject(StatusCode::BAD_REQUEST, s);
    let decision = string(m, "decision")?
        .and_then(|h| Hash32::from_hex(&h))
        .ok_or_else(|| {
            bad("`decision` (the allow's current_hash, 64 hex digits) is required".into())
        })?;
    let capability_id = string(m, "capability_id")?.unwrap_or_default();
    name_ok("capability_id", &capability_id, MAX_NAME).map_err(bad)?;
    let sandbox = string(m, "sandbox")?.unwrap_or_default();
    if !["nono", "process"].contains(&sandbox.as_str()) {
        return Err(bad("`sandbox` must be \"nono\" or \"process\"".into()));
    }
    let grants = match m.get("grants") {
        Some(v) => Grants::from_value(v).map_err(|e| bad(e.to_string()))?,
        None => return Err(bad("`grants` is required".into())),
    };
    let Some(Value::Array(command)) = m.get("command") else {
        return Err(bad("`command` (a list of strings) is required".into()));
    };
    if command.is_empty() || command.len() > 1024 || !command.iter().all(|c| c.as_str().is_some()) {
        return Err(bad("`command` must be a list of 1 to 1024 strings".into()));
    }
    let exit_code = match m.get("exit_code") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.fract() == 0.0 && n.abs() < 1e9 => Some(*n as i64),
        Some(_) => return Err(bad("`exit_code` must be a whole number or null".into())),
    };
    let signal = whole(m, "signal", 128)?;
    let duration_ms = whole(m, "duration_ms", u64::from(u32::MAX))?
        .ok_or_else(|| bad("`duration_ms` is required".into()))?;
    let stopped = match m.get("stopped") {
        None | Some(Value::Null) => None,
        Some(Value::Object(s)) => {
            let reason = s.get("reason").and_then(Value::as_str).unwrap_or_default();
            if !["revoked", "expired", "lost_contact"].contains(&reason) {
                return Err(bad(
                    "`stopped.reason` must be revoked, expired or lost_contact".into(),
                ));
            }
            Some(reason.to_owned())
        }
        Some(_) => return Err(bad("`stopped` must be an object or null".into())),
    };
    let program = command
        .first()
        .and_then(Value::as_str)
        .map(|p| zt_core::text::escape(p).into_owned())
        .unwrap_or_default();
    let ended = match (stopped.as_deref(), exit_code, signal) {
        (Some(r), _, _) => format!("stopped by the broker ({r})"),
        (None, Some(c), _) => format!("exited {c}"),
        (None, None, Some(s)) => format!("died of signal {s}"),
        (None, None, None) => "ended".to_owned(),
    };
    let summary = format!("{program} {ended} after {duration_ms} ms under {sandbox} ({grants})");
    let mut members = Map::new();
    for k in [
        "sandbox",
        "grants",
        "command",
        "exit_code",
        "signal",
        "duration_ms",
        "stopped",
    ] {
        let v = match k {
            "grants" => grants.to_value(),
            _ => m.get(k).cloned().unwrap_or(Value::Null),
        };
        members.push(k.into(), v);
    }
    Ok(Report {
        decision,
        capability_id,
        members,
        summary,
    })
}

pub(crate) async fn execution(State(st): St, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<PeerIdentity>().cloned();
    let who = caller(&st, &parts.headers, peer.as_ref()).await;
    let bytes = match axum::body::to_bytes(body, MAX_REPORT).await {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("execution report over {MAX_REPORT} bytes or broken off: {e}"),
            )
        }
    };
    let report = match object(
        &bytes,
        &[
            "decision",
            "capability_id",
            "sandbox",
            "grants",
            "command",
            "exit_code",
            "signal",
            "duration_ms",
            "stopped",
        ],
    )
    .and_then(|m| parse_report(&m))
    {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let used = match st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .capability_use(&report.decision)
    {
        Ok(u) => u,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("state.db could not be read ({e}); retry"),
            )
        }
    };
    let (actor, identity) = match who {
        Caller::Agent(a, identity) => (a, identity),
        Caller::Open => match &used {
            Some(u) => (u.actor.clone(), "none (open mode, loopback)".to_owned()),
            None => (
                "unknown".to_owned(),
                "none (open mode, loopback)".to_owned(),
            ),
        },
        Caller::Admin => {
            return error(
                StatusCode::FORBIDDEN,
                "an execution is reported by the agent that ran it, not by an admin",
            )
        }
        Caller::Refused(why) => return error(StatusCode::UNAUTHORIZED, why),
    };
    // Linked: the decision is an allow this control plane made for this agent under this
    // capability. Otherwise the report is still sealed, as a deny that says why.
    let unlinked = match &used {
        None => Some(format!(
            "names decision {}, which is no allow made here under a capability",
            report.decision.short()
        )),
        Some(u) if u.actor != actor => Some(format!(
            "names decision {} of agent {}, not of {actor}",
            report.decision.short(),
            u.actor
        )),
        Some(u) if u.capability != report.capability_id => Some(format!(
            "names capability {}, but decision {} was made under {}",
            report.capability_id,
            report.decision.short(),
            u.capability
        )),
        Some(_) => None,
    };
    let mut ctx = base_context(&st, &identity);
    ctx.push("decision".into(), Value::String(report.decision.to_hex()));
    ctx.push(
        "capability_id".into(),
        Value::String(report.capability_id.clone()),
    );
    for (k, v) in report.members.iter() {
        ctx.push(k.to_owned(), v.clone());
    }
    let reason = match &unlinked {
        None => format!(
            "executed under decision {}: {}",
            report.decision.short(),
            report.summary
        ),
        Some(why) => format!("execution report not linked: it {why}; {}", report.summary),
    };
    let decided = Decided {
        lane: Lane::Decisions,
        actor,
        action: EXECUTION_ACTION.into(),
        resource: used.map(|u| u.resource).unwrap_or_default(),
        allow: unlinked.is_none(),
        reason,
        context: ctx,
    };
    let committed = match st.chain.append(decided).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the execution report", &e),
    };
    let (status, ok) = if unlinked.is_none() {
        (StatusCode::CREATED, true)
    } else {
        (StatusCode::CONFLICT, false)
    };
    with_audit(
        status,
        serde_json::json!({"ok": ok, "linked": ok, "reason": unlinked}),
        &committed,
    )
}
