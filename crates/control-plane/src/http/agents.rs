//! `POST /agents`, `GET /agents`, `POST /agents/{actor}/token`, `DELETE /agents/{actor}`.
//!
//! Each change seals its record first, holding the registry's write lock, and changes
//! `state.db` and the registry only once it is committed: nothing changes that is not on
//! record, and no decision made with a retired token is stamped after its retirement
//! (decisions hold the read lock from authentication to their place in the writer's queue,
//! and one writer stamps both chains). The records are
//! [`crate::domain::agents::Change`]s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_tls::SpiffeId;

use crate::domain::agents::{Change, Lifecycle, Registry, MAX_TOKEN_TTL_S};
use crate::domain::brokers::{spiffe_holder, Brokers, Holder};
use crate::domain::names::{name_ok, MAX_NAME, OWN_PREFIX};
use crate::domain::record::Stamp;
use crate::error::{ControlPlaneError, RequestError};
use crate::http::extract::{admin, admin_object_or_empty, St};
use crate::http::reply::{changed, json_object, to_completion, unrecorded, Reject};
use crate::shared::Shared;
use crate::util::{now_ms, random_hex, rfc3339_ms, text, token_hash, token_id};

/// The members `POST /agents` takes.
const REGISTER: &[&str] = &["actor", "spiffe_id", "token_ttl_s"];

/// The common start of a registration (an agent's, a broker's): an admin, a JSON body with
/// only `allowed` members, and the principal's name in `member`: a valid name outside the
/// control plane's `zt.` namespace. (who, body, name).
pub(crate) fn registration(
    st: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    member: &'static str,
    allowed: &'static [&'static str],
) -> Result<(String, Map, String), Reject> {
    let who = admin(st, headers)?;
    let m = admin_object_or_empty(headers, body, allowed)?;
    let Some(name) = m.get(member).and_then(Value::as_str) else {
        return Err(RequestError::MissingName { member, allowed }.into());
    };
    let name = name.to_owned();
    name_ok(member, &name, MAX_NAME)?;
    if name.starts_with(OWN_PREFIX) {
        return Err(RequestError::OwnName { member }.into());
    }
    Ok((who, m, name))
}

/// The optional `spiffe_id` of a registration, checked as the SPIFFE ID specification says,
/// in a trust domain this control plane holds a bundle of: an ID no SVID could ever prove is
/// refused now rather than bound to an agent nobody can be.
pub(crate) fn spiffe_member(st: &Shared, m: &Map) -> Result<Option<SpiffeId>, RequestError> {
    let id = match m.get("spiffe_id") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => SpiffeId::parse(s).map_err(RequestError::SpiffeId)?,
        Some(_) => return Err(RequestError::SpiffeIdNotString),
    };
    let td = id.trust_domain();
    let escaped = || {
        (
            zt_core::text::escape(id.as_str()).into_owned(),
            zt_core::text::escape(td).into_owned(),
        )
    };
    match st.tls.as_ref().and_then(|t| t.trust_bundles()) {
        None => {
            let (id, trust_domain) = escaped();
            Err(RequestError::NoClientCertificates { id, trust_domain })
        }
        Some(b) if !b.holds(td) => {
            let (id, trust_domain) = escaped();
            let held: Vec<String> = b.trust_domains().iter().map(ToString::to_string).collect();
            Err(RequestError::UnheldTrustDomain {
                id,
                trust_domain,
                held: held.join(", "),
            })
        }
        Some(_) => Ok(Some(id)),
    }
}

/// `token_ttl_s`: when the token stops authenticating, if it does.
fn expiry(m: &Map) -> Result<Option<i64>, RequestError> {
    let Some(v) = m.get("token_ttl_s") else {
        return Ok(None);
    };
    #[allow(clippy::cast_precision_loss, reason = "the limit is far below 2^53")]
    let max = MAX_TOKEN_TTL_S as f64;
    match v {
        Value::Number(n) if n.fract() == 0.0 && (1.0..=max).contains(n) => {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked: whole, from 1 to the limit"
            )]
            let s = *n as u64;
            let ms = i64::try_from(s * 1000).unwrap_or(i64::MAX);
            Ok(Some(now_ms().saturating_add(ms)))
        }
        _ => Err(RequestError::TokenTtl {
            max: MAX_TOKEN_TTL_S,
        }),
    }
}

fn new_token() -> (String, Hash32) {
    let token = format!("ztcp_{}", random_hex(24));
    let h = token_hash(&token);
    (token, h)
}

fn token_fields(actor: &str, token: &str, h: &Hash32, expires: Option<i64>) -> Map {
    let mut m = Map::new();
    m.push("actor".into(), text(actor));
    m.push("token".into(), text(token));
    m.push("token_id".into(), text(token_id(h)));
    if let Some(ms) = expires {
        m.push("token_expires_at".into(), text(rfc3339_ms(ms)));
    }
    m
}

/// Seals `change` with the policy version in force.
async fn seal(st: &Shared, change: &Change<'_>) -> Result<crate::chain::Committed, Reject> {
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    let what = match change.event {
        Lifecycle::Register => "the registration",
        Lifecycle::Rotate => "the rotation",
        Lifecycle::Revoke => "the revocation",
    };
    st.chain
        .append(change.decided(&stamp))
        .await
        .map_err(|e| unrecorded(what, &e))
}

pub(crate) async fn register(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    to_completion(register_change(st, headers, body)).await
}

/// Whether `actor` may be registered, bound to `spiffe_id`: not while it is active, nor
/// while another principal holds the ID.
fn conflict(
    registry: &Registry,
    brokers: &Brokers,
    actor: &str,
    spiffe_id: Option<&SpiffeId>,
) -> Result<(), Reject> {
    let refuse = |m: String| Err(Reject::new(StatusCode::CONFLICT, m));
    if registry.is_active(actor) {
        return refuse(format!("agent {actor} is already registered"));
    }
    let Some(id) = spiffe_id else {
        return Ok(());
    };
    match spiffe_holder(registry, brokers, id.as_str()) {
        None => Ok(()),
        Some(h @ Holder::Broker(_)) => refuse(format!("SPIFFE ID {id} already speaks for {h}")),
        Some(Holder::Agent(actor)) => refuse(
            ControlPlaneError::SpiffeIdBound {
                spiffe_id: id.to_string(),
                actor,
            }
            .to_string(),
        ),
    }
}

async fn register_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let (who, m, actor) = registration(&st, &headers, &body, "actor", REGISTER)?;
    let expires = expiry(&m)?;
    let spiffe_id = spiffe_member(&st, &m)?;
    let spiffe = spiffe_id.as_ref().map(SpiffeId::as_str);
    let (token, h) = new_token();
    // The record first, under the write lock; the change only once it is sealed.
    let mut registry = st.registry.write().await;
    let brokers = st.brokers.read().await;
    conflict(&registry, &brokers, &actor, spiffe_id.as_ref())?;
    let change = Change {
        event: Lifecycle::Register,
        agent: &actor,
        admin: &who,
        token: Some(&h),
        retired: None,
        expires_at_ms: expires,
        spiffe_id: spiffe,
    };
    let committed = seal(&st, &change).await?;
    match st.db().add_agent(&actor, &h, expires, spiffe) {
        Ok(()) => {}
        Err(ControlPlaneError::AgentExists(a)) => {
            return Err(Reject::new(
                StatusCode::CONFLICT,
                format!("agent {a} is already registered"),
            ))
        }
        Err(e) => return Err(Reject::unavailable(format!("the registration is on record but state.db could not be written ({e}): agent {actor} is not registered; retry"))),
    }
    registry.register(actor.clone(), h, expires, spiffe.map(str::to_owned));
    drop(registry);
    drop(brokers);
    let mut fields = token_fields(&actor, &token, &h, expires);
    if let Some(id) = spiffe {
        fields.push("spiffe_id".into(), text(id));
    }
    Ok(changed(StatusCode::CREATED, fields, &committed))
}

pub(crate) async fn rotate(
    State(st): St,
    headers: HeaderMap,
    Path(actor): Path<String>,
    body: Bytes,
) -> Response {
    to_completion(rotate_change(st, headers, actor, body)).await
}

async fn rotate_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    actor: String,
    body: Bytes,
) -> Result<Response, Reject> {
    let who = admin(&st, &headers)?;
    let m = admin_object_or_empty(&headers, &body, &["token_ttl_s"])?;
    let expires = expiry(&m)?;
    let mut registry = st.registry.write().await;
    let Some(old) = registry.token_of(&actor) else {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!("no agent {actor} is registered (or it was revoked)"),
        ));
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
    let committed = seal(&st, &change).await?;
    let at = Timestamp::now().to_rfc3339_millis();
    // On record: the old token stops now, even if state.db cannot be written (then only
    // until a restart, and the answer says so).
    registry.rotate(&actor, h, expires, &at);
    drop(registry);
    if let Err(e) = st.db().rotate_token(&actor, &h, expires, &at) {
        return Err(Reject::unavailable(format!("the rotation is on record and the old token no longer authenticates, but state.db could not be written ({e}): after a restart the old token would work again; rotate again once the disk is fixed")));
    }
    let fields = token_fields(&actor, &token, &h, expires);
    Ok(changed(StatusCode::OK, fields, &committed))
}

pub(crate) async fn revoke(
    State(st): St,
    headers: HeaderMap,
    Path(actor): Path<String>,
) -> Response {
    to_completion(revoke_change(st, headers, actor)).await
}

async fn revoke_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    actor: String,
) -> Result<Response, Reject> {
    let who = admin(&st, &headers)?;
    let mut registry = st.registry.write().await;
    let Some(old) = registry.token_of(&actor) else {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!("no agent {actor} is registered (or it was revoked already)"),
        ));
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
    let committed = seal(&st, &change).await?;
    let at = Timestamp::now().to_rfc3339_millis();
    registry.revoke(&actor, &at);
    drop(registry);
    st.limiter.forget(&actor);
    if let Err(e) = st.db().revoke_agent(&actor, &at) {
        return Err(Reject::unavailable(format!("the revocation is on record and in effect, but state.db could not be written ({e}): after a restart the agent's token would work again; revoke again once the disk is fixed")));
    }
    let mut fields = Map::new();
    fields.push("actor".into(), text(actor));
    fields.push("revoked_at".into(), text(at));
    fields.push("retired_token_id".into(), text(token_id(&old)));
    Ok(changed(StatusCode::OK, fields, &committed))
}

pub(crate) async fn list(State(st): St, headers: HeaderMap) -> Result<Response, Reject> {
    admin(&st, &headers)?;
    let actors = st.registry.read().await.actors();
    let mut body = Map::new();
    body.push(
        "agents".into(),
        Value::Array(actors.into_iter().map(Value::String).collect()),
    );
    Ok(json_object(StatusCode::OK, body))
}
