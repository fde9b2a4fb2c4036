//! Agents: who a bearer token speaks for, and the admin routes that change it.
//!
//! [`Registry`] holds, in memory, the active agents and their tokens (SHA-256 only) with their
//! expiry, the SPIFFE ID each may be bound to (an X.509-SVID over mTLS speaks for that agent),
//! the revoked agents, and every token a rotation or a revocation retired, so a request
//! carrying one is refused naming why. It is loaded from `state.db` at start.
//!
//! The routes (`POST /agents`, `POST /agents/{actor}/token`, `DELETE /agents/{actor}`) seal
//! their record first, holding the registry's write lock, and change `state.db` and the
//! registry only once it is committed: nothing changes that is not on record, and no decision
//! made with a retired token is stamped after its retirement (decisions hold the read lock
//! from authentication to their place in the writer's queue, and one writer stamps both
//! chains). The records are on the control plane's own chain ([`crate::chain::Lane::Admin`]). Record shapes are in
//! [`crate::server`]'s module docs and `docs/control-plane.md`.

use std::collections::HashMap;
use std::sync::PoisonError;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;

use crate::chain::{Committed, Decided, Lane};
use crate::db::{Agent, Retired, RetiredToken};
use crate::error::{ControlPlaneError, SealError};
use crate::origin::admin_body;
use crate::server::{
    admin, error, json_response, name_ok, now_ms, random_hex, read, rfc3339_ms, token_hash, Reject,
    Shared, St, MAX_NAME, MAX_TOKEN_TTL_S,
};
use zt_tls::SpiffeId;

/// What a request's bearer token says about who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    /// A valid token of this agent.
    Agent(String),
    /// This agent's token, past its expiry (Unix milliseconds).
    Expired { actor: String, at_ms: i64 },
    /// A token a rotation or a revocation retired.
    Retired {
        actor: String,
        why: Retired,
        at: String,
    },
    /// A token nobody was given.
    Unknown,
    /// No token.
    Missing,
}

impl Auth {
    /// The envelope's `context.identity`.
    pub(crate) fn identity(&self, open: bool) -> String {
        match self {
            Self::Agent(a) => format!("agent-token:{a}"),
            Self::Expired { actor, .. } => format!("expired-token:{actor}"),
            Self::Retired { actor, .. } => format!("retired-token:{actor}"),
            Self::Missing if open => "none (open mode, loopback)".into(),
            Self::Unknown | Self::Missing => "unauthenticated".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Active {
    token: Hash32,
    expires_at_ms: Option<i64>,
}

/// The registry.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    active: HashMap<String, Active>,
    by_token: HashMap<Hash32, String>,
    /// SPIFFE ID -> the active agent it speaks for.
    by_spiffe: HashMap<String, String>,
    /// Revoked actors and when.
    revoked: HashMap<String, String>,
    retired: HashMap<Hash32, (String, Retired, String)>,
}

/// The token's id in records and answers: the first 16 hex digits of its SHA-256. It tells
/// tokens apart and reveals nothing of them.
pub(crate) fn token_id(hash: &Hash32) -> String {
    hash.to_hex()[..16].to_owned()
}

impl Registry {
    pub(crate) fn load(agents: Vec<Agent>, retired: Vec<RetiredToken>) -> Self {
        let mut r = Self::default();
        for a in agents {
            match a.revoked_at {
                Some(at) => {
                    r.revoked.insert(a.actor, at);
                }
                None => r.register(a.actor, a.token_sha256, a.token_expires_at_ms, a.spiffe_id),
            }
        }
        for t in retired {
            r.retired
                .insert(t.token_sha256, (t.actor, t.why, t.retired_at));
        }
        r
    }

    /// Who `token` speaks for at `now_ms`.
    pub(crate) fn classify(&self, token: Option<&str>, now_ms: i64) -> Auth {
        let Some(token) = token else {
            return Auth::Missing;
        };
        let h = Hash32::digest(token.as_bytes());
        if let Some(actor) = self.by_token.get(&h) {
            let expires = self.active.get(actor).and_then(|a| a.expires_at_ms);
            return match expires {
                Some(at_ms) if now_ms >= at_ms => Auth::Expired {
                    actor: actor.clone(),
                    at_ms,
                },
                _ => Auth::Agent(actor.clone()),
            };
        }
        match self.retired.get(&h) {
            Some((actor, why, at)) => Auth::Retired {
                actor: actor.clone(),
                why: *why,
                at: at.clone(),
            },
            None => Auth::Unknown,
        }
    }

    /// Whether `actor` is registered and not revoked.
    pub(crate) fn is_active(&self, actor: &str) -> bool {
        self.active.contains_key(actor)
    }

    /// When `actor` was revoked, if it was (and not registered again since).
    pub(crate) fn revoked_at(&self, actor: &str) -> Option<&str> {
        self.revoked.get(actor).map(String::as_str)
    }

    /// The active agent an X.509-SVID with this SPIFFE ID speaks for.
    pub(crate) fn spiffe_actor(&self, spiffe_id: &str) -> Option<&str> {
        self.by_spiffe.get(spiffe_id).map(String::as_str)
    }

    /// The SPIFFE ID bound to `actor`, if any.
    fn spiffe_of(&self, actor: &str) -> Option<String> {
        self.by_spiffe
            .iter()
            .find(|(_, a)| a.as_str() == actor)
            .map(|(id, _)| id.clone())
    }

    /// The active token's hash of `actor`.
    pub(crate) fn token_of(&self, actor: &str) -> Option<Hash32> {
        self.active.get(actor).map(|a| a.token)
    }

    /// The active actors, sorted.
    pub(crate) fn actors(&self) -> Vec<String> {
        let mut v: Vec<String> = self.active.keys().cloned().collect();
        v.sort();
        v
    }

    pub(crate) fn register(
        &mut self,
        actor: String,
        token: Hash32,
        expires_at_ms: Option<i64>,
        spiffe_id: Option<String>,
    ) {
        self.revoked.remove(&actor);
        self.by_token.insert(token, actor.clone());
        if let Some(id) = spiffe_id {
            self.by_spiffe.insert(id, actor.clone());
        }
        self.active.insert(
            actor,
            Active {
                token,
                expires_at_ms,
            },
        );
    }

    fn retire(&mut self, actor: &str, why: Retired, at: &str) -> Option<Hash32> {
        let old = self.active.remove(actor)?;
        self.by_token.remove(&old.token);
        self.retired
            .insert(old.token, (actor.to_owned(), why, at.to_owned()));
        Some(old.token)
    }

    /// `actor`'s token is replaced by `token`; the old one is retired.
    pub(crate) fn rotate(
        &mut self,
        actor: &str,
        token: Hash32,
        expires_at_ms: Option<i64>,
        at: &str,
    ) {
        // The SVID binding stays with the agent: only its token changes.
        let spiffe = self.spiffe_of(actor);
        if self.retire(actor, Retired::Rotated, at).is_some() {
            self.register(actor.to_owned(), token, expires_at_ms, spiffe);
        }
    }

    /// `actor` is revoked; its token is retired.
    pub(crate) fn revoke(&mut self, actor: &str, at: &str) {
        if self.retire(actor, Retired::Revoked, at).is_some() {
            self.revoked.insert(actor.to_owned(), at.to_owned());
            // Its SVID speaks for nobody now (a recorded deny, "bound to no agent").
            self.by_spiffe.retain(|_, a| a != actor);
        }
    }
}

/// The lifecycle events of an agent, each a sealed record.
#[derive(Debug, Clone, Copy)]
enum Lifecycle {
    Register,
    Rotate,
    Revoke,
}

impl Lifecycle {
    fn action(self) -> &'static str {
        match self {
            Self::Register => "zt.agent.register",
            Self::Rotate => "zt.agent.token.rotate",
            Self::Revoke => "zt.agent.revoke",
        }
    }
}

/// The record of an admin's change to `agent`.
struct Change<'a> {
    event: Lifecycle,
    agent: &'a str,
    admin: &'a str,
    token: Option<&'a Hash32>,
    retired: Option<&'a Hash32>,
    expires_at_ms: Option<i64>,
    /// The SPIFFE ID a registration binds the agent to.
    spiffe_id: Option<&'a str>,
}

impl Change<'_> {
    fn decided(&self, st: &Shared) -> Decided {
        let tid = |h: Option<&Hash32>| h.map(token_id).unwrap_or_default();
        let reason = match self.event {
            Lifecycle::Register => format!(
                "agent {} registered with token {}",
                self.agent,
                tid(self.token)
            ),
            Lifecycle::Rotate => format!(
                "token of agent {} rotated: {} replaces {}, which no longer authenticates",
                self.agent,
                tid(self.token),
                tid(self.retired)
            ),
            Lifecycle::Revoke => format!(
                "agent {} revoked: its token {} no longer authenticates",
                self.agent,
                tid(self.retired)
            ),
        };
        let s = |x: &str| Value::String(x.to_owned());
        let mut ctx = Map::new();
        ctx.push("request_id".into(), s(&format!("admin-{}", random_hex(12))));
        ctx.push("identity".into(), s(self.admin));
        ctx.push("policy_version".into(), s(read(&st.engine).version()));
        ctx.push("broker".into(), s(&st.broker));
        ctx.push("agent".into(), s(self.agent));
        if let Some(t) = self.token {
            ctx.push("token_id".into(), s(&token_id(t)));
        }
        if let Some(t) = self.retired {
            ctx.push("retired_token_id".into(), s(&token_id(t)));
        }
        if let Some(ms) = self.expires_at_ms {
            ctx.push("token_expires_at".into(), s(&rfc3339_ms(ms)));
        }
        if let Some(id) = self.spiffe_id {
            ctx.push("spiffe_id".into(), s(id));
        }
        Decided {
            lane: Lane::Admin,
            actor: "zt.admin".into(),
            action: self.event.action().into(),
            resource: format!("agent/{}", self.agent),
            allow: true,
            reason,
            context: ctx,
        }
    }
}

/// The answer to an admin change: `fields` and the sealed record under `audit`.
pub(crate) fn changed(
    status: StatusCode,
    mut fields: serde_json::Value,
    committed: &Committed,
) -> Response {
    fields["ok"] = true.into();
    fields["audit"] = serde_json::from_str(&committed.json).unwrap_or(serde_json::Value::Null);
    json_response(status, fields)
}

/// 503 for a change whose record could not be sealed (`Retry-After` when the writer was busy).
pub(crate) fn unrecorded(what: &str, e: &SealError) -> Response {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} could not be recorded ({e}): nothing changed; retry"),
    );
    if matches!(e, SealError::Busy) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The admin's body as a JSON object (`{}` when empty), with only `allowed` members.
pub(crate) fn admin_json(
    headers: &HeaderMap,
    body: &[u8],
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, Reject> {
    admin_body(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    // The one strict reader every route's body goes through (duplicate members, lone
    // surrogates, integers no double holds are refused as in `/actions`); then the typed
    // reading below.
    zt_core::json::parse(body).map_err(|e| {
        Reject(
            StatusCode::BAD_REQUEST,
            format!("request body is not JSON: {e}"),
        )
    })?;
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Reject(
            StatusCode::BAD_REQUEST,
            format!("request body is not JSON: {e}"),
        )
    })?;
    let serde_json::Value::Object(m) = v else {
        return Err(Reject(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object".into(),
        ));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Reject(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown member `{}` (expected {})",
                zt_core::envelope::shorten(k),
                allowed.join(", ")
            ),
        ));
    }
    Ok(m)
}

/// `token_ttl_s`: when the token stops authenticating, if it does.
fn expiry(m: &serde_json::Map<String, serde_json::Value>) -> Result<Option<i64>, Reject> {
    let Some(v) = m.get("token_ttl_s") else {
        return Ok(None);
    };
    match v.as_u64() {
        Some(s) if (1..=MAX_TOKEN_TTL_S).contains(&s) => {
            let ms = i64::try_from(s * 1000).unwrap_or(i64::MAX);
            Ok(Some(now_ms().saturating_add(ms)))
        }
        _ => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!("`token_ttl_s` must be a whole number of seconds from 1 to {MAX_TOKEN_TTL_S}"),
        )),
    }
}

fn new_token() -> (String, Hash32) {
    let token = format!("ztcp_{}", random_hex(24));
    let h = token_hash(&token);
    (token, h)
}

fn token_fields(actor: &str, token: &str, h: &Hash32, expires: Option<i64>) -> serde_json::Value {
    let mut v = serde_json::json!({"actor": actor, "token": token, "token_id": token_id(h)});
    if let Some(ms) = expires {
        v["token_expires_at"] = rfc3339_ms(ms).into();
    }
    v
}

pub(crate) async fn register(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    crate::server::to_completion(register_change(State(st), headers, body)).await
}

/// The common start of a registration (an agent's, a broker's): an admin, a JSON body with
/// only `allowed` members, and the principal's name in `member`: a valid name outside the
/// control plane's `zt.` namespace. (who, body, name), or the refusal (boxed: a
/// `Response` is large and the happy path should not carry it).
pub(crate) fn registration(
    st: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    member: &str,
    allowed: &[&str],
) -> Result<(String, serde_json::Map<String, serde_json::Value>, String), Box<Response>> {
    let refuse = |r: Response| Box::new(r);
    let who = admin(st, headers).map_err(|e| refuse(e.into_response()))?;
    let m = admin_json(headers, body, allowed).map_err(|e| refuse(e.into_response()))?;
    let Some(name) = m.get(member).and_then(serde_json::Value::as_str) else {
        return Err(refuse(error(
            StatusCode::BAD_REQUEST,
            format!(
                "expected {{\"{member}\": \"NAME\", ...}} (members: {})",
                allowed.join(", ")
            ),
        )));
    };
    let name = name.to_owned();
    if let Err(e) = name_ok(member, &name, MAX_NAME) {
        return Err(refuse(error(StatusCode::BAD_REQUEST, e)));
    }
    if name.starts_with("zt.") {
        return Err(refuse(error(
            StatusCode::BAD_REQUEST,
            format!("{member} names starting with `zt.` are the control plane's own"),
        )));
    }
    Ok((who, m, name))
}

async fn register_change(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let (who, m, actor) = match registration(
        &st,
        &headers,
        &body,
        "actor",
        &["actor", "spiffe_id", "token_ttl_s"],
    ) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let expires = match expiry(&m) {
        Ok(e) => e,
        Err(r) => return r.into_response(),
    };
    let spiffe_id = match spiffe_member(&st, &m) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let (token, h) = new_token();
    // The record first, under the write lock; the change only once it is sealed.
    let mut registry = st.registry.write().await;
    let brokers = st.brokers.read().await;
    if registry.is_active(&actor) {
        return error(
            StatusCode::CONFLICT,
            format!("agent {actor} is already registered"),
        );
    }
    if let Some(holder) = spiffe_id
        .as_ref()
        .and_then(|id| crate::brokers::spiffe_holder(&brokers, id))
    {
        return error(
            StatusCode::CONFLICT,
            format!(
                "SPIFFE ID {} already speaks for {holder}",
                spiffe_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(other) = spiffe_id
        .as_ref()
        .and_then(|id| registry.spiffe_actor(id.as_str()))
    {
        return error(
            StatusCode::CONFLICT,
            ControlPlaneError::SpiffeIdBound {
                spiffe_id: spiffe_id
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                actor: other.to_owned(),
            }
            .to_string(),
        );
    }
    let change = Change {
        event: Lifecycle::Register,
        agent: &actor,
        admin: &who,
        token: Some(&h),
        retired: None,
        expires_at_ms: expires,
        spiffe_id: spiffe_id.as_ref().map(SpiffeId::as_str),
    };
    let committed = match st.chain.append(change.decided(&st)).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the registration", &e),
    };
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_agent(
            &actor,
            &h,
            expires,
            spiffe_id.as_ref().map(SpiffeId::as_str),
        );
    match stored {
        Ok(()) => {}
        Err(ControlPlaneError::AgentExists(a)) => {
            return error(
                StatusCode::CONFLICT,
                format!("agent {a} is already registered"),
            )
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the registration is on record but state.db could not be written ({e}): agent {actor} is not registered; retry"),
            )
        }
    }
    registry.register(
        actor.clone(),
        h,
        expires,
        spiffe_id.as_ref().map(ToString::to_string),
    );
    drop(registry);
    let mut fields = token_fields(&actor, &token, &h, expires);
    if let Some(id) = &spiffe_id {
        fields["spiffe_id"] = id.to_string().into();
    }
    changed(StatusCode::CREATED, fields, &committed)
}

/// The optional `spiffe_id` of a registration, checked as the SPIFFE ID specification says,
/// in a trust domain this control plane holds a bundle of: an ID no SVID could ever prove is
/// refused now rather than bound to an agent nobody can be.
pub(crate) fn spiffe_member(
    st: &Shared,
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<SpiffeId>, Reject> {
    let id = match m.get("spiffe_id") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) => SpiffeId::parse(s).map_err(|e| {
            Reject(
                StatusCode::BAD_REQUEST,
                format!("`spiffe_id` is not a workload's SPIFFE ID: {e}"),
            )
        })?,
        Some(_) => {
            return Err(Reject(
                StatusCode::BAD_REQUEST,
                "`spiffe_id` must be a string".into(),
            ))
        }
    };
    let td = id.trust_domain();
    match st.tls.as_ref().and_then(|t| t.trust_bundles()) {
        None => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!(
                "`spiffe_id` {}: this control plane asks for no client certificates (start it with --client-ca or --trust-bundle spiffe://{}=FILE), so no SVID could speak for it",
                zt_core::text::escape(id.as_str()),
                zt_core::text::escape(td)
            ),
        )),
        Some(b) if !b.holds(td) => Err(Reject(
            StatusCode::BAD_REQUEST,
            format!(
                "`spiffe_id` {}: trust domain {} has no bundle here (held: {}); add --trust-bundle spiffe://{}=FILE",
                zt_core::text::escape(id.as_str()),
                zt_core::text::escape(td),
                b.trust_domains()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                zt_core::text::escape(td)
            ),
        )),
        Some(_) => Ok(Some(id)),
    }
}

pub(crate) async fn rotate(
    State(st): St,
    headers: HeaderMap,
    Path(actor): Path<String>,
    body: Bytes,
) -> Response {
    crate::server::to_completion(rotate_change(State(st), headers, Path(actor), body)).await
}

async fn rotate_change(
    State(st): St,
    headers: HeaderMap,
    Path(actor): Path<String>,
    body: Bytes,
) -> Response {
    let who = match admin(&st, &headers) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let m = match admin_json(&headers, &body, &["token_ttl_s"]) {
        Ok(m) => m,
        Err(r) => return r.into_response(),
    };
    let expires = match expiry(&m) {
        Ok(e) => e,
        Err(r) => return r.into_response(),
    };
    let mut registry = st.registry.write().await;
    let Some(old) = registry.token_of(&actor) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no agent {actor} is registered (or it was revoked)"),
        );
    };
    let (token, h) = new_token();
    let change = Change {
        event: Lifecycle::Rotate,
        agent: &actor,
        admin: &who,
        token: Some(&h),
        retired: Some(&old),
        expires_at_ms: expires,
        spiffe_id: None,
    };
    let committed = match st.chain.append(change.decided(&st)).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the rotation", &e),
    };
    let at = Timestamp::now().to_rfc3339_millis();
    // On record: the old token stops now, even if state.db cannot be written (then only
    // until a restart, and the answer says so).
    registry.rotate(&actor, h, expires, &at);
    drop(registry);
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .rotate_token(&actor, &h, expires, &at);
    if let Err(e) = stored {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the rotation is on record and the old token no longer authenticates, but state.db could not be written ({e}): after a restart the old token would work again; rotate again once the disk is fixed"),
        );
    }
    changed(
        StatusCode::OK,
        token_fields(&actor, &token, &h, expires),
        &committed,
    )
}

pub(crate) async fn revoke(
    State(st): St,
    headers: HeaderMap,
    Path(actor): Path<String>,
) -> Response {
    crate::server::to_completion(revoke_change(State(st), headers, Path(actor))).await
}

async fn revoke_change(State(st): St, headers: HeaderMap, Path(actor): Path<String>) -> Response {
    let who = match admin(&st, &headers) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let mut registry = st.registry.write().await;
    let Some(old) = registry.token_of(&actor) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no agent {actor} is registered (or it was revoked already)"),
        );
    };
    let change = Change {
        event: Lifecycle::Revoke,
        agent: &actor,
        admin: &who,
        token: None,
        retired: Some(&old),
        expires_at_ms: None,
        spiffe_id: None,
    };
    let committed = match st.chain.append(change.decided(&st)).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the revocation", &e),
    };
    let at = Timestamp::now().to_rfc3339_millis();
    registry.revoke(&actor, &at);
    drop(registry);
    st.limiter.forget(&actor);
    let stored = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .revoke_agent(&actor, &at);
    if let Err(e) = stored {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the revocation is on record and in effect, but state.db could not be written ({e}): after a restart the agent's token would work again; revoke again once the disk is fixed"),
        );
    }
    changed(
        StatusCode::OK,
        serde_json::json!({"actor": actor, "revoked_at": at, "retired_token_id": token_id(&old)}),
        &committed,
    )
}

pub(crate) async fn list(State(st): St, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    let actors = st.registry.read().await.actors();
    json_response(StatusCode::OK, serde_json::json!({"agents": actors}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_rotate_and_retire() {
        let mut r = Registry::default();
        let t1 = Hash32::digest(b"t1");
        r.register("a".into(), t1, Some(1_000), None);
        assert_eq!(r.classify(Some("t1"), 999), Auth::Agent("a".into()));
        assert!(matches!(
            r.classify(Some("t1"), 1_000),
            Auth::Expired { at_ms: 1_000, .. }
        ));
        r.rotate("a", Hash32::digest(b"t2"), None, "T");
        assert!(matches!(
            r.classify(Some("t1"), 0),
            Auth::Retired {
                why: Retired::Rotated,
                ..
            }
        ));
        assert_eq!(r.classify(Some("t2"), i64::MAX), Auth::Agent("a".into()));
        r.revoke("a", "T2");
        assert!(matches!(
            r.classify(Some("t2"), 0),
            Auth::Retired {
                why: Retired::Revoked,
                ..
            }
        ));
        assert!(!r.is_active("a"));
        assert_eq!(r.revoked_at("a"), Some("T2"));
        assert_eq!(r.classify(Some("nope"), 0), Auth::Unknown);
        assert_eq!(r.classify(None, 0), Auth::Missing);
        // registered again
        r.register("a".into(), Hash32::digest(b"t3"), None, None);
        assert!(r.is_active("a") && r.revoked_at("a").is_none());
    }
}
