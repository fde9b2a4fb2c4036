//! Agents: who a bearer token or an SVID speaks for, and the records of their lifecycle.
//!
//! [`Registry`] holds, in memory, the active agents and their tokens (SHA-256 only) with their
//! expiry, the SPIFFE ID each may be bound to (an X.509-SVID over mTLS speaks for that agent),
//! the revoked agents, and every token a rotation or a revocation retired, so a request
//! carrying one is refused naming why. It is loaded from `state.db` at start.
//!
//! A registration, rotation or revocation is a [`Change`], sealed on the control plane's own
//! chain ([`crate::chain::Lane::Admin`]) before it takes effect (the routes, in
//! `crate::http::agents`, hold the registry's write lock meanwhile). Record shapes are in
//! `crate::http`'s module docs and `docs/control-plane.md`.

use std::collections::HashMap;

use zt_core::Hash32;

use crate::chain::{Decided, Lane};
use crate::db::{Agent, Retired, RetiredToken};
use crate::domain::record::Stamp;
use crate::util::{rfc3339_ms, text, token_id};

/// Longest token lifetime accepted (`token_ttl_s`): ten years.
pub(crate) const MAX_TOKEN_TTL_S: u64 = 10 * 365 * 24 * 3600;

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
pub(crate) enum Lifecycle {
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
#[derive(Debug)]
pub(crate) struct Change<'a> {
    pub event: Lifecycle,
    pub agent: &'a str,
    /// Who made the change (`admin-token:<id>`, or open mode).
    pub admin: &'a str,
    pub token: Option<&'a Hash32>,
    pub retired: Option<&'a Hash32>,
    pub expires_at_ms: Option<i64>,
    /// The SPIFFE ID a registration binds the agent to.
    pub spiffe_id: Option<&'a str>,
}

impl Change<'_> {
    /// The record, on the control plane's own chain.
    pub(crate) fn decided(&self, stamp: &Stamp<'_>) -> Decided {
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
        let mut ctx = stamp.fresh_context("admin", self.admin);
        ctx.push("agent".into(), text(self.agent));
        if let Some(t) = self.token {
            ctx.push("token_id".into(), text(token_id(t)));
        }
        if let Some(t) = self.retired {
            ctx.push("retired_token_id".into(), text(token_id(t)));
        }
        if let Some(ms) = self.expires_at_ms {
            ctx.push("token_expires_at".into(), text(rfc3339_ms(ms)));
        }
        if let Some(id) = self.spiffe_id {
            ctx.push("spiffe_id".into(), text(id));
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
