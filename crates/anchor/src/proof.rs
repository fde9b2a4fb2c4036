//! Proof bundles: one JSON file that shows a record was part of an anchored chain.
//!
//! The path: the record -> the records after it, each linking to the one before, up to the
//! anchored head -> the head's leaf -> its RFC 6962 inclusion proof -> the epoch's root -> the
//! transaction and block that put the root in the contract. [`verify_offline`] checks every
//! step that needs no node (and the signatures, with a keyring); [`verify_on_chain`] asks a
//! node whether the contract holds that root for that epoch and the transaction is in the
//! canonical chain.

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use zt_core::keyring::Keyring;
use zt_core::{crypto, merkle, Envelope, Hash32};
use zt_store::{LeafRow, Store};

use crate::evm::Evm;
use crate::tree::{leaf_hash, log_id, Tree};

/// The bundle's format tag.
pub const FORMAT: &str = "zt-audit-proof/1";

/// The anchored leaf, as in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// Chain name.
    pub chain: String,
    /// Head position.
    pub position: u64,
    /// Head hash (hex).
    pub head: String,
}

/// A self-contained proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    /// `zt-audit-proof/1`.
    pub format: String,
    /// The record, as stored (JSON text).
    pub record: String,
    /// Its chain and position.
    pub chain: String,
    /// Its position.
    pub position: u64,
    /// The records after it up to and including the anchored head (JSON texts, in order).
    pub links: Vec<String>,
    /// The anchored head's leaf.
    pub leaf: Leaf,
    /// Its index in the epoch's tree.
    pub leaf_index: u64,
    /// Leaves in the tree.
    pub tree_size: u64,
    /// The audit path, bottom-up (hex).
    pub inclusion_proof: Vec<String>,
    /// The epoch's root (hex).
    pub root: String,
    /// The log's name.
    pub log: String,
    /// `keccak256(log)` (0x hex).
    pub log_id: String,
    /// The epoch.
    pub epoch: u64,
    /// The ZtAnchor contract (0x).
    pub contract: String,
    /// EVM chain id.
    pub chain_id: u64,
    /// The transaction (0x).
    pub transaction: String,
    /// Its block.
    pub block_number: u64,
    /// That block's hash (0x).
    pub block_hash: String,
    /// How final the store last saw it.
    pub state: String,
}

/// Why a proof cannot be made or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The record is not in the store, or not linked into a chain's main line.
    #[error("record {0}: {1}")]
    Record(String, String),
    /// No anchor on chain covers it yet.
    #[error("record {hash} (chain {chain}, position {position}) is not covered by an anchor on chain yet: run `zt-audit anchor run` and wait for inclusion")]
    NotAnchored {
        /// The record.
        hash: String,
        /// Its chain.
        chain: String,
        /// Its position.
        position: u64,
    },
    /// The store's own data is inconsistent.
    #[error("the store is inconsistent: {0}")]
    Store(String),
    /// A step of the proof fails.
    #[error("{step}: {reason}")]
    Invalid {
        /// Which step.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// The node could not be asked.
    #[error("RPC: {0}")]
    Rpc(String),
}

fn invalid(step: &'static str, reason: impl Into<String>) -> ProofError {
    ProofError::Invalid {
        step,
        reason: reason.into(),
    }
}

fn text(raw: &[u8]) -> Result<String, ProofError> {
    String::from_utf8(raw.to_vec())
        .map_err(|_| ProofError::Store("a stored record is not UTF-8".into()))
}

/// Builds the proof for the record whose `current_hash` is `hash`, from the first epoch on
/// chain of `log` (or of any log, when `None`) that covers it.
pub fn make_proof(
    store: &Store,
    log: Option<&str>,
    hash: &Hash32,
) -> Result<ProofBundle, ProofError> {
    let se = |e: zt_store::StoreError| ProofError::Store(e.to_string());
    let found = store
        .find_record(hash)
        .map_err(se)?
        .ok_or_else(|| ProofError::Record(hash.to_hex(), "not in the store".into()))?;
    let (Some(chain), Some(position), Some(0)) =
        (found.chain.clone(), found.position, found.branch)
    else {
        return Err(ProofError::Record(
            hash.to_hex(),
            "not on a chain's main line (waiting for its predecessor, or on a fork)".into(),
        ));
    };
    let logs = match log {
        Some(l) => vec![l.to_owned()],
        None => store.anchor_logs().map_err(se)?,
    };
    let mut cover = None;
    for l in &logs {
        if let Some(c) = store.covering_epoch(l, &chain, position).map_err(se)? {
            cover = Some((l.clone(), c));
            break;
        }
    }
    let Some((log, (epoch, idx, leaf))) = cover else {
        return Err(ProofError::NotAnchored {
            hash: hash.to_hex(),
            chain,
            position,
        });
    };
    let row = store
        .epoch(&log, epoch)
        .map_err(se)?
        .ok_or_else(|| ProofError::Store(format!("epoch {epoch} of {log} vanished")))?;
    let leaves = store.leaves(&log, epoch).map_err(se)?;
    let tree = Tree::in_order(leaves);
    if tree.root() != row.root {
        return Err(ProofError::Store(format!(
            "the leaves of epoch {epoch} do not hash to its root"
        )));
    }
    let path = tree
        .proof(usize::try_from(idx).unwrap_or(usize::MAX))
        .ok_or_else(|| ProofError::Store(format!("leaf {idx} is not in epoch {epoch}")))?;
    let links = if leaf.position > position {
        store
            .main_line(&chain, position + 1, leaf.position)
            .map_err(se)?
            .into_iter()
            .map(|r| text(&r.raw))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(ProofBundle {
        format: FORMAT.into(),
        record: text(&found.raw)?,
        chain,
        position,
        links,
        leaf: Leaf {
            chain: leaf.chain.clone(),
            position: leaf.position,
            head: leaf.head.to_hex(),
        },
        leaf_index: idx,
        tree_size: tree.leaves().len() as u64,
        inclusion_proof: path.iter().map(Hash32::to_hex).collect(),
        root: row.root.to_hex(),
        log: log.clone(),
        log_id: format!("{:#x}", log_id(&log)),
        epoch,
        contract: row.contract.clone().unwrap_or_default(),
        chain_id: row.network_chain_id.unwrap_or(0),
        transaction: row.tx_hash.clone().unwrap_or_default(),
        block_number: row.block_number.unwrap_or(0),
        block_hash: row.block_hash.clone().unwrap_or_default(),
        state: row.state.name().into(),
    })
}

/// What an offline check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The record's hash.
    pub record: Hash32,
    /// Records from it to the head.
    pub records: usize,
    /// Signatures verified (with a keyring).
    pub signatures: usize,
}

fn hash(step: &'static str, s: &str) -> Result<Hash32, ProofError> {
    Hash32::from_hex(s).ok_or_else(|| invalid(step, format!("{s:?} is not a 64-digit hex hash")))
}

/// Checks everything that needs no node: each record's content produces its hash, each link
/// holds, the last record is the anchored head, the leaf is in the tree under the root, the
/// log id is the log's. With `keyring`, every record's signature too.
pub fn verify_offline(b: &ProofBundle, keyring: Option<&Keyring>) -> Result<Checked, ProofError> {
    if b.format != FORMAT {
        return Err(invalid("format", format!("{:?} is not {FORMAT}", b.format)));
    }
    let mut prev: Option<Hash32> = None;
    let mut first = None;
    let mut signatures = 0;
    for (i, t) in std::iter::once(&b.record).chain(&b.links).enumerate() {
        let step = if i == 0 { "record" } else { "links" };
        let env = Envelope::from_json(t.as_bytes())
            .map_err(|e| invalid(step, format!("record {i}: {e}")))?;
        if env.detect_profile().is_none() {
            return Err(invalid(
                step,
                format!(
                    "record {i}: its content does not produce its hash {}",
                    env.current_hash
                ),
            ));
        }
        if let Some(p) = prev {
            if env.previous_hash != p {
                return Err(invalid(
                    "links",
                    format!(
                        "record {i} links to {}, not to the record before it ({p})",
                        env.previous_hash
                    ),
                ));
            }
        }
        if let Some(ring) = keyring {
            let key = ring.get(&env.signature.key_id).ok_or_else(|| {
                invalid(
                    "signatures",
                    format!(
                        "record {i}: key {:?} is not in the keyring",
                        env.signature.key_id
                    ),
                )
            })?;
            let der = crypto::decode_signature(&env.signature.signature)
                .map_err(|e| invalid("signatures", format!("record {i}: {e}")))?;
            key.public_key
                .verify_digest(&env.current_hash, &der)
                .map_err(|_| {
                    invalid(
                        "signatures",
                        format!("record {i}: the signature does not verify"),
                    )
                })?;
            signatures += 1;
        }
        first.get_or_insert(env.current_hash);
        prev = Some(env.current_hash);
    }
    let head = hash("leaf", &b.leaf.head)?;
    if prev != Some(head) {
        return Err(invalid(
            "head",
            format!(
                "the last record is {}, the anchored head is {head}",
                prev.map_or("none".into(), |p| p.to_hex())
            ),
        ));
    }
    if b.leaf.chain != b.chain || b.leaf.position != b.position + b.links.len() as u64 {
        return Err(invalid(
            "leaf",
            format!(
                "the leaf is ({}, {}), the records end at ({}, {})",
                b.leaf.chain,
                b.leaf.position,
                b.chain,
                b.position + b.links.len() as u64
            ),
        ));
    }
    let leaf = leaf_hash(&LeafRow {
        chain: b.leaf.chain.clone(),
        position: b.leaf.position,
        head,
    });
    let path = b
        .inclusion_proof
        .iter()
        .map(|s| hash("inclusion_proof", s))
        .collect::<Result<Vec<_>, _>>()?;
    let root = hash("root", &b.root)?;
    if !merkle::verify_inclusion(b.leaf_index, b.tree_size, &leaf, &path, &root) {
        return Err(invalid(
            "inclusion_proof",
            format!(
                "leaf {} of {} does not lead to root {root}",
                b.leaf_index, b.tree_size
            ),
        ));
    }
    if b.log_id != format!("{:#x}", log_id(&b.log)) {
        return Err(invalid(
            "log_id",
            format!("{} is not keccak256({:?})", b.log_id, b.log),
        ));
    }
    Ok(Checked {
        record: first.unwrap_or(Hash32::ZERO),
        records: 1 + b.links.len(),
        signatures,
    })
}

/// What the node confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// The transaction's block now (it may differ from the bundle's after a reorg).
    pub block_number: u64,
    /// Whether that block is the bundle's.
    pub same_block: bool,
    /// The latest block.
    pub latest: u64,
}

/// Asks the node: the chain id, the transaction's receipt and its `Anchored` event from the
/// contract, and `rootOf(logId, epoch)`.
pub async fn verify_on_chain(b: &ProofBundle, evm: &Evm) -> Result<OnChain, ProofError> {
    let rpc = |e: crate::AnchorError| ProofError::Rpc(e.to_string());
    if evm.chain_id() != b.chain_id {
        return Err(invalid(
            "chain_id",
            format!(
                "the node is chain {}, the proof names {}",
                evm.chain_id(),
                b.chain_id
            ),
        ));
    }
    let contract: Address = b
        .contract
        .parse()
        .map_err(|_| invalid("contract", format!("{:?} is not an address", b.contract)))?;
    let tx: B256 = b
        .transaction
        .parse()
        .map_err(|_| invalid("transaction", format!("{:?} is not a hash", b.transaction)))?;
    let id = log_id(&b.log);
    let root = B256::from(hash("root", &b.root)?.0);
    let receipt = evm
        .receipt(tx)
        .await
        .map_err(rpc)?
        .ok_or_else(|| invalid("transaction", format!("{tx:#x} is not in the chain")))?;
    if !receipt.success {
        return Err(invalid("transaction", format!("{tx:#x} reverted")));
    }
    let emitted = receipt.anchored.iter().any(|(addr, lid, ep, r, _)| {
        *addr == contract && *lid == id && *ep == b.epoch && *r == root
    });
    // A retry of the same (epoch, root) is a no-op without an event: the contract's state
    // below is the authority; the event, when present, must match.
    let held = evm.root_of(contract, id, b.epoch).await.map_err(rpc)?;
    if held != root {
        return Err(invalid(
            "contract",
            format!("rootOf({}, {}) is {held:#x}, not {root:#x}", b.log, b.epoch),
        ));
    }
    if !emitted && !receipt.anchored.is_empty() {
        return Err(invalid(
            "transaction",
            format!("{tx:#x} anchored something else"),
        ));
    }
    let latest = evm
        .tag_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(rpc)?
        .unwrap_or(0);
    Ok(OnChain {
        block_number: receipt.block_number,
        same_block: format!("{:#x}", receipt.block_hash) == b.block_hash,
        latest,
    })
}
