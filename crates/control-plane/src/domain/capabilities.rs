//! Capabilities: issued under policy, checked at use, revocable, and the execution reports of
//! the brokers that ran commands under them. The token format and its rules are
//! `zt_core::capability`'s; this module is who may do what with them, and their records (the
//! routes are `crate::http::capabilities` and `crate::http::executions`).
//!
//! - Issuance ([`Issuance`]): Cedar decides with the principal, action and resource of the
//!   action itself and `{"issuance": true, "grants": {...}}` as context; the issuance is a
//!   sealed decision on the decision chain (allowed or not), and only an allowed, recorded one
//!   gives a token (link 0 signed with the control plane's key).
//! - Revocation ([`revocation`]): a sealed record on the control plane's own chain, sealed
//!   before the revocation takes effect, under the capabilities' write lock.
//! - Standing ([`Capabilities::standing`]): what a broker watches,
//!   [`zt_core::capability::standing::Standing`].
//! - Use: `POST /actions` with `"capability"` ([`check_use`]).
//! - Execution reports ([`Filed`]): a registered broker's signed report
//!   (`zt_core::capability::report`), sealed on the decision chain as `zt.broker.execution`
//!   with the report and the broker's attestation in its context. It is an allow only when the
//!   broker's signature verifies under its registered key, the report names an allow made here
//!   for that agent under that capability, the grants (the sandbox among them) are the ones
//!   that allow sealed, and no other attested record used that allow up. Anything else is
//!   still sealed, as a deny that says why ([`NotAccepted`]): a broker's report that fails a
//!   check, and any report filed with an agent's own credentials, which is the agent's word
//!   about itself.

use std::collections::HashMap;

use zt_core::capability::report::{Attestation, BrokerKey, ExecutionReport, ReportError};
use zt_core::capability::standing::{self, Held, Standing, UseRefusal};
use zt_core::capability::{self, Capability, Grants, Issue, EXECUTION_ACTION};
use zt_core::json::{Map, Value};
use zt_core::keyring::Keyring;
use zt_core::time::Timestamp;
use zt_core::Hash32;

use crate::chain::{Decided, Lane};
use crate::db::CapabilityUse;
use crate::domain::record::Stamp;
use crate::error::RequestError;
use crate::policy::{PolicyEngine, Verdict};
use crate::util::{random_hex, text};

/// Longest capability lifetime (`ttl_s`): one day. A capability is for one action.
pub(crate) const MAX_CAPABILITY_TTL_S: u64 = 24 * 3600;

/// Largest execution report, in bytes.
pub(crate) const MAX_REPORT: usize = 64 * 1024;

/// The issued capabilities: whom each is bound to, its expiry, its revocation.
#[derive(Debug, Default)]
pub(crate) struct Capabilities {
    held: HashMap<String, Held>,
}

impl Capabilities {
    pub(crate) fn load(stored: Vec<(String, Held)>) -> Self {
        Self {
            held: stored.into_iter().collect(),
        }
    }

    pub(crate) fn standing(&self, id: &str, now: Timestamp) -> Standing {
        Standing::of(self.held.get(id), now)
    }

    /// The agent capability `id` is bound to.
    pub(crate) fn actor_of(&self, id: &str) -> Option<&str> {
        self.held.get(id).map(|h| h.actor.as_str())
    }

    /// Holds a newly issued capability.
    pub(crate) fn insert(&mut self, cap: &Capability) {
        self.held.insert(
            cap.id.clone(),
            Held {
                actor: cap.actor.clone(),
                not_after: cap.not_after,
                revoked_at: None,
            },
        );
    }

    /// Capability `id` is revoked from `at`.
    pub(crate) fn revoke(&mut self, id: &str, at: Timestamp) {
        if let Some(h) = self.held.get_mut(id) {
            h.revoked_at = Some(at);
        }
    }
}

/// The capability part of a use's record and Cedar context.
fn cap_value(cap: &Capability) -> Value {
    let mut m = Map::new();
    m.push("id".into(), text(cap.id.as_str()));
    m.push("grants".into(), cap.grants.to_value());
    m.push("not_after".into(), text(cap.not_after.to_rfc3339_millis()));
    m.push(
        "attenuations".into(),
        Value::Number(cap.attenuations as f64),
    );
    Value::Object(m)
}

/// A use of a capability that checked out: what goes into the decision's record and Cedar.
#[derive(Debug)]
pub(crate) struct Use {
    pub cap: Capability,
}

impl Use {
    /// The Cedar context at use: the request's own (which holds no reserved member, see
    /// [`crate::policy::RESERVED_CONTEXT`]), with `issuance: false` and the capability's
    /// effective grants.
    pub(crate) fn cedar_context(&self, request: Option<&Map>) -> Map {
        let mut m = request.cloned().unwrap_or_default();
        m.push("issuance".into(), Value::Bool(false));
        m.push("grants".into(), self.cap.grants.to_value());
        m
    }

    pub(crate) fn record_value(&self) -> Value {
        cap_value(&self.cap)
    }
}

/// Checks a capability presented with `POST /actions` by `actor` for `action` on
/// `resource`: the token verifies under this control plane's key (signatures, every
/// attenuation narrowing, expiry), then the checks of
/// [`zt_core::capability::standing::check_use`] (issued here, active, bound to this actor,
/// for this action and resource).
pub(crate) fn check_use(
    keyring: &Keyring,
    caps: &Capabilities,
    token: &str,
    actor: &str,
    action: &str,
    resource: &str,
) -> Result<Use, Box<UseRefusal>> {
    let now = Timestamp::now();
    let cap = capability::verify(token, keyring, now).map_err(|e| Box::new(e.into()))?;
    standing::check_use(&cap, caps.held.get(&cap.id), actor, action, resource, now)
        .map_err(Box::new)?;
    Ok(Use { cap })
}

/// What `POST /capabilities` asks for, its names checked.
#[derive(Debug)]
pub(crate) struct IssueRequest {
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub ttl_s: u64,
    pub grants: Grants,
}

/// An issuance being decided: what was asked, the capability's id and validity.
#[derive(Debug)]
pub(crate) struct Issuance {
    pub id: String,
    pub req: IssueRequest,
    pub issued_at: Timestamp,
    pub not_after: Timestamp,
}

impl Issuance {
    /// A fresh id, valid from now for the asked lifetime.
    pub(crate) fn new(req: IssueRequest) -> Self {
        let issued_at = Timestamp::now();
        let not_after = Timestamp::from_unix_nanos(
            issued_at.unix_nanos() + i128::from(req.ttl_s) * 1_000_000_000,
        );
        Self {
            id: format!("cap-{}", random_hex(8)),
            req,
            issued_at,
            not_after,
        }
    }

    /// Cedar decides, with `{issuance: true, grants}` as context; an agent that is not
    /// registered (`active` false) is denied.
    pub(crate) fn decide(&self, active: bool, engine: &PolicyEngine) -> Verdict {
        if !active {
            return Verdict {
                allow: false,
                reason: "agent is not registered".to_owned(),
                policy_ids: Vec::new(),
            };
        }
        let mut cedar = Map::new();
        cedar.push("issuance".into(), Value::Bool(true));
        cedar.push("grants".into(), self.req.grants.to_value());
        let r = &self.req;
        engine.decide(&r.actor, &r.action, &r.resource, Some(&cedar))
    }

    /// The issuance's record on the decision chain, allowed or not.
    pub(crate) fn record(&self, stamp: &Stamp<'_>, admin: &str, verdict: &Verdict) -> Decided {
        let mut ctx = stamp.fresh_context("cap", admin);
        if !verdict.policy_ids.is_empty() {
            ctx.push("policy_id".into(), text(verdict.policy_ids.join(",")));
        }
        let mut c = Map::new();
        c.push("op".into(), text("issue"));
        if verdict.allow {
            c.push("id".into(), text(self.id.as_str()));
        }
        c.push("grants".into(), self.req.grants.to_value());
        c.push("not_after".into(), text(self.not_after.to_rfc3339_millis()));
        ctx.push("capability".into(), Value::Object(c));
        Decided {
            lane: Lane::Decisions,
            actor: self.req.actor.clone(),
            action: self.req.action.clone(),
            resource: self.req.resource.clone(),
            allow: verdict.allow,
            reason: format!("capability issuance: {}", verdict.reason),
            context: ctx,
        }
    }

    /// What link 0 of the token states, signed by `issuer_key_id`.
    pub(crate) fn spec(self, issuer_key_id: &str) -> Issue {
        Issue {
            id: self.id,
            actor: self.req.actor,
            action: self.req.action,
            resource: self.req.resource,
            grants: self.req.grants,
            issued_at: self.issued_at,
            not_after: self.not_after,
            issuer_key_id: issuer_key_id.to_owned(),
        }
    }
}

/// The record of capability `id`'s revocation, on the control plane's own chain.
pub(crate) fn revocation(stamp: &Stamp<'_>, admin: &str, id: &str, actor: &str) -> Decided {
    let mut ctx = stamp.fresh_context("cap", admin);
    ctx.push("capability_id".into(), text(id));
    ctx.push("agent".into(), text(actor));
    Decided {
        lane: Lane::Admin,
        actor: "zt.admin".into(),
        action: "zt.capability.revoke".into(),
        resource: format!("capability/{id}"),
        allow: true,
        reason: format!("capability {id} of agent {actor} revoked: it no longer authorizes anything, and brokers running under it stop"),
        context: ctx,
    }
}

/// What `POST /executions` carries: `{"report": {...}, "attestation": {...}?}`.
#[derive(Debug)]
pub(crate) struct Filed {
    /// The report as sent (it goes into the record exactly so, so that its digest, which
    /// the broker signed, can be recomputed from the record).
    pub value: Value,
    pub report: ExecutionReport,
    pub attestation: Option<Attestation>,
}

impl Filed {
    /// Reads the filing's members (`report` required, `attestation` optional).
    pub(crate) fn from_object(m: &Map) -> Result<Self, RequestError> {
        let value = m.get("report").ok_or(RequestError::ReportMissing)?;
        let report = ExecutionReport::from_value(value).map_err(RequestError::Report)?;
        // What the record holds is the report re-read, member for member: the canonical form of
        // `value` and of `report.to_value()` are then the same bytes.
        let value = report.to_value();
        let attestation = match m.get("attestation") {
            None | Some(Value::Null) => None,
            Some(a) => Some(Attestation::from_value(a).map_err(RequestError::Report)?),
        };
        Ok(Self {
            value,
            report,
            attestation,
        })
    }
}

/// Who filed a report.
#[derive(Debug)]
pub(crate) enum Filer<'a> {
    /// A registered broker: its key on record.
    Broker(&'a BrokerKey),
    /// An agent, with its own credentials.
    Agent(&'a str),
    /// Nobody (open mode without a token).
    Nobody,
}

/// Why a broker's signed report does not count as an attested execution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unattested {
    #[error("it carries no broker signature")]
    Unsigned,
    #[error("it is filed by broker {filed_by} but signed as {signed_as} for broker {named}")]
    OtherBroker {
        filed_by: String,
        signed_as: String,
        named: String,
    },
    #[error("{0}")]
    Signature(#[source] ReportError),
    #[error("it names decision {decision}, which is no allow made here under a capability")]
    NoAllow { decision: String },
    #[error("it names decision {decision} of agent {made_for}, not of {named}")]
    OtherAgent {
        decision: String,
        made_for: String,
        named: String,
    },
    #[error("it names capability {named}, but decision {decision} was made under {made_under}")]
    OtherCapability {
        decision: String,
        named: String,
        made_under: String,
    },
    #[error(
        "decision {decision} was made before allows kept their grants: nothing to hold the report to"
    )]
    NoGrants { decision: String },
    #[error("the broker applied other grants than decision {decision} sealed ({applied}; sealed: {sealed})")]
    OtherGrants {
        decision: String,
        applied: String,
        sealed: String,
    },
}

/// Why a filed report is sealed as a deny.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotAccepted {
    /// A broker's report that fails a check.
    #[error("{0}")]
    Unattested(#[from] Unattested),
    /// An agent's account of its own run.
    #[error("it was filed by agent {0} itself: an agent's account of its own execution is a claim, not evidence (only a registered broker attests one)")]
    AgentsClaim(String),
    /// Filed by nobody.
    #[error("it was filed by no broker: only a registered broker attests an execution")]
    NoBroker,
    /// Another report is being sealed for this allow.
    #[error("decision {0} is being recorded as executed by another report")]
    InFlight(String),
    /// This allow has its execution record.
    #[error(
        "decision {decision} already has its execution record {record}: one allow, one execution"
    )]
    Executed { decision: String, record: String },
}

impl NotAccepted {
    /// A broker's report that conflicts with what is on record (as opposed to a report no
    /// broker filed).
    pub(crate) fn is_conflict(&self) -> bool {
        !matches!(self, Self::AgentsClaim(_) | Self::NoBroker)
    }

    /// The claim on `decision` is held by the record `h` (zero while it is being sealed).
    pub(crate) fn taken(decision: &Hash32, h: &Hash32) -> Self {
        if *h == Hash32([0; 32]) {
            Self::InFlight(decision.short())
        } else {
            Self::Executed {
                decision: decision.short(),
                record: h.short(),
            }
        }
    }
}

impl Filed {
    /// Whether the filer's report counts: `None` for a registered broker's signed report that
    /// links to an allow `used` made here, with the grants it sealed.
    pub(crate) fn refusal(
        &self,
        filer: &Filer<'_>,
        used: Option<&CapabilityUse>,
    ) -> Option<NotAccepted> {
        match filer {
            Filer::Broker(b) => self.unattested(b, used).map(NotAccepted::from),
            Filer::Agent(a) => Some(NotAccepted::AgentsClaim((*a).to_owned())),
            Filer::Nobody => Some(NotAccepted::NoBroker),
        }
    }

    fn unattested(&self, broker: &BrokerKey, used: Option<&CapabilityUse>) -> Option<Unattested> {
        let r = &self.report;
        let decision = r.decision.short();
        let Some(a) = &self.attestation else {
            return Some(Unattested::Unsigned);
        };
        if a.broker != broker.broker || r.broker != broker.broker {
            return Some(Unattested::OtherBroker {
                filed_by: broker.broker.clone(),
                signed_as: a.broker.clone(),
                named: r.broker.clone(),
            });
        }
        if let Err(e) = a.verify(&r.digest(), broker) {
            return Some(Unattested::Signature(e));
        }
        let Some(u) = used else {
            return Some(Unattested::NoAllow { decision });
        };
        if u.actor != r.actor {
            return Some(Unattested::OtherAgent {
                decision,
                made_for: u.actor.clone(),
                named: r.actor.clone(),
            });
        }
        if u.capability != r.capability_id {
            return Some(Unattested::OtherCapability {
                decision,
                named: r.capability_id.clone(),
                made_under: u.capability.clone(),
            });
        }
        match &u.grants {
            None => Some(Unattested::NoGrants { decision }),
            Some(g) if *g != r.grants => Some(Unattested::OtherGrants {
                decision,
                applied: r.grants.to_string(),
                sealed: g.to_string(),
            }),
            Some(_) => None,
        }
    }

    /// The execution record: an allow when `refusal` is `None`, else a deny saying why.
    pub(crate) fn record(
        &self,
        stamp: &Stamp<'_>,
        identity: &str,
        filer: &Filer<'_>,
        used: Option<&CapabilityUse>,
        refusal: Option<&NotAccepted>,
    ) -> Decided {
        let report = &self.report;
        let mut ctx = stamp.fresh_context("cap", identity);
        ctx.push("decision".into(), text(report.decision.to_hex()));
        ctx.push("capability_id".into(), text(report.capability_id.as_str()));
        ctx.push("report".into(), self.value.clone());
        if let Some(a) = &self.attestation {
            ctx.push("attestation".into(), a.to_value());
        }
        let summary = report.summary();
        let reason = match refusal {
            None => format!(
                "executed under decision {}, attested by broker {}: {summary}",
                report.decision.short(),
                report.broker
            ),
            Some(why) => format!("execution report not accepted: {why}; it says: {summary}"),
        };
        let actor = match (filer, used) {
            (Filer::Agent(a), _) => (*a).to_owned(),
            (_, Some(u)) => u.actor.clone(),
            _ => report.actor.clone(),
        };
        Decided {
            lane: Lane::Decisions,
            actor,
            action: EXECUTION_ACTION.into(),
            resource: used.map(|u| u.resource.clone()).unwrap_or_default(),
            allow: refusal.is_none(),
            reason,
            context: ctx,
        }
    }
}
