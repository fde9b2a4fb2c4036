//! The decision of `POST /actions`: who asks ([`crate::domain::asker`]), whether the actor is
//! registered and active, the control plane's own `zt.` actions, a presented capability
//! ([`crate::domain::capabilities::check_use`]), then Cedar; and the record that says so.

use zt_core::json::{Map, Value};
use zt_core::keyring::Keyring;

use crate::chain::{Decided, Lane};
use crate::db::CapabilityUse;
use crate::domain::agents::Registry;
use crate::domain::asker::Asker;
use crate::domain::capabilities::{self, Capabilities, Use};
use crate::domain::names::OWN_PREFIX;
use crate::domain::record::Stamp;
use crate::policy::{PolicyEngine, Verdict};
use crate::util::{random_hex, text};

/// A checked `/actions` request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionRequest {
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub context: Option<Map>,
    pub request_id: Option<String>,
    /// A capability token presented for this action.
    pub capability: Option<String>,
}

/// What a decision is made against, all held for reading while it is made and queued.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deciding<'a> {
    pub registry: &'a Registry,
    pub caps: &'a Capabilities,
    /// The control plane's own key: the trust root of the capabilities it issued.
    pub keyring: &'a Keyring,
    pub engine: &'a PolicyEngine,
    /// `zt-control-plane/VERSION`, for the record.
    pub broker: &'a str,
}

/// A decision made: its record, and the capability use an allow under one would be.
#[derive(Debug)]
pub(crate) struct Made {
    pub decided: Decided,
    pub used: Option<CapabilityUse>,
}

fn deny(reason: String) -> Verdict {
    Verdict {
        allow: false,
        reason,
        policy_ids: Vec::new(),
    }
}

impl Deciding<'_> {
    /// Decides `req` for `asker`; `identity` is how the asker authenticated, as Cedar sees it
    /// ([`crate::domain::asker::cedar_identity`]).
    pub(crate) fn decide(&self, mut req: ActionRequest, asker: &Asker, identity: &Value) -> Made {
        let (verdict, used) = self.verdict(&req, asker, identity);
        let request = req.context.take();
        let mut ctx = self.context(req.request_id.take(), request, &asker.identity, &verdict);
        match (&used, &req.capability) {
            (Some(u), _) => ctx.push("capability".into(), u.record_value()),
            (None, Some(t)) => {
                // Refused: the id it claims, if it reads as a token at all.
                let mut c = Map::new();
                if let Some(id) = zt_core::capability::claimed_id(t) {
                    c.push("claimed_id".into(), Value::String(id));
                }
                ctx.push("capability".into(), Value::Object(c));
            }
            (None, None) => {}
        }
        let used = used.map(|u| CapabilityUse {
            capability: u.cap.id,
            actor: req.actor.clone(),
            resource: req.resource.clone(),
            grants: Some(u.cap.grants),
        });
        let decided = Decided {
            lane: Lane::Decisions,
            actor: req.actor,
            action: req.action,
            resource: req.resource,
            allow: verdict.allow,
            reason: verdict.reason,
            context: ctx,
        };
        Made { decided, used }
    }

    fn verdict(
        &self,
        req: &ActionRequest,
        asker: &Asker,
        identity: &Value,
    ) -> (Verdict, Option<Use>) {
        if let Some(r) = &asker.refusal {
            return (deny(r.reason().to_owned()), None);
        }
        if !self.registry.is_active(&req.actor) {
            let why = match self.registry.revoked_at(&req.actor) {
                Some(at) => format!("agent {} was revoked at {at}", req.actor),
                None => "agent is not registered".to_owned(),
            };
            return (deny(why), None);
        }
        if req.action.starts_with(OWN_PREFIX) {
            let why =
                "actions under `zt.` are the control plane's own records; no agent may ask for one";
            return (deny(why.to_owned()), None);
        }
        let (actor, action, resource) = (&req.actor, &req.action, &req.resource);
        let Some(token) = &req.capability else {
            let mut cedar = req.context.clone().unwrap_or_default();
            cedar.push("identity".into(), identity.clone());
            return (
                self.engine.decide(actor, action, resource, Some(&cedar)),
                None,
            );
        };
        // The capability checks out, then Cedar decides again, at use.
        match capabilities::check_use(self.keyring, self.caps, token, actor, action, resource) {
            Ok(u) => {
                let mut cedar = u.cedar_context(req.context.as_ref());
                cedar.push("identity".into(), identity.clone());
                (
                    self.engine.decide(actor, action, resource, Some(&cedar)),
                    Some(u),
                )
            }
            Err(why) => (deny(why.to_string()), None),
        }
    }

    /// The record's context: request id (the asker's, or a fresh one), identity, policies,
    /// and the request's own context under `request`.
    fn context(
        &self,
        request_id: Option<String>,
        request: Option<Map>,
        identity: &str,
        verdict: &Verdict,
    ) -> Map {
        let request_id = request_id.unwrap_or_else(|| format!("req-{}", random_hex(12)));
        let stamp = Stamp {
            policy_version: self.engine.version(),
            broker: self.broker,
        };
        let mut ctx = stamp.context(&request_id, identity);
        if !verdict.policy_ids.is_empty() {
            ctx.push("policy_id".into(), text(verdict.policy_ids.join(",")));
        }
        if let Some(c) = request {
            ctx.push("request".into(), Value::Object(c));
        }
        ctx
    }
}
