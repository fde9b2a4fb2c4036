//! Anchoring errors: configuration and keys (the operator's to fix), the node (retry), the
//! contract saying no (a revert: needs a look), and the store.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// Bad flags, URL, address or artifact.
    #[error("{0}")]
    Config(String),
    /// The signing key is missing or unusable (its value is never printed).
    #[error("anchor key: {0}")]
    Key(String),
    /// The node failed or is unreachable: retry later.
    #[error("RPC: {0}")]
    Rpc(String),
    /// The contract reverted.
    #[error("the contract reverted: {0}")]
    Revert(String),
    /// The evidence store failed.
    #[error("store: {0}")]
    Store(#[from] zt_store::StoreError),
    /// The store's epochs of this log were anchored as another owner or on another contract.
    #[error("{0}")]
    LogElsewhere(Box<LogElsewhere>),
    /// The anchoring key is neither the log's owner nor a writer it authorized.
    #[error("log {log} of owner {owner}: {writer} is not its owner, nor a writer the owner authorized (the owner runs `zt-audit anchor set-writer --log {log} --writer {writer}`)")]
    NotWriter {
        /// The log's name.
        log: String,
        /// Its owner.
        owner: String,
        /// The anchoring key's address.
        writer: String,
    },
    /// The anchoring state cannot go on without an operator.
    #[error("epoch {epoch} of log {log}: {reason}")]
    Stuck {
        /// The log.
        log: String,
        /// The epoch.
        epoch: u64,
        /// Why.
        reason: String,
    },
}

/// The store's epochs of a log were anchored as another owner or on another contract than a
/// run's: continuing would anchor under an id they never had.
#[derive(Debug, thiserror::Error)]
#[error("log {log}: epoch {epoch} in this store was anchored as owner {} on contract {}; this run anchors as owner {owner} on contract {contract}: give the same owner and contract, or another --log", stored_owner.as_deref().unwrap_or("(none: before logs had owners)"), stored_contract.as_deref().unwrap_or("(none)"))]
pub struct LogElsewhere {
    /// The log's name.
    pub log: String,
    /// The store's latest epoch of it.
    pub epoch: u64,
    /// Its owner, as stored.
    pub stored_owner: Option<String>,
    /// Its contract, as stored.
    pub stored_contract: Option<String>,
    /// This run's owner.
    pub owner: String,
    /// This run's contract.
    pub contract: String,
}

/// A lineage file (`reconcile --lineage`) with a line that is not an audit envelope.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct LineageFileError {
    /// The line (1-based).
    pub line: usize,
    /// Why it is not an envelope.
    #[source]
    pub source: zt_core::envelope::RecordError,
}
