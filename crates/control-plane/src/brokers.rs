//! Execution brokers: principals of their own, the only ones whose execution reports count.
//!
//! A broker runs commands on agents' behalf and attests what ran. It is registered by an
//! admin with its P-256 public key (`POST /brokers {name, public_key, spiffe_id?}`) and gets a
//! bearer token (or speaks through an X.509-SVID bound to `spiffe_id`). The registration is a
//! sealed record on the control plane's own chain (`zt.broker.register`, context
//! `{broker_name, key_id, public_key, token_id, spiffe_id?}`), so whoever verifies the chains
//! under the control plane's keyring learns the broker's key from the evidence itself
//! ([`zt_core::capability::report::BrokerKey::of_registration`]). `DELETE /brokers/{name}`
//! seals `zt.broker.revoke`; from then on its token and SVID authenticate nobody.
//!
//! As for agents, the record is sealed first, under the brokers' write lock, and the change
//! takes effect only once it is committed.

use std::collections::HashMap;
use std::sync::PoisonError;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use zt_core::capability::report::{broker_key_id, BrokerKey, REGISTER_ACTION, REVOKE_ACTION};
use zt_core::crypto::PublicKey;
use zt_core::json::{Map, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_tls::SpiffeId;

use crate::agents::{changed, registration, spiffe_member, token_id, unrecorded};
use crate::chain::{Decided, Lane};
use crate::db::StoredBroker;
use crate::server::{admin, error, json_response, random_hex, read, token_hash, Shared, St};

/// A registered, active broker.
#[derive(Debug, Clone)]
pub(crate) struct Broker {
    pub key: BrokerKey,
    token: Hash32,
    spiffe_id: Option<String>,
}

/// The registered brokers.
#[derive(Debug, Default)]
pub(crate) struct Brokers {
    active: HashMap<String, Broker>,
    by_token: HashMap<Hash32, String>,
    by_spiffe: HashMap<String, String>,
    /// Revoked brokers and when.
    revoked: HashMap<String, String>,
}

impl Brokers {
    pub(crate) fn load(stored: Vec<StoredBroker>) -> Self {
        let mut b = Self::default();
        for s in stored {
            match s.revoked_at {
                Some(at) => {
                    b.revoked.insert(s.key.broker.clone(), at);
                }
                None => b.add(Broker {
                    key: s.key,
                    token: s.token_sha256,
                    spiffe_id: s.spiffe_id,
                }),
            }
        }
        b
    }

    fn add(&mut self, broker: Broker) {
        let name = broker.key.broker.clone();
        self.revoked.remove(&name);
        self.by_token.insert(broker.token, name.clone());
        if let Some(id) = &broker.spiffe_id {
            self.by_spiffe.insert(id.clone(), name.clone());
        }
        self.active.insert(name, broker);
    }

    fn revoke(&mut self, name: &str, at: &str) {
        if let Some(b) = self.active.remove(name) {
            self.by_token.remove(&b.token);
            if let Some(id) = &b.spiffe_id {
                self.by_spiffe.remove(id);
            }
            self.revoked.insert(name.to_owned(), at.to_owned());
        }
    }

    /// The active broker a bearer token speaks for.
    pub(crate) fn by_token(&self, token: &str) -> Option<&Broker> {
        self.by_token
            .get(&token_hash(token))
            .and_then(|n| self.active.get(n))
    }

    /// The active broker an X.509-SVID with this SPIFFE ID speaks for.
    pub(crate) fn by_spiffe(&self, id: &str) -> Option<&Broker> {
        self.by_spiffe.get(id).and_then(|n| self.active.get(n))
    }

    /// The active broker of this name.
    pub(crate) fn get(&self, name: &str) -> Option<&Broker> {
        self.active.get(name)
    }
}

fn base_context(st: &Shared, who: &str) -> Map {
    let s = |x: &str| Value::String(x.to_owned());
    let mut ctx = Map::new();
    ctx.push("request_id".into(), s(&format!("admin-{}", random_hex(12))));
    ctx.push("identity".into(), s(who));
    ctx.push("policy_version".into(), s(read(&st.engine).version()));
    ctx.push("broker".into(), s(&st.broker));
    ctx
}

/// The public key of a registration: PEM (SPKI) or hex SEC1.
fn public_key(m: &serde_json::Map<String, serde_json::Value>) -> Result<PublicKey, String> {
    let text = m
        .get("public_key")
        .and_then(serde_json::Value::as_str)
        .ok_or("`public_key` (the broker's P-256 public key, PEM) is required")?;
    let parsed = if text.contains("-----BEGIN") {
        PublicKey::from_pem(text).map_err(|e| e.to_string())
    } else {
        hex::decode(text.trim())
            .map_err(|e| e.to_string())
            .and_then(|b| PublicKey::from_sec1(&b).map_err(|e| e.to_string()))
    };
    parsed.map_err(|e| format!("`public_key` is not a P-256 public key: {e}"))
}

pub(crate) async fn register(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    crate::server::to_completion(register_change(State(st), headers, body)).await
}

async fn register_change(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let (who, m, name) = match registration(
        &st,
        &headers,
        &body,
        "name",
        &["name", "public_key", "spiffe_id"],
    ) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let key = match public_key(&m) {
        Ok(k) => k,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let spiffe_id = match spiffe_member(&st, &m) {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let key = BrokerKey {
        broker: name.clone(),
        key_id: broker_key_id(&key),
        public_key: key,
    };
    let token = format!("ztbr_{}", random_hex(24));
    let h = token_hash(&token);
    // An SVID speaks for one principal: not an agent and a broker at once. The registry is
    // read before the brokers are written (the order every route takes them in).
    let registry = st.registry.read().await;
    let mut brokers = st.brokers.write().await;
    if brokers.get(&name).is_some() {
        return error(
            StatusCode::CONFLICT,
            format!("broker {name} is already registered"),
        );
    }
    if let Some(id) = &spiffe_id {
        let agent = registry
            .spiffe_actor(id.as_str())
            .map(|a| format!("agent {a}"));
        let broker = brokers
            .by_spiffe(id.as_str())
            .map(|b| format!("broker {}", b.key.broker));
        if let Some(holder) = agent.or(broker) {
            return error(
                StatusCode::CONFLICT,
                format!("SPIFFE ID {id} already speaks for {holder}"),
            );
        }
    }
    drop(registry);
    let s = |x: &str| Value::String(x.to_owned());
    let mut ctx = base_context(&st, &who);
    for (k, v) in key.context_members() {
        ctx.push(k.into(), v);
    }
    ctx.push("token_id".into(), s(&token_id(&h)));
    if let Some(id) = &spiffe_id {
        ctx.push("spiffe_id".into(), s(id.as_str()));
    }
    let decided = Decided {
        lane: Lane::Admin,
        actor: "zt.admin".into(),
        action: REGISTER_ACTION.into(),
        resource: format!("broker/{name}"),
        allow: true,
        reason: format!(
            "broker {name} registered with key {} and token {}: its signed execution reports are evidence of what ran",
            key.key_id,
            token_id(&h)
        ),
        context: ctx,
    };
    let committed = match st.chain.append(decided).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the registration", &e),
    };
    let stored = StoredBroker {
        key: key.clone(),
        token_sha256: h,
        spiffe_id: spiffe_id.as_ref().map(ToString::to_string),
        revoked_at: None,
    };
    if let Err(e) = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .add_broker(&stored)
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the registration is on record but state.db could not be written ({e}): broker {name} is not registered; retry"),
        );
    }
    brokers.add(Broker {
        key: key.clone(),
        token: h,
        spiffe_id: stored.spiffe_id.clone(),
    });
    drop(brokers);
    let mut fields = serde_json::json!({
        "name": name,
        "key_id": key.key_id,
        "token": token,
        "token_id": token_id(&h),
    });
    if let Some(id) = &spiffe_id {
        fields["spiffe_id"] = id.to_string().into();
    }
    changed(StatusCode::CREATED, fields, &committed)
}

pub(crate) async fn list(State(st): St, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&st, &headers) {
        return r.into_response();
    }
    let brokers = st.brokers.read().await;
    let mut active: Vec<&Broker> = brokers.active.values().collect();
    active.sort_by(|a, b| a.key.broker.cmp(&b.key.broker));
    let list: Vec<serde_json::Value> = active
        .iter()
        .map(|b| {
            serde_json::json!({
                "name": b.key.broker,
                "key_id": b.key.key_id,
                "spiffe_id": b.spiffe_id,
                "token_id": token_id(&b.token),
            })
        })
        .collect();
    json_response(StatusCode::OK, serde_json::json!({"brokers": list}))
}

pub(crate) async fn revoke(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    crate::server::to_completion(revoke_change(State(st), headers, Path(name))).await
}

async fn revoke_change(State(st): St, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let who = match admin(&st, &headers) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let mut brokers = st.brokers.write().await;
    let Some(b) = brokers.get(&name).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no broker {} is registered (or it was revoked)",
                zt_core::text::escape(&name)
            ),
        );
    };
    let mut ctx = base_context(&st, &who);
    ctx.push("broker_name".into(), Value::String(name.clone()));
    ctx.push("key_id".into(), Value::String(b.key.key_id.clone()));
    let decided = Decided {
        lane: Lane::Admin,
        actor: "zt.admin".into(),
        action: REVOKE_ACTION.into(),
        resource: format!("broker/{name}"),
        allow: true,
        reason: format!(
            "broker {name} revoked: its token {} and key {} attest nothing from now on",
            token_id(&b.token),
            b.key.key_id
        ),
        context: ctx,
    };
    let committed = match st.chain.append(decided).await {
        Ok(c) => c,
        Err(e) => return unrecorded("the revocation", &e),
    };
    let at = Timestamp::now().to_rfc3339_millis();
    brokers.revoke(&name, &at);
    drop(brokers);
    if let Err(e) = st
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .revoke_broker(&name, &at)
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the revocation of broker {name} is on record and in effect, but state.db could not be written ({e}): after a restart it would authenticate again; revoke again once the disk is fixed"),
        );
    }
    changed(
        StatusCode::OK,
        serde_json::json!({"name": name, "revoked_at": at}),
        &committed,
    )
}

/// Whether `id` may be bound to a new agent: not while a broker holds it.
pub(crate) fn spiffe_holder(brokers: &Brokers, id: &SpiffeId) -> Option<String> {
    brokers
        .by_spiffe(id.as_str())
        .map(|b| format!("broker {}", b.key.broker))
}
