//! Who is asking: a verified X.509-SVID (over mTLS, the transport's [`PeerIdentity`]) outranks
//! any bearer token; a token speaks for the agent or broker it was given to, or for nobody,
//! saying why (expired, rotated, revoked, unknown); open mode trusts loopback.

use zt_core::capability::report::BrokerKey;
use zt_core::json::{Map, Value};
use zt_core::Hash32;
use zt_tls::PeerIdentity;

use crate::db::Retired;
use crate::domain::agents::{Auth, Registry};
use crate::domain::brokers::Brokers;
use crate::util::{now_ms, rfc3339_ms, text, token_hash};

/// Who is asking `/actions`, and whether that alone refuses the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asker {
    /// The envelope's `context.identity`.
    pub identity: String,
    /// Why the request is refused before any policy, if it is.
    pub refusal: Option<Refusal>,
}

/// A refusal on who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The asker authenticated as nobody (no, an expired, retired or unknown token; a
    /// refused client certificate).
    Unauthenticated(String),
    /// The asker authenticated, but not as the actor the request names (or as no agent).
    NotTheActor(String),
}

impl Refusal {
    /// The deny's reason.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Unauthenticated(r) | Self::NotTheActor(r) => r,
        }
    }
}

impl Asker {
    /// Whether the asker authenticated as nobody.
    pub(crate) fn is_unauthenticated(&self) -> bool {
        matches!(self.refusal, Some(Refusal::Unauthenticated(_)))
    }
}

/// Who a token says is asking for `claimed`, and whether that already refuses the request.
pub(crate) fn by_token(auth: &Auth, claimed: &str, open: bool) -> Asker {
    let identity = auth.identity(open);
    let refusal = match auth {
        Auth::Agent(a) if a == claimed => None,
        Auth::Agent(a) => Some(Refusal::NotTheActor(format!(
            "token speaks for agent {a}, not {claimed}: actor mismatch"
        ))),
        Auth::Expired { actor, at_ms } => Some(Refusal::Unauthenticated(format!(
            "token expired at {}: it no longer authenticates agent {actor} (an admin rotates it: POST /agents/{actor}/token)",
            rfc3339_ms(*at_ms)
        ))),
        Auth::Retired {
            actor,
            why: Retired::Rotated,
            at,
        } => Some(Refusal::Unauthenticated(format!(
            "token was rotated at {at}: it no longer authenticates agent {actor}"
        ))),
        Auth::Retired {
            actor,
            why: Retired::Revoked,
            at,
        } => Some(Refusal::Unauthenticated(format!(
            "agent {actor} was revoked at {at}: its token no longer authenticates"
        ))),
        Auth::Unknown => Some(Refusal::Unauthenticated(
            "bearer token is not valid".to_owned(),
        )),
        Auth::Missing if open => None,
        Auth::Missing => Some(Refusal::Unauthenticated(
            "no bearer token: an agent must authenticate as its actor".to_owned(),
        )),
    };
    Asker { identity, refusal }
}

/// Who is asking when the connection presented a client certificate; `None` without one
/// (tokens decide). An SVID outranks any token.
pub(crate) fn by_svid(
    registry: &Registry,
    peer: Option<&PeerIdentity>,
    actor: &str,
) -> Option<Asker> {
    let asker = |identity: String, refusal| Asker { identity, refusal };
    match peer? {
        PeerIdentity::Anonymous => None,
        PeerIdentity::Spiffe(id) => Some(match registry.spiffe_actor(id.as_str()) {
            Some(a) if a == actor => asker(id.to_string(), None),
            Some(a) => asker(
                id.to_string(),
                Some(Refusal::NotTheActor(format!(
                    "SVID {id} speaks for agent {a}, not {actor}: actor mismatch"
                ))),
            ),
            None => asker(
                id.to_string(),
                Some(Refusal::NotTheActor(format!(
                    "SVID {id} is bound to no agent"
                ))),
            ),
        }),
        PeerIdentity::Refused(why) => Some(asker(
            "unauthenticated".to_owned(),
            Some(Refusal::Unauthenticated(format!(
                "client certificate refused: {why}"
            ))),
        )),
    }
}

/// How the asker authenticated, as Cedar sees it in `context.identity` (a member no agent may
/// write): `{kind: "svid", spiffe_id, trust_domain}`, `{kind: "token"}`, or `{kind: "open"}`,
/// so a policy can ask for an SVID, or an SVID of one trust domain.
pub(crate) fn cedar_identity(peer: Option<&PeerIdentity>, open: bool) -> Value {
    let mut m = Map::new();
    match peer {
        Some(PeerIdentity::Spiffe(id)) => {
            m.push("kind".into(), text("svid"));
            m.push("spiffe_id".into(), text(id.as_str()));
            m.push("trust_domain".into(), text(id.trust_domain()));
        }
        _ if open => m.push("kind".into(), text("open")),
        _ => m.push("kind".into(), text("token")),
    }
    Value::Object(m)
}

/// Who calls the routes agents and brokers use outside `/actions`.
#[derive(Debug)]
pub(crate) enum Caller {
    /// An agent: its name and how it authenticated.
    Agent(String, String),
    /// A registered broker: its key on record and how it authenticated.
    Broker(BrokerKey, String),
    /// An administrator.
    Admin,
    /// Nobody, in open mode.
    Open,
    /// Nobody: why not.
    Refused(String),
}

/// What tells callers apart: the registries, the admin tokens' hashes, open mode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Principals<'a> {
    pub registry: &'a Registry,
    pub brokers: &'a Brokers,
    pub admin_tokens: &'a [Hash32],
    pub open: bool,
}

impl Principals<'_> {
    /// The SVID's agent or broker, an admin token, a broker's token, an agent's token, nobody
    /// in open mode, or a refusal saying why.
    pub(crate) fn caller(&self, token: Option<&str>, peer: Option<&PeerIdentity>) -> Caller {
        if let Some(PeerIdentity::Spiffe(id)) = peer {
            if let Some(b) = self.brokers.by_spiffe(id.as_str()) {
                return Caller::Broker(b.key.clone(), id.to_string());
            }
            return match self.registry.spiffe_actor(id.as_str()) {
                Some(a) => Caller::Agent(a.to_owned(), id.to_string()),
                None => Caller::Refused(format!("SVID {id} is bound to no agent or broker")),
            };
        }
        if let Some(PeerIdentity::Refused(why)) = peer {
            return Caller::Refused(format!("client certificate refused: {why}"));
        }
        if let Some(t) = token {
            if self.admin_tokens.contains(&token_hash(t)) {
                return Caller::Admin;
            }
            if let Some(b) = self.brokers.by_token(t) {
                let identity = format!("broker-token:{}", b.key.broker);
                return Caller::Broker(b.key.clone(), identity);
            }
        }
        match self.registry.classify(token, now_ms()) {
            Auth::Agent(a) => {
                let identity = format!("agent-token:{a}");
                Caller::Agent(a, identity)
            }
            Auth::Missing if self.open => Caller::Open,
            other => Caller::Refused(format!(
                "this route needs an agent's or a broker's token or SVID ({})",
                other.identity(self.open)
            )),
        }
    }
}
