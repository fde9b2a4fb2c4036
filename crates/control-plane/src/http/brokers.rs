//! `POST /brokers`, `GET /brokers`, `DELETE /brokers/{name}`: execution brokers, registered
//! with their keys ([`crate::domain::brokers`]). As for agents, the record is sealed first,
//! under the brokers' write lock, and the change takes effect only once it is committed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use zt_core::capability::report::{broker_key_id, BrokerKey};
use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;
use zt_tls::SpiffeId;

use crate::db::StoredBroker;
use crate::domain::brokers::{self, spiffe_holder, Broker};
use crate::domain::record::Stamp;
use crate::error::RequestError;
use crate::http::agents::{registration, spiffe_member};
use crate::http::extract::{admin, St};
use crate::http::reply::{changed, json_object, to_completion, unrecorded, Reject};
use crate::shared::Shared;
use crate::util::{random_hex, text, token_hash, token_id};

pub(crate) async fn register(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    to_completion(register_change(st, headers, body)).await
}

/// The broker's name, key and SPIFFE ID from a registration, and who registers it.
fn read_registration(
    st: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, BrokerKey, Option<SpiffeId>), Reject> {
    let allowed = &["name", "public_key", "spiffe_id"];
    let (who, m, name) = registration(st, headers, body, "name", allowed)?;
    let key = m
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or(RequestError::PublicKeyMissing)?;
    let key = brokers::public_key(key)?;
    let spiffe_id = spiffe_member(st, &m)?;
    let key = BrokerKey {
        broker: name,
        key_id: broker_key_id(&key),
        public_key: key,
    };
    Ok((who, key, spiffe_id))
}

async fn register_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Reject> {
    let (who, key, spiffe_id) = read_registration(&st, &headers, &body)?;
    let name = key.broker.clone();
    let spiffe = spiffe_id.as_ref().map(SpiffeId::as_str);
    let token = format!("ztbr_{}", random_hex(24));
    let h = token_hash(&token);
    // An SVID speaks for one principal: not an agent and a broker at once. The registry is
    // read before the brokers are written (the order every route takes them in).
    let registry = st.registry.read().await;
    let mut brokers = st.brokers.write().await;
    let conflict = |m: String| Err(Reject::new(StatusCode::CONFLICT, m));
    if brokers.get(&name).is_some() {
        return conflict(format!("broker {name} is already registered"));
    }
    if let Some(holder) = spiffe.and_then(|id| spiffe_holder(&registry, &brokers, id)) {
        let id = spiffe.unwrap_or_default();
        return conflict(format!("SPIFFE ID {id} already speaks for {holder}"));
    }
    drop(registry);
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    let decided = brokers::registration(&stamp, &who, &key, &h, spiffe);
    let committed = st
        .chain
        .append(decided)
        .await
        .map_err(|e| unrecorded("the registration", &e))?;
    let stored = StoredBroker {
        key: key.clone(),
        token_sha256: h,
        spiffe_id: spiffe.map(str::to_owned),
        revoked_at: None,
    };
    if let Err(e) = st.db().add_broker(&stored) {
        return Err(Reject::unavailable(format!("the registration is on record but state.db could not be written ({e}): broker {name} is not registered; retry")));
    }
    brokers.add(Broker {
        key: key.clone(),
        token: h,
        spiffe_id: stored.spiffe_id,
    });
    drop(brokers);
    let mut fields = Map::new();
    fields.push("name".into(), text(name));
    fields.push("key_id".into(), text(key.key_id));
    fields.push("token".into(), text(token));
    fields.push("token_id".into(), text(token_id(&h)));
    if let Some(id) = spiffe {
        fields.push("spiffe_id".into(), text(id));
    }
    Ok(changed(StatusCode::CREATED, fields, &committed))
}

pub(crate) async fn list(State(st): St, headers: HeaderMap) -> Result<Response, Reject> {
    admin(&st, &headers)?;
    let brokers = st.brokers.read().await;
    let list = brokers.active().into_iter().map(|b| {
        let mut m = Map::new();
        m.push("name".into(), text(b.key.broker.as_str()));
        m.push("key_id".into(), text(b.key.key_id.as_str()));
        let spiffe_id = b.spiffe_id.as_deref().map_or(Value::Null, text);
        m.push("spiffe_id".into(), spiffe_id);
        m.push("token_id".into(), text(token_id(&b.token)));
        Value::Object(m)
    });
    let mut body = Map::new();
    body.push("brokers".into(), Value::Array(list.collect()));
    Ok(json_object(StatusCode::OK, body))
}

pub(crate) async fn revoke(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    to_completion(revoke_change(st, headers, name)).await
}

async fn revoke_change(
    st: Arc<Shared>,
    headers: HeaderMap,
    name: String,
) -> Result<Response, Reject> {
    let who = admin(&st, &headers)?;
    let mut brokers = st.brokers.write().await;
    let Some(b) = brokers.get(&name).cloned() else {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!(
                "no broker {} is registered (or it was revoked)",
                zt_core::text::escape(&name)
            ),
        ));
    };
    let engine = st.engine();
    let stamp = Stamp {
        policy_version: engine.version(),
        broker: &st.broker,
    };
    let committed = st
        .chain
        .append(brokers::revocation(&stamp, &who, &b))
        .await
        .map_err(|e| unrecorded("the revocation", &e))?;
    let at = Timestamp::now().to_rfc3339_millis();
    brokers.revoke(&name, &at);
    drop(brokers);
    if let Err(e) = st.db().revoke_broker(&name, &at) {
        return Err(Reject::unavailable(format!("the revocation of broker {name} is on record and in effect, but state.db could not be written ({e}): after a restart it would authenticate again; revoke again once the disk is fixed")));
    }
    let mut fields = Map::new();
    fields.push("name".into(), text(name));
    fields.push("revoked_at".into(), text(at));
    Ok(changed(StatusCode::OK, fields, &committed))
}
