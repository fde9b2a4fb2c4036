//! Control-plane errors: bad configuration or files (start-up), bad policies and bad requests
//! (callers: 400, nothing decided), and failures to sign, seal or store a decision (which
//! answer 503: nothing is allowed).

use std::path::PathBuf;

/// A policy that cannot be applied.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// Cedar could not parse it.
    #[error("Cedar policy{} does not parse: {reason}", .id.as_ref().map(|i| format!(" {i}")).unwrap_or_default())]
    Parse {
        /// The policy's id, when known.
        id: Option<String>,
        /// Cedar's message.
        reason: String,
    },
    /// No policy in the text.
    #[error("the policy text holds no policy")]
    Empty,
    /// Two policies with one id.
    #[error("policy id {0} is already in the set")]
    DuplicateId(String),
    /// A Cedar feature this control plane does not take.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A policy past one of the limits that keep its parse and evaluation bounded.
    #[error("policy has {found} {what}, more than the {max} a policy may have (the limit keeps parsing and deciding within a thread's stack)")]
    Limit {
        /// Which limit.
        what: &'static str,
        /// How many.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// A rule that makes no sense.
    #[error("invalid rule: {0}")]
    Invalid(String),
    /// A character that hides or reorders text (Trojan Source), or a control character other
    /// than tab and line breaks: the text a reviewer reads would not be the text Cedar runs.
    #[error("policy text holds U+{code:04X} at line {line}: a control, invisible or text-reordering character, so what a reviewer reads is not what runs")]
    HiddenCharacter {
        /// The character's code point.
        code: u32,
        /// Its line, from 1.
        line: usize,
    },
}

/// Why a [`Signer`](crate::signer::Signer) gave no signature: the decision is not sealed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The signing backend (a KMS, an HSM) failed or could not be reached.
    #[error("{0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SignError {
    /// A backend's failure, kept as the source.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Backend(source.into())
    }
}

/// Why a decision could not be sealed and stored. The request is answered 503 and the
/// action is not allowed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The signer failed (a KMS or HSM outage, say).
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    /// The signature did not verify under the control plane's own public key.
    #[error("the signer returned a signature that does not verify under key {key_id}")]
    SelfCheck {
        /// The key id.
        key_id: String,
    },
    /// The sealed envelope did not read back as a record.
    #[error("sealed envelope does not parse: {0}")]
    Reread(#[source] zt_core::envelope::RecordError),
    /// The store refused the write.
    #[error("storing the decision failed: {0}")]
    Store(#[from] zt_store::StoreError),
    /// The store did not take the record as the next link of the chain.
    #[error("the store did not append the decision to chain {chain} (outcome {outcome})")]
    NotAppended {
        /// The chain.
        chain: String,
        /// What the store reported.
        outcome: String,
    },
    /// The group this decision was committed with failed: why, shared by the group.
    #[error("committing the decision failed: {0}")]
    Commit(#[source] std::sync::Arc<SealError>),
    /// The decision writer is gone (shutting down).
    #[error("the decision writer stopped")]
    WriterGone,
    /// Too many decisions waiting.
    #[error("too many decisions waiting to be sealed")]
    Busy,
}

/// Start-up and administration errors.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// A file could not be read or written.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What the file is.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The signing key file is not a P-256 PKCS#8 key.
    #[error("signing key {}: {source}", .path.display())]
    Key {
        /// Where.
        path: PathBuf,
        /// Why.
        source: zt_core::error::KeyError,
    },
    /// The decision store failed.
    #[error("decision store: {0}")]
    Store(#[from] zt_store::StoreError),
    /// The state database (`state.db`) failed; the source is SQLite's error (see
    /// [`crate::db`], the one module that speaks SQL).
    #[error("state database: {0}")]
    State(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// `state.db` was written by a newer control plane.
    #[error("state.db has schema version {found}; this control plane knows up to {known}: use a newer zt-audit")]
    SchemaTooNew {
        /// The file's version.
        found: i64,
        /// The newest this code knows.
        known: i64,
    },
    /// A broker's stored public key does not read.
    #[error("state.db: broker {name}: public key does not read")]
    StoredBrokerKey {
        /// The broker.
        name: String,
    },
    /// A stored or given policy is bad.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The stored chain cannot be continued safely.
    #[error("chain {chain} in the decision store cannot be continued: {reason}")]
    Chain {
        /// The chain.
        chain: String,
        /// Why.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error(transparent)]
    Export(#[from] zt_export::ExportError),
    /// An agent is already registered.
    #[error("agent {0} is already registered")]
    AgentExists(String),
    /// A SPIFFE ID already speaks for another agent.
    #[error("SPIFFE ID {spiffe_id} is already bound to agent {actor}")]
    SpiffeIdBound {
        /// The SPIFFE ID.
        spiffe_id: String,
        /// The agent it is bound to.
        actor: String,
    },
    /// No active agent of that name (never registered, or revoked).
    #[error("no agent {0} is registered (or it was revoked)")]
    NoSuchAgent(String),
    /// Open mode checks no token: an admin token given with it would protect nothing, and
    /// the operator who gave one believes it does.
    #[error(
        "open mode takes no admin token (nothing would check it): drop --open, or the admin token"
    )]
    OpenWithAdminToken,
    /// Open mode listens on loopback only.
    #[error("open mode (no tokens) listens on loopback only, not {addr}")]
    OpenNotLoopback {
        /// The listener's address.
        addr: std::net::SocketAddr,
    },
    /// The chain id given is not the data directory's.
    #[error("this data directory's chain is {stored}, not {given}")]
    ChainIdMismatch {
        /// The stored chain id.
        stored: String,
        /// The chain id given.
        given: String,
    },
    /// A chain id that is empty or has control characters.
    #[error("chain id {chain_id:?} is empty or has control characters")]
    BadChainId {
        /// The chain id.
        chain_id: String,
    },
    /// Another control plane holds the chain writer's lock in this store.
    #[error("another control plane writes chain {chain} in {store}: give this one its own --chain-id (or data directory)")]
    ChainTaken {
        /// The chain.
        chain: String,
        /// The store.
        store: String,
    },
}

/// A name or resource that breaks the naming rules of `docs/schema/action-request.schema.json`
/// (`maxLength`, `visible`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty where a name is required.
    #[error("`{field}` must not be empty")]
    Empty {
        /// The member.
        field: String,
    },
    /// Longer than the schema's `maxLength`, in characters.
    #[error("`{field}` is longer than {max} characters")]
    TooLong {
        /// The member.
        field: String,
        /// The limit.
        max: usize,
    },
    /// A control character.
    #[error("`{field}` contains a control character (U+{code:04X})")]
    Control {
        /// The member.
        field: String,
        /// The character's code point.
        code: u32,
    },
    /// A character that hides or reorders text.
    #[error("`{field}` contains an invisible or text-reordering character (U+{code:04X})")]
    Invisible {
        /// The member.
        field: String,
        /// The character's code point.
        code: u32,
    },
}

/// A request the control plane does not take (400): bad input, nothing decided or recorded.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not one I-JSON text (`zt_core::json::parse`).
    #[error("request body is not JSON: {0}")]
    NotJson(#[source] zt_core::error::JsonError),
    /// A policy body that is not UTF-8.
    #[error("policy body is not UTF-8")]
    PolicyNotUtf8,
    /// The body is JSON but not an object.
    #[error("request body is a JSON {found}, not an object")]
    NotObject {
        /// The JSON type it is.
        found: &'static str,
    },
    /// A member the route does not take (its name shortened for the message).
    #[error("unknown member `{member}`{}", expected_list(.expected))]
    UnknownMember {
        /// The member.
        member: String,
        /// The members the route takes (none listed: `/actions`).
        expected: &'static [&'static str],
    },
    /// A member that must be a string.
    #[error("`{member}` must be a string, found {found}")]
    NotString {
        /// The member.
        member: String,
        /// The JSON type it is.
        found: &'static str,
    },
    /// A member that must be a whole number in a range.
    #[error("`{member}` must be a whole number from 0 to {max}")]
    NotWhole {
        /// The member.
        member: &'static str,
        /// The largest accepted.
        max: u64,
    },
    /// A name or resource that breaks the naming rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A context member only the control plane sets (`policy::RESERVED_CONTEXT`).
    #[error("context member `{0}` is the control plane's own (it sets it for policies to rely on): an agent may not send it")]
    ReservedContext(&'static str),
    /// A context number whose RFC 8785 form is an integer no double holds exactly.
    #[error("`context.{path}` is {text}, whose RFC 8785 form is an integer no double holds exactly: readers would disagree on it; send it as a string")]
    InexactNumber {
        /// Where in the context (shortened).
        path: String,
        /// The number's RFC 8785 text.
        text: String,
    },
    /// `context` is not an object.
    #[error("`context` must be an object, found {found}")]
    ContextNotObject {
        /// The JSON type it is.
        found: &'static str,
    },
    /// A principal's name in the control plane's own `zt.` namespace.
    #[error("{member} names starting with `zt.` are the control plane's own")]
    OwnName {
        /// The member naming it (`actor`, `name`).
        member: &'static str,
    },
    /// A registration without the principal's name.
    #[error("expected {{\"{member}\": \"NAME\", ...}} (members: {})", .allowed.join(", "))]
    MissingName {
        /// The member naming the principal.
        member: &'static str,
        /// The members the route takes.
        allowed: &'static [&'static str],
    },
    /// `token_ttl_s` out of range or not whole.
    #[error("`token_ttl_s` must be a whole number of seconds from 1 to {max}")]
    TokenTtl {
        /// The longest accepted, in seconds.
        max: u64,
    },
    /// `spiffe_id` is not a string.
    #[error("`spiffe_id` must be a string")]
    SpiffeIdNotString,
    /// `spiffe_id` is not a workload's SPIFFE ID.
    #[error("`spiffe_id` is not a workload's SPIFFE ID: {0}")]
    SpiffeId(#[source] zt_tls::SpiffeIdError),
    /// A SPIFFE ID no SVID could prove here: no client certificates are asked for.
    #[error("`spiffe_id` {id}: this control plane asks for no client certificates (start it with --client-ca or --trust-bundle spiffe://{trust_domain}=FILE), so no SVID could speak for it")]
    NoClientCertificates {
        /// The ID (escaped for a terminal).
        id: String,
        /// Its trust domain (escaped).
        trust_domain: String,
    },
    /// A SPIFFE ID of a trust domain this control plane holds no bundle of.
    #[error("`spiffe_id` {id}: trust domain {trust_domain} has no bundle here (held: {held}); add --trust-bundle spiffe://{trust_domain}=FILE")]
    UnheldTrustDomain {
        /// The ID (escaped for a terminal).
        id: String,
        /// Its trust domain (escaped).
        trust_domain: String,
        /// The trust domains held, comma-separated.
        held: String,
    },
    /// A broker registration without its key.
    #[error("`public_key` (the broker's P-256 public key, PEM) is required")]
    PublicKeyMissing,
    /// A broker key given as hex that is not hex.
    #[error("`public_key` is not a P-256 public key: {0}")]
    PublicKeyHex(#[source] hex::FromHexError),
    /// A broker key that is not a P-256 public key.
    #[error("`public_key` is not a P-256 public key: {0}")]
    PublicKey(#[source] zt_core::error::KeyError),
    /// A capability for one of the control plane's own actions.
    #[error("actions under `zt.` are the control plane's own; no capability is issued for one")]
    OwnAction,
    /// A capability without a lifetime in range.
    #[error("`ttl_s` (seconds, 1 to {max}) is required")]
    TtlRequired {
        /// The longest accepted, in seconds.
        max: u64,
    },
    /// A capability without grants.
    #[error("`grants` is required")]
    GrantsMissing,
    /// Grants that do not read.
    #[error("{0}")]
    Grants(#[source] zt_core::capability::CapabilityError),
    /// A grant whose path text is not what it resolves to on this host.
    #[error("{0}")]
    GrantPath(#[source] zt_broker::paths::GrantPathError),
    /// An execution filing without its report.
    #[error("`report` (the execution report) is required")]
    ReportMissing,
    /// A report or attestation that does not read.
    #[error("{0}")]
    Report(#[source] zt_core::capability::report::ReportError),
    /// A policy body that is neither Cedar nor a narrow rule.
    #[error("expected {{\"cedar\": \"...\"}} or a narrow rule {{\"action\", \"resource\"?, \"actor\"?, \"reason\"?}}")]
    NoRule,
    /// A policy that cannot be applied.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn expected_list(expected: &[&str]) -> String {
    if expected.is_empty() {
        String::new()
    } else {
        format!(" (expected {})", expected.join(", "))
    }
}
