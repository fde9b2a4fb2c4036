//! Findings and the report.

use std::collections::BTreeSet;

use serde::Serialize;
use zt_core::{Hash32, Profile};

/// What is wrong with a record. The names are a fixed surface: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Not readable as an envelope (not JSON, wrong types, missing members, ...).
    Malformed,
    /// `current_hash` does not recompute from the record.
    HashMismatch,
    /// The first record of a chain does not start at the zero hash.
    BadGenesis,
    /// `previous_hash` is not the preceding record's `current_hash`.
    BrokenLink,
    /// A second record claims a predecessor that already has a successor.
    Fork,
    /// A v1 sequence number is not the previous one plus one.
    SeqGap,
    /// The signature does not verify (or is not a P-256 DER signature).
    BadSignature,
    /// The signing key is not in the keyring.
    UnknownKey,
    /// The key was not valid when the record was signed.
    KeyNotValid,
    /// The signature verifies, but the keyring binds the key to other chains.
    UnauthorizedSigner,
    /// Signature algorithm `none` (or no signature).
    Unsigned,
    /// `MOCK_ECDSA_SHA_256`: a demo label, not a signature.
    MockSignature,
    /// The chain stops before the expected head.
    Truncated,
    /// A lineage record holds members its profile's hash does not cover.
    UncoveredMember,
    /// An execution record (`zt.broker.execution`, allowed) names no allow decision of its
    /// agent under its capability on any main line read.
    ExecutionUnlinked,
    /// An allowed execution record carries no broker attestation, or one that does not verify
    /// under the key the broker's registration record (read here) states: nothing but the
    /// agent's word says what ran.
    ExecutionUnattested,
    /// A second allowed execution record for one allow: one allow, one execution.
    ExecutionDuplicate,
}

impl FindingKind {
    /// The kind's name as reported.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::HashMismatch => "hash_mismatch",
            Self::BadGenesis => "bad_genesis",
            Self::BrokenLink => "broken_link",
            Self::Fork => "fork",
            Self::SeqGap => "seq_gap",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::KeyNotValid => "key_not_valid",
            Self::UnauthorizedSigner => "unauthorized_signer",
            Self::Unsigned => "unsigned",
            Self::MockSignature => "mock_signature",
            Self::Truncated => "truncated",
            Self::UncoveredMember => "uncovered_member",
            Self::ExecutionUnlinked => "execution_unlinked",
            Self::ExecutionUnattested => "execution_unattested",
            Self::ExecutionDuplicate => "execution_duplicate",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One break, with its position and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The record's 0-based position in its input file.
    pub index: u64,
    /// The input file as given.
    pub file: String,
    /// What is wrong.
    pub kind: FindingKind,
    /// The chain the record belongs to (for unreadable records: the chain being read).
    pub chain: String,
    /// What a sound record would have.
    pub expected: String,
    /// What this record has.
    pub found: String,
    /// One sentence for people.
    pub message: String,
    /// 1-based line where the record starts.
    pub line: u64,
    #[serde(skip)]
    pub(crate) file_ord: usize,
}

impl Finding {
    /// The `errors` line of the lineage-compatible report.
    pub fn error_line(&self) -> String {
        format!(
            "{} record {} (line {}): {}: {}",
            self.file, self.index, self.line, self.kind, self.message
        )
    }
}

/// One chain's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSummary {
    /// Chain name: the v1 `chain_id`, or the file for lineage logs.
    pub chain: String,
    /// The profile the chain was verified under.
    pub profile: Option<String>,
    /// Records in the chain.
    pub records: u64,
    /// The chain's head: its last main-line record (trusted and unbroken from the genesis).
    /// An unverified record is never a head.
    pub head: Option<String>,
    /// The last record read, whatever it is.
    pub last: Option<String>,
    /// No finding in this chain.
    pub ok: bool,
    /// Findings in this chain.
    pub findings: u64,
    /// Records whose signature verified.
    pub verified_signatures: u64,
    /// Records accepted unsigned or mock-signed under `--allow-unsigned` (never "verified").
    pub unsigned_allowed: u64,
    /// Key ids whose signatures verified.
    pub keys: BTreeSet<String>,
    /// Files the chain was read from.
    pub files: Vec<String>,
}

/// The result of a verification run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every chain verified and no input failed to read.
    pub ok: bool,
    /// Records read (readable or not).
    pub records: u64,
    /// Per chain.
    pub chains: Vec<ChainSummary>,
    /// One line per finding, and per input that could not be read.
    pub errors: Vec<String>,
    /// The findings, in input order.
    pub findings: Vec<Finding>,
    /// Inputs that could not be read at all (missing, a directory, I/O error): exit code 2.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_errors: Vec<String>,
    /// What the execution records read say, and who vouches for it.
    pub executions: Executions,
}

/// The execution records read, by what stands behind them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Executions {
    /// Allowed execution records whose broker signature verified here, under the key of the
    /// broker's registration record (sealed under the keyring given): broker-attested.
    pub attested: u64,
    /// Allowed execution records whose broker signature the control plane checked when it
    /// sealed them, but whose broker registration is not in what was read (so the signature
    /// was not checked again here): vouched for by the control plane's key only.
    pub vouched: u64,
    /// Execution reports the control plane kept as denies: an agent's own account (a claim)
    /// or a broker's report that failed a check. Evidence of an attempt, not of an execution.
    pub not_accepted: u64,
    /// Broker registrations read (names and key ids), the trust each attestation was checked
    /// under.
    pub brokers: Vec<String>,
}

pub(crate) fn hash_or_empty(h: Option<Hash32>) -> String {
    h.map(|h| h.to_hex()).unwrap_or_default()
}

pub(crate) fn profile_name(p: Option<Profile>) -> Option<String> {
    p.map(|p| p.name().to_owned())
}
