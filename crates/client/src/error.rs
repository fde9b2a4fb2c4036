//! Why an action did not run. Every variant means the same thing for the caller's action:
//! it was not executed.

use zt_core::keyring::WindowViolation;
use zt_core::time::Timestamp;
use zt_core::Hash32;

/// The typed reason an action was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The control plane denied it, in an envelope that verifies.
    #[error("denied by the control plane: {reason}")]
    Denied {
        /// The envelope's reason.
        reason: String,
        /// The HTTP status (403, or 401 for an unauthenticated request).
        status: u16,
        /// The deny's `current_hash`, to find it in the evidence.
        current_hash: Hash32,
    },
    /// No answer within the timeout.
    #[error("the control plane did not answer within {timeout_ms} ms")]
    Timeout {
        /// The configured timeout.
        timeout_ms: u64,
    },
    /// The connection failed (refused, reset, DNS).
    #[error("cannot reach the control plane: {0}")]
    Connect(String),
    /// An HTTP status without a verifiable decision (a 5xx, a 400 for a bad request, ...).
    #[error("the control plane answered HTTP {status} without a decision: {message}")]
    Http {
        /// The status.
        status: u16,
        /// Its error message, shortened.
        message: String,
    },
    /// Not JSON, not an envelope, too large, or inconsistent.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A 200 without the `audit` member: an allow nobody can check.
    #[error("the answer carries no audit envelope")]
    MissingAudit,
    /// The envelope's hash does not recompute: it was edited.
    #[error("the envelope's hash does not recompute (claimed {claimed}, computed {computed})")]
    HashMismatch {
        /// `current_hash` as sent.
        claimed: Hash32,
        /// As recomputed.
        computed: Hash32,
    },
    /// Signed by some key other than the pinned one, or not signed at all.
    #[error(
        "the envelope is signed by {found:?} with {algorithm:?}, not by the pinned key {pinned}"
    )]
    WrongKey {
        /// The pinned key id.
        pinned: String,
        /// The envelope's key id.
        found: String,
        /// The envelope's algorithm.
        algorithm: String,
    },
    /// Signed by the pinned key, for a chain its keyring entry does not bind it to.
    #[error("the envelope is of chain {chain}, but the pinned key {key_id} signs only {bound}")]
    UnauthorizedSigner {
        /// The pinned key id.
        key_id: String,
        /// The envelope's chain.
        chain: String,
        /// The chains the key is bound to.
        bound: String,
    },
    /// The signature does not verify under the pinned key.
    #[error("the envelope's signature does not verify under the pinned key {key_id}")]
    BadSignature {
        /// The pinned key id.
        key_id: String,
    },
    /// Signed by the pinned key, but at a time outside the key's validity window
    /// (`not_before`, `not_after`, `revoked_at` of its keyring entry), or the key has
    /// expired or been revoked since.
    #[error("the pinned key {key_id} is not valid at {at}: {violation}")]
    KeyNotValid {
        /// The pinned key id.
        key_id: String,
        /// The instant checked: the envelope's timestamp, or now for the window's end.
        at: Timestamp,
        /// Which edge of the window it is on the wrong side of.
        violation: WindowViolation,
    },
    /// The decision is about another request.
    #[error("the decision is for {field} {answered:?}, but the request was for {asked:?}")]
    Mismatch {
        /// `actor`, `action` or `resource`.
        field: &'static str,
        /// What the request said.
        asked: String,
        /// What the envelope says.
        answered: String,
    },
    /// The decision was made on other policy facts than the request sent: the envelope's
    /// `context.request` is not the request's `context` (compared in RFC 8785 form).
    #[error(
        "the decision was made on the context {}, but the request sent {}",
        or_none(.answered),
        or_none(.asked)
    )]
    ContextMismatch {
        /// The request's context, canonical and shortened; `None` when it sent none.
        asked: Option<String>,
        /// The envelope's `context.request`, canonical and shortened; `None` when absent.
        answered: Option<String>,
    },
    /// The envelope's timestamp is too far from now.
    #[error(
        "the decision's timestamp {timestamp} is {skew_ms} ms from now (at most {max_ms} allowed)"
    )]
    Stale {
        /// As written.
        timestamp: String,
        /// Distance from the local clock.
        skew_ms: i64,
        /// The allowed skew.
        max_ms: u64,
    },
    /// An envelope seen before, or one answering another request.
    #[error("replayed decision: {0}")]
    Replay(String),
    /// A capability was presented, and the decision seals another one (or none) in
    /// `context.capability`.
    #[error(
        "the request presented capability {}, but the decision is for capability {}",
        or_none(.sent),
        or_none(.answered)
    )]
    CapabilityMismatch {
        /// The presented token's id (`None` when it could not be read).
        sent: Option<String>,
        /// The envelope's `context.capability.id`, shortened; `None` when absent.
        answered: Option<String>,
    },
}

impl Refusal {
    /// A short stable name, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Denied { .. } => "denied",
            Refusal::Timeout { .. } => "timeout",
            Refusal::Connect(_) => "connect",
            Refusal::Http { .. } => "http",
            Refusal::Malformed(_) => "malformed",
            Refusal::MissingAudit => "missing_audit",
            Refusal::HashMismatch { .. } => "hash_mismatch",
            Refusal::WrongKey { .. } => "wrong_key",
            Refusal::UnauthorizedSigner { .. } => "unauthorized_signer",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::KeyNotValid { .. } => "key_not_valid",
            Refusal::Mismatch { .. } => "mismatch",
            Refusal::ContextMismatch { .. } => "context_mismatch",
            Refusal::Stale { .. } => "stale",
            Refusal::Replay(_) => "replay",
            Refusal::CapabilityMismatch { .. } => "capability_mismatch",
        }
    }
}

fn or_none(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("(none)")
}
