//! Where a capability stands, and why a use of one is refused: the one model that issuance,
//! the checks at use, expiry, revocation, the status route brokers watch and the broker's own
//! watch all read. Statuses cross crates and the wire as [`State`] (`active`, `revoked`,
//! `expired`), never as free strings; refusals as [`UseRefusal`].

use super::{Capability, CapabilityError};
use crate::error::JsonError;
use crate::json::{self, Map, Value};
use crate::time::Timestamp;

/// What the issuer holds of one capability it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The agent it is bound to.
    pub actor: String,
    /// Its expiry as issued (attenuations can only be earlier).
    pub not_after: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// The state a capability is in, as the status route says it (`state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Usable.
    Active,
    /// Revoked: nothing runs under it any more.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl State {
    /// `active`, `revoked`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// A `state` that names no [`State`] (shortened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability state `{0}` (active, revoked or expired)")]
pub struct UnknownState(pub String);

impl std::str::FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        match s {
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            "expired" => Ok(Self::Expired),
            other => Err(UnknownState(crate::envelope::shorten(other))),
        }
    }
}

/// Why a status answer ([`Standing::status_value`], `GET /capabilities/{id}`) cannot be
/// read; a watcher counts it as no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// Not I-JSON.
    #[error("status answer is not JSON: {0}")]
    NotJson(#[source] JsonError),
    /// JSON, but not an object.
    #[error("status answer is not a JSON object")]
    NotObject,
    /// An answer about another capability.
    #[error("the status answer is about capability {named}, not {asked}")]
    OtherCapability {
        /// The capability the answer names (shortened).
        named: String,
        /// The one asked about.
        asked: String,
    },
    /// No `state` member.
    #[error("status answer names no `state`")]
    NoState,
    /// A `state` that names no [`State`].
    #[error(transparent)]
    State(#[from] UnknownState),
    /// A time the state needs is missing or not RFC 3339.
    #[error("status answer: `{member}` missing or not an RFC 3339 time")]
    Time {
        /// `not_after` or `at`.
        member: &'static str,
    },
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one capability stands at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Usable until `not_after`.
    Active {
        /// Its expiry.
        not_after: Timestamp,
    },
    /// Revoked at `at`.
    Revoked {
        /// When.
        at: Timestamp,
    },
    /// Expired at `at`.
    Expired {
        /// When.
        at: Timestamp,
    },
    /// Not issued here.
    Unknown,
}

impl Standing {
    /// The standing of `held` at `now`: a revocation outranks an expiry.
    pub fn of(held: Option<&Held>, now: Timestamp) -> Self {
        match held {
            None => Self::Unknown,
            Some(Held {
                revoked_at: Some(at),
                ..
            }) => Self::Revoked { at: *at },
            Some(h) if now >= h.not_after => Self::Expired { at: h.not_after },
            Some(h) => Self::Active {
                not_after: h.not_after,
            },
        }
    }

    /// The state, `None` for a capability not issued here.
    pub fn state(&self) -> Option<State> {
        match self {
            Self::Active { .. } => Some(State::Active),
            Self::Revoked { .. } => Some(State::Revoked),
            Self::Expired { .. } => Some(State::Expired),
            Self::Unknown => None,
        }
    }

    /// The status route's body: `{"id", "state", "not_after"}` while active, `{"id", "state",
    /// "at"}` once revoked or expired. `None` for [`Standing::Unknown`] (404).
    pub fn status_value(&self, id: &str) -> Option<Value> {
        let s = |x: &str| Value::String(x.to_owned());
        let mut m = Map::new();
        m.push("id".into(), s(id));
        m.push("state".into(), s(self.state()?.as_str()));
        match self {
            Self::Active { not_after } => {
                m.push("not_after".into(), s(&not_after.to_rfc3339_millis()));
            }
            Self::Revoked { at } | Self::Expired { at } => {
                m.push("at".into(), s(&at.to_rfc3339_millis()));
            }
            Self::Unknown => {}
        }
        Some(Value::Object(m))
    }

    /// Reads a status body ([`Standing::status_value`]) about capability `id`. An answer about
    /// another capability, or one that does not say a state, is an error (a watcher counts it
    /// as no answer).
    pub fn from_status(id: &str, body: &[u8]) -> Result<Self, StatusError> {
        let v = json::parse(body).map_err(StatusError::NotJson)?;
        let m = v.as_object().ok_or(StatusError::NotObject)?;
        let text = |k: &str| m.get(k).and_then(Value::as_str);
        if let Some(other) = text("id").filter(|other| *other != id) {
            return Err(StatusError::OtherCapability {
                named: crate::envelope::shorten(other),
                asked: id.to_owned(),
            });
        }
        let state: State = text("state").ok_or(StatusError::NoState)?.parse()?;
        let time = |member: &'static str| {
            text(member)
                .and_then(Timestamp::parse_rfc3339)
                .ok_or(StatusError::Time { member })
        };
        Ok(match state {
            State::Active => Self::Active {
                not_after: time("not_after")?,
            },
            State::Revoked => Self::Revoked { at: time("at")? },
            State::Expired => Self::Expired { at: time("at")? },
        })
    }
}

/// Why a capability presented with an action was refused. `Display` is the decision's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseRefusal {
    /// The token itself: malformed, forged, widened, expired by its own links.
    #[error("capability refused: {0}")]
    Token(#[from] CapabilityError),
    /// Revoked.
    #[error(
        "capability refused: capability {id} was revoked at {}",
        .at.to_rfc3339_millis()
    )]
    Revoked {
        /// The capability.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// Expired as issued.
    #[error(
        "capability refused: capability {id} expired at {}",
        .at.to_rfc3339_millis()
    )]
    Expired {
        /// The capability.
        id: String,
        /// When.
        at: Timestamp,
    },
    /// Not issued by this control plane (or its record was lost).
    #[error("capability refused: capability {id} was not issued by this control plane")]
    NotIssuedHere {
        /// The capability.
        id: String,
    },
    /// Presented by another agent than the one it is bound to.
    #[error("capability refused: capability {id} is bound to agent {bound}, not {asking}")]
    OtherAgent {
        /// The capability.
        id: String,
        /// The agent it is bound to.
        bound: String,
        /// The agent asking.
        asking: String,
    },
    /// For another action or resource.
    #[error("capability refused: capability {id} is for {action} on {resource:?}, not {asked_action} on {asked_resource:?}")]
    OtherAction {
        /// The capability.
        id: String,
        /// Its action.
        action: String,
        /// Its resource.
        resource: String,
        /// The action asked.
        asked_action: String,
        /// The resource asked.
        asked_resource: String,
    },
}

/// The checks at use of a token that verified: issued here, standing active at `now`, bound
/// to the agent asking (as the token says and as the issuer holds it), for this action and
/// resource.
pub fn check_use(
    cap: &Capability,
    held: Option<&Held>,
    asking: &str,
    action: &str,
    resource: &str,
    now: Timestamp,
) -> Result<(), UseRefusal> {
    let id = || cap.id.clone();
    match Standing::of(held, now) {
        Standing::Active { .. } => {}
        Standing::Revoked { at } => return Err(UseRefusal::Revoked { id: id(), at }),
        Standing::Expired { at } => return Err(UseRefusal::Expired { id: id(), at }),
        Standing::Unknown => return Err(UseRefusal::NotIssuedHere { id: id() }),
    }
    if cap.actor != asking || held.is_some_and(|h| h.actor != asking) {
        return Err(UseRefusal::OtherAgent {
            id: id(),
            bound: cap.actor.clone(),
            asking: asking.to_owned(),
        });
    }
    if cap.action != action || cap.resource != resource {
        return Err(UseRefusal::OtherAction {
            id: id(),
            action: cap.action.clone(),
            resource: cap.resource.clone(),
            asked_action: action.to_owned(),
            asked_resource: resource.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn revocation_outranks_expiry_and_the_status_body_round_trips() {
        let held = Held {
            actor: "a".into(),
            not_after: t("2026-12-01T11:00:00Z"),
            revoked_at: None,
        };
        let before = t("2026-12-01T10:00:00Z");
        let after = t("2026-12-01T12:00:00Z");
        assert_eq!(Standing::of(None, before), Standing::Unknown);
        assert_eq!(
            Standing::of(Some(&held), before),
            Standing::Active {
                not_after: held.not_after
            }
        );
        assert_eq!(
            Standing::of(Some(&held), after),
            Standing::Expired { at: held.not_after }
        );
        let revoked = Held {
            revoked_at: Some(before),
            ..held
        };
        assert_eq!(
            Standing::of(Some(&revoked), after),
            Standing::Revoked { at: before }
        );
        for s in [
            Standing::Active { not_after: after },
            Standing::Revoked { at: before },
            Standing::Expired { at: before },
        ] {
            let body = json::canonicalize(&s.status_value("cap-1").unwrap_or(Value::Null));
            assert_eq!(Standing::from_status("cap-1", &body), Ok(s));
        }
        assert!(Standing::Unknown.status_value("cap-1").is_none());
        let other = br#"{"id":"cap-2","state":"active","not_after":"2026-12-01T11:00:00Z"}"#;
        assert!(Standing::from_status("cap-1", other)
            .is_err_and(|e| e.to_string().contains("about capability cap-2")));
        for bad in [
            &br#"{"state":"suspended","at":"2026-12-01T11:00:00Z"}"#[..],
            br#"{"state":"revoked"}"#,
            b"{}",
            b"gone",
        ] {
            assert!(Standing::from_status("cap-1", bad).is_err());
        }
        for st in [State::Active, State::Revoked, State::Expired] {
            assert_eq!(st.as_str().parse::<State>(), Ok(st));
        }
    }
}
