//! `POST /capabilities` (admin: issue under Cedar), `DELETE /capabilities/{id}` (admin:
//! revoke), `GET /capabilities/{id}` (the agent the capability is bound to, a registered
//! broker, or an admin: 200 active, 410 revoked or expired, the body
//! [`zt_core::capability::standing::Standing::status_value`]). The rules and records are
//! [`crate::domain::capabilities`]'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zt_core::capability::standing::{Standing, State as CapState};
use zt_core::capability::{self, Capability, Grants};
use zt_core::json::{self, Map, Value};
use zt_core::time::Timestamp;

use crate::domain::asker::Caller;
use crate::domain::capabilities::{self as caps, Issuance, IssueRequest, MAX_CAPABILITY_TTL_S};
use crate::domain::names::{name_ok, resource_ok, MAX_NAME, OWN_PREFIX};
use crate::domain::record::Stamp;
use crate::error::RequestError;
use crate::http::extract::{admin, admin_object, caller, peer, string, whole, St};
use crate::http::reply::{error, json_bytes, to_completion, unrecorded, with_audit, Reject};
use crate::shared::Shared;
use crate::util::text;

/// The members `POST /capabilities` takes.
const ISSUE: &[&str] = &["actor", "action", "resource", "ttl_s", "grants"];

fn parse_issue(m: &Map) -> Result<IssueRequest, RequestError> {
    let actor = string(m, "actor")?.unwrap_or_default();
    name_ok("actor", &actor, MAX_NAME)?;
    let action = string(m, "action")?.unwrap_or_default();
    name_ok("action", &action, MAX_NAME)?;
    if action.starts_with(OWN_PREFIX) {
        return Err(RequestError::OwnAction);
    }
    let resource = string(m, "resource")?.unwrap_or_default();
    resource_ok(&resource)?;
    let ttl_s = match whole(m, "ttl_s", MAX_CAPABILITY_TTL_S)? {
        Some(t) if t >= 1 => t,
        _ => {
            return Err(RequestError::TtlRequired {
                max: MAX_CAPABILITY_TTL_S,
            })
        }
    };
    let grants = m.get("grants").ok_or(RequestError::GrantsMissing)?;
    let grants = Grants::from_value(grants).map_err(RequestError::Grants)?;
    // Grants are files: on this host, every path's text must be what it resolves to (the
    // broker checks again where the command runs; that is the check that counts).
    zt_broker::paths::check_on_host(&grants).map_err(RequestError::GrantPath)?;
    Ok(IssueRequest {
        actor,
        action,
        resource,
        ttl_s,
        grants,
    })
}

pub(crate) async fn issue(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    to_completion(issue_change(st, headers, body)).await
}

async fn issue_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let who = admin(&st, &headers)?;
    let m = admin_object(&headers, &body, ISSUE)?;
    let issuance = Issuance::new(parse_issue(&m)?);
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    // Decided and queued under the registry's read lock, as decisions are: a revocation of
    // the agent is before or after this issuance on record, never beside it.
    let registry = st.registry.read().await;
    let verdict = issuance.decide(registry.is_active(&issuance.req.actor), &engine);
    let pending = st.chain.enqueue(issuance.record(&stamp, &who, &verdict));
    drop(registry);
    let committed = match pending {
        Ok(p) => p.committed().await,
        Err(e) => Err(e),
    };
    let committed = committed.map_err(|e| unrecorded("the issuance", &e))?;
    if !verdict.allow {
        let mut fields = Map::new();
        fields.push("ok".into(), Value::Bool(false));
        fields.push("decision".into(), text("deny"));
        fields.push("reason".into(), text(verdict.reason));
        return Ok(with_audit(StatusCode::FORBIDDEN, fields, &committed));
    }
    let id = issuance.id.clone();
    let spec = issuance.spec(st.signer.key_id());
    let token = capability::issue(&spec, |d| st.signer.sign(d)).map_err(|e| {
        Reject::unavailable(format!("the issuance of {id} is on record but signing the token failed ({e}): no token was given; ask again"))
    })?;
    let cap = Capability::from(spec);
    let mut held = st.caps.write().await;
    if let Err(e) = st.db().add_capability(&cap, cap.not_after.unix_millis()) {
        return Err(Reject::unavailable(format!("the issuance of {id} is on record but state.db could not be written ({e}): no token was given; ask again")));
    }
    held.insert(&cap);
    drop(held);
    let mut fields = Map::new();
    fields.push("ok".into(), Value::Bool(true));
    fields.push("id".into(), text(id));
    fields.push("token".into(), text(token));
    fields.push("expires_at".into(), text(cap.not_after.to_rfc3339_millis()));
    fields.push("actor".into(), text(cap.actor.as_str()));
    fields.push("grants".into(), cap.grants.to_value());
    Ok(with_audit(StatusCode::CREATED, fields, &committed))
}

pub(crate) async fn revoke(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    to_completion(revoke_change(st, headers, id)).await
}

async fn revoke_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    id: String,
) -> Result<Response, Reject> {
    let who = admin(&st, &headers)?;
    // The record first, under the write lock; the revocation takes effect once it is sealed,
    // and no use is decided in between (uses hold the read lock until they are queued).
    let mut held = st.caps.write().await;
    let actor = match held.standing(&id, Timestamp::now()) {
        Standing::Unknown => {
            return Err(Reject::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no capability {} was issued here",
                    zt_core::text::escape(&id)
                ),
            ))
        }
        Standing::Revoked { at } => {
            return Err(Reject::new(
                StatusCode::CONFLICT,
                format!(
                    "capability {id} was revoked already, at {}",
                    at.to_rfc3339_millis()
                ),
            ))
        }
        Standing::Active { .. } | Standing::Expired { .. } => {
            held.actor_of(&id).unwrap_or_default().to_owned()
        }
    };
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    let committed = st
        .chain
        .append(caps::revocation(&stamp, &who, &id, &actor))
        .await
        .map_err(|e| unrecorded("the revocation", &e))?;
    let now = Timestamp::now();
    let at = now.to_rfc3339_millis();
    held.revoke(&id, now);
    drop(held);
    if let Err(e) = st.db().revoke_capability(&id, &at) {
        return Err(Reject::unavailable(format!("the revocation of {id} is on record and in effect, but state.db could not be written ({e}): after a restart it would be usable again; revoke again once the disk is fixed")));
    }
    let mut fields = Map::new();
    fields.push("ok".into(), Value::Bool(true));
    fields.push("id".into(), text(id));
    fields.push("revoked_at".into(), text(at));
    Ok(with_audit(StatusCode::OK, fields, &committed))
}

pub(crate) async fn status(
    State(st): St,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Reject> {
    let (parts, _) = req.into_parts();
    let who = caller(&st, &parts.headers, peer(&parts).as_ref()).await;
    let held = st.caps.read().await;
    match who {
        Caller::Refused(why) => return Err(Reject::new(StatusCode::UNAUTHORIZED, why)),
        Caller::Agent(a, _) if held.actor_of(&id).is_some_and(|b| b != a) => {
            return Err(Reject::new(
                StatusCode::FORBIDDEN,
                format!("capability {id} is not bound to agent {a}"),
            ))
        }
        _ => {}
    }
    let standing = held.standing(&id, Timestamp::now());
    Ok(match (standing.state(), standing.status_value(&id)) {
        (Some(state), Some(body)) => {
            let status = if state == CapState::Active {
                StatusCode::OK
            } else {
                StatusCode::GONE
            };
            json_bytes(status, json::canonicalize(&body))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            format!(
                "no capability {} was issued here",
                zt_core::text::escape(&id)
            ),
        ),
    })
}
