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
//! takes effect only once it is committed (the routes: `crate::http::brokers`).

use std::collections::HashMap;

use zt_core::capability::report::{BrokerKey, REGISTER_ACTION, REVOKE_ACTION};
use zt_core::crypto::PublicKey;
use zt_core::Hash32;

use crate::chain::{Decided, Lane};
use crate::db::StoredBroker;
use crate::domain::agents::Registry;
use crate::domain::record::Stamp;
use crate::error::RequestError;
use crate::util::{text, token_hash, token_id};

/// A registered, active broker.
#[derive(Debug, Clone)]
pub(crate) struct Broker {
    pub key: BrokerKey,
    pub token: Hash32,
    pub spiffe_id: Option<String>,
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

    pub(crate) fn add(&mut self, broker: Broker) {
        let name = broker.key.broker.clone();
        self.revoked.remove(&name);
        self.by_token.insert(broker.token, name.clone());
        if let Some(id) = &broker.spiffe_id {
            self.by_spiffe.insert(id.clone(), name.clone());
        }
        self.active.insert(name, broker);
    }

    pub(crate) fn revoke(&mut self, name: &str, at: &str) {
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

    /// The active brokers, by name.
    pub(crate) fn active(&self) -> Vec<&Broker> {
        let mut active: Vec<&Broker> = self.active.values().collect();
        active.sort_by(|a, b| a.key.broker.cmp(&b.key.broker));
        active
    }
}

/// Who an SVID with this SPIFFE ID already speaks for: one principal, an agent or a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The agent of this name.
    Agent(String),
    /// The broker of this name.
    Broker(String),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Agent(a) => write!(f, "agent {a}"),
            Self::Broker(b) => write!(f, "broker {b}"),
        }
    }
}

/// Who holds `id` (an agent first), if anyone.
pub(crate) fn spiffe_holder(registry: &Registry, brokers: &Brokers, id: &str) -> Option<Holder> {
    if let Some(a) = registry.spiffe_actor(id) {
        return Some(Holder::Agent(a.to_owned()));
    }
    brokers
        .by_spiffe(id)
        .map(|b| Holder::Broker(b.key.broker.clone()))
}

/// The public key of a registration: PEM (SPKI) or hex SEC1.
pub(crate) fn public_key(text: &str) -> Result<PublicKey, RequestError> {
    if text.contains("-----BEGIN") {
        PublicKey::from_pem(text).map_err(RequestError::PublicKey)
    } else {
        let bytes = hex::decode(text.trim()).map_err(RequestError::PublicKeyHex)?;
        PublicKey::from_sec1(&bytes).map_err(RequestError::PublicKey)
    }
}

/// The record of a broker's registration, with its key (`zt.broker.register`).
pub(crate) fn registration(
    stamp: &Stamp<'_>,
    admin: &str,
    key: &BrokerKey,
    token: &Hash32,
    spiffe_id: Option<&str>,
) -> Decided {
    let name = &key.broker;
    let mut ctx = stamp.fresh_context("admin", admin);
    for (k, v) in key.context_members() {
        ctx.push(k.into(), v);
    }
    ctx.push("token_id".into(), text(token_id(token)));
    if let Some(id) = spiffe_id {
        ctx.push("spiffe_id".into(), text(id));
    }
    Decided {
        lane: Lane::Admin,
        actor: "zt.admin".into(),
        action: REGISTER_ACTION.into(),
        resource: format!("broker/{name}"),
        allow: true,
        reason: format!(
            "broker {name} registered with key {} and token {}: its signed execution reports are evidence of what ran",
            key.key_id,
            token_id(token)
        ),
        context: ctx,
    }
}

/// The record of a broker's revocation (`zt.broker.revoke`).
pub(crate) fn revocation(stamp: &Stamp<'_>, admin: &str, b: &Broker) -> Decided {
    let name = &b.key.broker;
    let mut ctx = stamp.fresh_context("admin", admin);
    ctx.push("broker_name".into(), text(name.as_str()));
    ctx.push("key_id".into(), text(b.key.key_id.as_str()));
    Decided {
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
    }
}
