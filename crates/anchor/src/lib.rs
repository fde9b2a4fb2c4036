//! Anchoring chain heads on an EVM contract (`ZtAnchor`, Base Sepolia by default), with alloy.
//!
//! - [`tree`]: each epoch's RFC 6962 tree over `(chain, position, head)` leaves; a log on the
//!   contract ([`tree::LogRef`]) is its owner's.
//! - [`evm`]: the node: signing with explicit nonces and fees, broadcasting, receipts,
//!   finality, events; the contract's ABI.
//! - [`rpc`]: RPC URLs carry provider keys; the one rule that redacts them in every error,
//!   log and `Debug` print ([`rpc::RpcUrl`], [`rpc::redact`]).
//! - [`job`]: the scheduled job: an epoch is stored before it is sent and never changes its
//!   root, so any crash or outage can only lead to the same anchor being sent again.
//! - [`reconcile`]: local evidence against the chain: missing, failed or different anchors,
//!   anchors not final, anchors the store does not know, and above all chains that no longer
//!   contain an anchored head (truncated, or rewritten even with valid signatures).
//! - [`lineage`]: a lineage JSONL file against a `DAALog` deployment (`logAction` events per
//!   record, `logBatch` roots), counting only the loggers named, at a bounded cost.
//! - [`proof`]: self-contained proof bundles (record -> links -> head -> inclusion proof ->
//!   root -> transaction -> block) and their check under a trust root the verifier gives: a
//!   keyring offline, and the contract, writer and owner against a node.
//! - [`anvil`]: a local node (Foundry's anvil) for the demo, benchmarks and tests: found where
//!   a user keeps it, and ended with its children.
//!
//! ```no_run
//! use zt_anchor::{evm::{Evm, Network}, job::{Anchorer, JobConfig}};
//! # async fn run(store: &mut zt_store::Store, key: alloy::signers::local::PrivateKeySigner) -> Result<(), zt_anchor::AnchorError> {
//! let evm = Evm::connect("http://127.0.0.1:8545", Network::Local).await?;
//! let contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap();
//! let outcome = Anchorer::new(store, &evm, &key, JobConfig::new("prod-audit", contract)).run_once().await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

pub mod anvil;
pub mod error;
pub mod evm;
pub mod job;
pub mod lineage;
pub mod proof;
pub mod reconcile;
pub mod rpc;
pub mod tree;

pub use error::{AnchorError, LineageFileError};
