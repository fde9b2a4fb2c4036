//! `POST /policies` (Cedar text, or a narrow allow rule), `GET /policies` (the set, or an
//! earlier version's), `DELETE /policies/{id}`. The engine is [`crate::policy`]; a change
//! applies a whole new set, kept in `state.db` with its version before it takes effect.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zt_core::json::{self, Map, Value};

use crate::domain::names::{name_ok, MAX_NAME, MAX_RESOURCE};
use crate::error::RequestError;
use crate::http::extract::{admin, admin_body, AdminBody, St};
use crate::http::reply::{json_object, Reject};
use crate::policy::{self, NarrowRule, PolicyEngine, PolicyEntry};
use crate::shared::Shared;
use crate::util::text;

fn policies_json(engine: &PolicyEngine) -> Map {
    let policies = engine.entries().iter().map(|e| {
        let mut m = Map::new();
        m.push("id".into(), text(e.id.as_str()));
        m.push("text".into(), text(e.text.as_str()));
        Value::Object(m)
    });
    let mut body = Map::new();
    body.push("version".into(), text(engine.version()));
    body.push("policies".into(), Value::Array(policies.collect()));
    body
}

/// Applies `added` (after the current ones) or answers why not.
fn apply(st: &Shared, added: Vec<PolicyEntry>) -> Result<Arc<PolicyEngine>, Reject> {
    let mut slot = st.engine_slot();
    let mut all = slot.entries().to_vec();
    for e in &added {
        if all.iter().any(|x| x.id == e.id) {
            return Err(Reject::new(
                StatusCode::CONFLICT,
                format!(
                    "policy id {} is already in the set (DELETE /policies/{} first)",
                    e.id, e.id
                ),
            ));
        }
        all.push(e.clone());
    }
    set_engine(st, &mut slot, all)
}

fn set_engine(
    st: &Shared,
    slot: &mut Arc<PolicyEngine>,
    entries: Vec<PolicyEntry>,
) -> Result<Arc<PolicyEngine>, Reject> {
    let engine = PolicyEngine::new(entries)?;
    st.db()
        .set_policies(engine.entries(), engine.version())
        .map_err(|e| Reject::unavailable(e.to_string()))?;
    let engine = Arc::new(engine);
    *slot = Arc::clone(&engine);
    Ok(engine)
}

/// A JSON policy body: `{"cedar": "..."}` or a narrow rule `{action, resource?, actor?,
/// reason?, id?}`.
fn parse_json(
    body: &[u8],
    fresh: impl FnMut() -> String,
) -> Result<Vec<PolicyEntry>, RequestError> {
    // The one strict reader every route uses: duplicates, lone surrogates and integers no
    // double holds are refused here as in `/actions`.
    let v = json::parse(body).map_err(RequestError::NotJson)?;
    let Value::Object(m) = v else {
        return Err(RequestError::NotObject {
            found: v.type_name(),
        });
    };
    let allowed: &'static [&'static str] = if m.contains_key("cedar") {
        &["cedar"]
    } else {
        &["action", "resource", "actor", "reason", "id"]
    };
    if let Some((k, _)) = m.iter().find(|(k, _)| !allowed.contains(k)) {
        return Err(RequestError::UnknownMember {
            member: zt_core::envelope::shorten(k),
            expected: allowed,
        });
    }
    let mut fields: HashMap<&str, String> = HashMap::new();
    for (k, v) in m.iter() {
        let Some(s) = v.as_str() else {
            return Err(RequestError::NotString {
                member: k.to_owned(),
                found: v.type_name(),
            });
        };
        // Names go into Cedar text and records: no control character (NUL included).
        if k != "cedar" && k != "reason" {
            let max = if k == "resource" {
                MAX_RESOURCE
            } else {
                MAX_NAME
            };
            if let Err(e) = name_ok(k, s, max) {
                if k != "resource" || !s.is_empty() {
                    return Err(e.into());
                }
            }
        }
        fields.insert(k, s.to_owned());
    }
    rule(fields, fresh)
}

/// The entries of a checked JSON policy body.
fn rule(
    mut fields: HashMap<&str, String>,
    mut fresh: impl FnMut() -> String,
) -> Result<Vec<PolicyEntry>, RequestError> {
    if let Some(cedar) = fields.remove("cedar") {
        return Ok(policy::parse_cedar(&cedar, fresh)?);
    }
    let action = fields.remove("action").ok_or(RequestError::NoRule)?;
    let rule = NarrowRule {
        action,
        resource: fields.remove("resource"),
        actor: fields.remove("actor"),
        reason: fields.remove("reason"),
    };
    let id = fields.remove("id").unwrap_or_else(&mut fresh);
    Ok(vec![policy::narrow_rule(&rule, &id)?])
}

pub(crate) async fn add(
    State(st): St,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    admin(&st, &headers)?;
    // Cedar text needs the custom header, so a cross-site form cannot post a policy.
    let is_json = admin_body(&headers)? == AdminBody::Json;
    let fresh = || format!("policy-{}", st.next_policy.fetch_add(1, Ordering::Relaxed));
    let body = std::str::from_utf8(&body).map_err(|_| RequestError::PolicyNotUtf8)?;
    let added = if is_json {
        parse_json(body.as_bytes(), fresh)?
    } else {
        policy::parse_cedar(body, fresh)?
    };
    let ids = added.iter().map(|e| Value::String(e.id.clone())).collect();
    let engine = apply(&st, added)?;
    let mut v = policies_json(&engine);
    v.push("ok".into(), Value::Bool(true));
    v.push("added".into(), Value::Array(ids));
    Ok(json_object(StatusCode::CREATED, v))
}

pub(crate) async fn get(
    State(st): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Reject> {
    admin(&st, &headers)?;
    let Some(version) = q.get("version") else {
        return Ok(json_object(StatusCode::OK, policies_json(&st.engine())));
    };
    let stored = st
        .db()
        .version_text(version)
        .map_err(|e| Reject::unavailable(e.to_string()))?;
    let Some(t) = stored else {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!("no policy set {version} on record"),
        ));
    };
    let mut body = Map::new();
    body.push("version".into(), text(version.as_str()));
    body.push(
        "policies".into(),
        json::parse(t.as_bytes()).unwrap_or(Value::Null),
    );
    Ok(json_object(StatusCode::OK, body))
}

pub(crate) async fn remove(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Reject> {
    admin(&st, &headers)?;
    let mut slot = st.engine_slot();
    let before = slot.entries().len();
    let rest: Vec<PolicyEntry> = slot
        .entries()
        .iter()
        .filter(|e| e.id != id)
        .cloned()
        .collect();
    if rest.len() == before {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!("no policy {id}"),
        ));
    }
    let engine = set_engine(&st, &mut slot, rest)?;
    let mut v = policies_json(&engine);
    v.push("ok".into(), Value::Bool(true));
    Ok(json_object(StatusCode::OK, v))
}
