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
