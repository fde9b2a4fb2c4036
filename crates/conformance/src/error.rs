//! The suites' errors, two families kept apart: [`RunError`], a suite that could not run at all
//! (no verdict on the implementation; exit 2), and [`Broken`], what broke the contract in one
//! case (the case fails; its `Display` is the report's message). [`SchemaError`] says where a
//! value is off its JSON Schema.

use serde_json::Value;
use zt_core::chain::{LineError, SigCheck};

/// Why a suite could not run at all (exit 2): not a verdict on the implementation.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The keyring cannot be read.
    #[error("keyring: {0}")]
    Keyring(#[from] zt_core::error::KeyringError),
    /// The HTTP client cannot be built.
    #[error("HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The target does not answer at all.
    #[error("cannot reach the target: {0}")]
    Unreachable(#[source] Box<Broken>),
    /// The scripted server or its files cannot be set up (a temporary folder, the keyring
    /// file, a port).
    #[error("{step}: {source}")]
    Setup {
        /// `temp dir`, `writing the keyring`, `listening`, `a free port`.
        step: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No client command was given.
    #[error("no client command given (zt-audit conformance client -- CMD ARGS...)")]
    NoCommand,
}

/// What broke the contract in one case: the evidence the report shows.
#[derive(Debug, thiserror::Error)]
pub enum Broken {
    /// The target could not be asked (a connection refused, a timeout, an unreadable body).
    #[error("{path}: {}", zt_core::text::error_chain(.source))]
    Transport {
        /// The route asked.
        path: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is neither an allow with 200 nor a deny with 401/403.
    #[error("{what}: HTTP {status} with decision {}", .decision.as_deref().unwrap_or("(none)"))]
    Outcome {
        /// Which case asked, and what.
        what: String,
        /// Its HTTP status.
        status: u16,
        /// Its decision, if any.
        decision: Option<String>,
    },
    /// An allow where the contract requires a deny.
    #[error("{what}: allowed")]
    Allowed {
        /// Which case asked, and what.
        what: String,
    },
    /// An administrative request that did not succeed.
    #[error("{what}: HTTP {status}: {body}")]
    Admin {
        /// The request (`POST /agents NAME`, ...).
        what: String,
        /// Its HTTP status.
        status: u16,
        /// Its answer.
        body: Value,
    },
    /// A registration answered 201 without the agent's token.
    #[error("201 without a token: {body}")]
    NoToken {
        /// The answer.
        body: Value,
    },
    /// Registration gave no tokens, so the case cannot be tried.
    #[error("no tokens from registration to try")]
    NoTokens,
    /// A narrow rule denied its own agent, action and resource.
    #[error("the rule's own agent, action and resource were denied: {reason}")]
    NarrowDenied {
        /// The deny's reason.
        reason: String,
    },
    /// A narrow rule allowed something beside it.
    #[error("the narrow rule also allowed {what}")]
    NarrowAllowed {
        /// What else it allowed.
        what: String,
    },
    /// An unreadable request that was not refused with 400.
    #[error("{what}: HTTP {status}, not 400: {body}")]
    NotRefused {
        /// The kind of unreadable request.
        what: String,
        /// Its HTTP status.
        status: u16,
        /// Its answer.
        body: Value,
    },
    /// An unreadable request that got a decision.
    #[error("{what}: a decision was made: {body}")]
    Decided {
        /// The kind of unreadable request.
        what: String,
        /// Its answer.
        body: Value,
    },
    /// The chain moved across unreadable requests (or answers carry no seq).
    #[error(
        "the chain moved across the unreadable requests (seq {before:?} then {after:?}), or answers carry no seq"
    )]
    ChainMoved {
        /// The seq before them.
        before: Option<u64>,
        /// The seq after them.
        after: Option<u64>,
    },
    /// A request id sent twice got the same envelope: a cached answer.
    #[error(
        "the second request with the same id got the same envelope ({}): a cached answer can be replayed",
        .hash.as_deref().unwrap_or("none")
    )]
    Cached {
        /// The envelope's hash, if it had one.
        hash: Option<String>,
    },
    /// The envelope records another request id than the one sent.
    #[error("{what}: the envelope records request id {found:?}, not the one sent")]
    RequestId {
        /// Which request.
        what: String,
        /// The request id it records.
        found: Option<String>,
    },
    /// The second decision is not later on the chain than the first.
    #[error("the second decision is not later on the chain (seq {first:?} then {second:?})")]
    NotLater {
        /// The first one's seq.
        first: Option<u64>,
        /// The second one's seq.
        second: Option<u64>,
    },
    /// An answer off its JSON Schema.
    #[error("{what}: not {}: {source}", .schema)]
    Schema {
        /// Which answer.
        what: String,
        /// The schema's file.
        schema: &'static str,
        /// Where it is off.
        #[source]
        source: SchemaError,
    },
    /// No keyring was given, so no signature can be checked.
    #[error("no keyring given (--keyring): signatures cannot be checked, and the target's own /keyring.json is no trust root")]
    NoKeyring,
    /// The keyring given cannot be read.
    #[error("the keyring given: {0}")]
    Keyring(#[source] zt_core::error::KeyringError),
    /// An answer without an envelope.
    #[error("{what}: no envelope in the answer")]
    NoEnvelope {
        /// Which answer.
        what: String,
    },
    /// An answer whose envelope does not read.
    #[error("{what}: the envelope does not read: {source}")]
    Envelope {
        /// Which answer.
        what: String,
        /// Why.
        #[source]
        source: zt_core::envelope::RecordError,
    },
    /// An envelope that is not v1 with a hash that recomputes.
    #[error("{what}: not a v1 envelope whose hash recomputes")]
    NotV1 {
        /// Which answer.
        what: String,
    },
    /// A signature that did not verify under the keyring given.
    #[error("{what}: signature {check:?} under the keyring given")]
    Signature {
        /// Which answer.
        what: String,
        /// What the check found.
        check: SigCheck,
    },
    /// An envelope without a seq.
    #[error("{what}: no seq")]
    NoSeq {
        /// Which answer.
        what: String,
    },
    /// An envelope of another chain than the answer before it.
    #[error("{what}: chain {chain:?} after {previous:?}")]
    OtherChain {
        /// Which answer.
        what: String,
        /// Its chain.
        chain: Option<String>,
        /// The chain of the answer before it (its `chain_id` member, as sent).
        previous: Option<Value>,
    },
    /// A seq that does not rise.
    #[error("{what}: seq {seq} after {previous}")]
    SeqNotRising {
        /// Which answer.
        what: String,
        /// Its seq.
        seq: u64,
        /// The seq before.
        previous: u64,
    },
    /// Consecutive seqs that the chain model does not judge a line.
    #[error("{what}: seq {seq} does not continue seq {previous}: {why}")]
    Link {
        /// Which answer.
        what: String,
        /// Its seq.
        seq: u64,
        /// The seq before.
        previous: u64,
        /// The chain model's reason.
        why: LineError,
    },
    /// No two answers were consecutive, so continuity could not be seen.
    #[error("no two answers were consecutive on the chain: continuity could not be seen")]
    NoConsecutive,
    /// A client that did not run the action on a correct, signed allow.
    #[error("did not run on a correct, signed allow: the positive control failed ({said})")]
    AllowNotRun {
        /// What the client said.
        said: String,
    },
    /// A client that ran the action without a verified allow.
    #[error("the action ran ({said})")]
    Ran {
        /// What the client said.
        said: String,
    },
}

/// Where a value is off its JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The compiled-in schemas do not compile (a build with broken `docs/schema/` files).
    #[error("the schemas do not compile: {0}")]
    NotCompiled(String),
    /// The value breaks the schema: each violation with the instance path.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Violations(Vec<Violation>),
}

/// One place a value breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Violation {
    /// The JSON pointer of the value.
    pub path: String,
    /// What the schema says about it.
    pub message: String,
}
