//! What every record the control plane seals says about how it was sealed.

use zt_core::json::Map;

use crate::util::{random_hex, text};

/// The policy set in force and the control plane's own name: the members every record's
/// context carries beside its request id and who asked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    /// `sha256:...` of the policy set in force.
    pub policy_version: &'a str,
    /// `zt-control-plane/VERSION`.
    pub broker: &'a str,
}

impl Stamp<'_> {
    /// `{request_id, identity, policy_version, broker}`.
    pub(crate) fn context(&self, request_id: &str, identity: &str) -> Map {
        let mut ctx = Map::new();
        ctx.push("request_id".into(), text(request_id));
        ctx.push("identity".into(), text(identity));
        ctx.push("policy_version".into(), text(self.policy_version));
        ctx.push("broker".into(), text(self.broker));
        ctx
    }

    /// As [`context`](Self::context), with a fresh request id `PREFIX-<24 hex digits>`.
    pub(crate) fn fresh_context(&self, prefix: &str, identity: &str) -> Map {
        self.context(&format!("{prefix}-{}", random_hex(12)), identity)
    }
}
