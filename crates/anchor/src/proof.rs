//! Proof bundles: one JSON file that shows a record was part of an anchored chain.
//!
//! The path: the record -> the records after it, each linking to the one before, up to the
//! anchored head -> the head's leaf -> its RFC 6962 inclusion proof -> the epoch's root -> the
//! transaction and block that put the root in the contract.
//!
//! A bundle is whoever wrote the file: nothing in it vouches for itself. Its check takes a trust
//! root from the person verifying:
//! - [`verify_offline`] takes the keyring. Every record of the path must be a line under the
//!   chain model ([`zt_core::chain::check_line`]: links, genesis, seq, one profile, trust), each
//!   record's trust decided by [`zt_core::chain::check_signature`] under that keyring (so key
//!   windows count) and [`TrustPolicy::default`] (unsigned records never count in a proof).
//!   Then the head's leaf, its inclusion proof and the log id.
//! - [`verify_on_chain`] takes [`Pins`]: the contract, the anchoring address (the writer) and
//!   the log's owner. The node must hold the root for that owner's log in that contract, and
//!   the transaction must come from that writer and carry that anchor. The contract, owner and
//!   transaction the bundle names are compared with the pins, never trusted.
//!
//! [`make_proof`] refuses to build a path through a record that does not count (its stored
//! signature status under the default policy, its content, its links), even though the store
//! keeps such records off main lines: a store edited by hand must not yield a proof.

use std::collections::BTreeSet;

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use zt_core::chain::{
    check_line, inspect, lineage_chain_name, LineError, Node, SigCheck, SigStatus, Successor, Tip,
    TrustPolicy,
};
use zt_core::envelope::{shorten, RecordError};
use zt_core::keyring::Keyring;
use zt_core::{merkle, Hash32};
use zt_store::{LeafRow, Line, Store};

use crate::evm::Evm;
use crate::reconcile::stored_node;
use crate::tree::{leaf_hash, log_id, Tree};

/// The bundle's format tag. Version 2: logs have owners (`owner`, and `log_id` binds it).
pub const FORMAT: &str = "zt-audit-proof/2";

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
    /// `zt-audit-proof/2`.
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
    /// The log's owner on the contract (0x).
    pub owner: String,
    /// `keccak256(abi.encode(owner, keccak256(log)))` (0x hex).
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
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The record is not in the store.
    #[error("record {0}: not in the store")]
    NotInStore(Hash32),
    /// The record is not on a chain's main line.
    #[error("record {0}: not on a chain's main line (waiting for its predecessor, on a fork, or its signature did not verify)")]
    NotOnMainLine(Hash32),
    /// No anchor on chain covers it yet.
    #[error("record {hash} (chain {chain}, position {position}) is not covered by an anchor on chain yet: run `zt-audit anchor run` and wait for inclusion")]
    NotAnchored {
        /// The record.
        hash: Hash32,
        /// Its chain.
        chain: String,
        /// Its position.
        position: u64,
    },
    /// A record on the path does not count (making a proof).
    #[error("{0}")]
    DoesNotCount(Box<DoesNotCount>),
    /// The epoch was anchored before logs had owners: its log id is not this version's.
    #[error("epoch {epoch} of log {log} was anchored before logs had owners; anchor again to prove its records")]
    NoOwner {
        /// The log.
        log: String,
        /// The epoch.
        epoch: u64,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] zt_store::StoreError),
    /// The store's own data is inconsistent.
    #[error("the store is inconsistent: {0}")]
    Inconsistent(String),
    /// A record of the bundle cannot be read.
    #[error("{step}: record {index}: {error}")]
    Unreadable {
        /// `record` or `links`.
        step: &'static str,
        /// Its index on the path (0: the record).
        index: usize,
        /// Why.
        error: RecordError,
    },
    /// A record of the bundle cannot be part of the line to the head (verifying a proof).
    #[error("{0}")]
    Line(Box<NotALine>),
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
    Rpc(#[from] crate::AnchorError),
}

/// A record on a store's path to an anchored head that does not count.
#[derive(Debug, thiserror::Error)]
#[error("record {hash} (chain {chain}, position {position}, signature {status}) cannot be part of a proof: {why}")]
pub struct DoesNotCount {
    /// Its chain.
    pub chain: String,
    /// Its position.
    pub position: u64,
    /// Its hash.
    pub hash: Hash32,
    /// Its stored signature status.
    pub status: SigStatus,
    /// What the chain model says.
    pub why: LineError,
}

/// A record of a bundle that cannot be part of the line to its head.
#[derive(Debug, thiserror::Error)]
#[error("{step}: record {index} ({hash}): {why}{}", signature_note(.why, .signature, .key_id))]
pub struct NotALine {
    /// `record` or `links`.
    pub step: &'static str,
    /// Its index on the path (0: the record).
    pub index: usize,
    /// Its hash.
    pub hash: Hash32,
    /// What the chain model says.
    pub why: LineError,
    /// Its signature under the verifier's keyring.
    pub signature: SigCheck,
    /// The key id it names.
    pub key_id: String,
}

/// What an untrusted record's signature showed, for the message.
fn signature_note(why: &LineError, sig: &SigCheck, key_id: &str) -> String {
    if !matches!(why, LineError::Untrusted) {
        return String::new();
    }
    let status = sig.status();
    match sig {
        SigCheck::Verified => String::new(),
        SigCheck::Unsigned | SigCheck::Mock => {
            format!(" ({status}: a proof's records must be signed under the keyring)")
        }
        SigCheck::UnknownKey => format!(
            " ({status}: key \"{}\" is not in the keyring)",
            shorten(key_id)
        ),
        SigCheck::KeyNotValid(v) => format!(" ({status}: key \"{}\": {v})", shorten(key_id)),
        SigCheck::Bad(b) => format!(" ({status}: {b})"),
        SigCheck::Unauthorized { bound } => format!(
            " ({status}: key \"{}\" signs only {})",
            shorten(key_id),
            bound.join(", ")
        ),
    }
}

fn invalid(step: &'static str, reason: impl Into<String>) -> ProofError {
    ProofError::Invalid {
        step,
        reason: reason.into(),
    }
}

fn text(raw: &[u8]) -> Result<String, ProofError> {
    String::from_utf8(raw.to_vec())
        .map_err(|_| ProofError::Inconsistent("a stored record is not UTF-8".into()))
}

/// The predecessor of a path's first record at `position`, as the chain model needs it: the
/// record it names. The path proves the record leads to the head, not what came before it;
/// for v1 the position is its seq, so its seq must be the predecessor's plus one.
fn path_start(position: u64, first: &Node) -> Option<Tip> {
    let before = position.checked_sub(1)?;
    Some(Tip {
        current: first.previous,
        position: before,
        seq: first.seq.map(|_| before),
        main: true,
        successor: Successor::None,
        successor_at: None,
        at: None,
    })
}

/// Builds the proof for the record whose `current_hash` is `hash`, from the first epoch on
/// chain of `log` (or of any log, when `None`) that covers it. Every record on the path must
/// count: see the module docs.
pub fn make_proof(
    store: &Store,
    log: Option<&str>,
    hash: &Hash32,
) -> Result<ProofBundle, ProofError> {
    let found = store
        .find_record(hash)?
        .ok_or(ProofError::NotInStore(*hash))?;
    let (Some(chain), Some(position), Some(Line::Main)) =
        (found.chain.clone(), found.position, found.line)
    else {
        return Err(ProofError::NotOnMainLine(*hash));
    };
    let logs = match log {
        Some(l) => vec![l.to_owned()],
        None => store.anchor_logs()?,
    };
    let mut cover = None;
    for l in &logs {
        if let Some(c) = store.covering_epoch(l, &chain, position)? {
            cover = Some((l.clone(), c));
            break;
        }
    }
    let Some((log, (epoch, idx, leaf))) = cover else {
        return Err(ProofError::NotAnchored {
            hash: *hash,
            chain,
            position,
        });
    };
    let row = store
        .epoch(&log, epoch)?
        .ok_or_else(|| ProofError::Inconsistent(format!("epoch {epoch} of {log} vanished")))?;
    let owner: Address = row
        .owner
        .as_deref()
        .ok_or_else(|| ProofError::NoOwner {
            log: log.clone(),
            epoch,
        })?
        .parse()
        .map_err(|_| {
            ProofError::Inconsistent(format!("the owner of epoch {epoch} is not an address"))
        })?;
    let leaves = store.leaves(&log, epoch)?;
    let tree = Tree::in_order(leaves);
    if tree.root() != row.root {
        return Err(ProofError::Inconsistent(format!(
            "the leaves of epoch {epoch} do not hash to its root"
        )));
    }
    let path = tree
        .proof(usize::try_from(idx).unwrap_or(usize::MAX))
        .ok_or_else(|| ProofError::Inconsistent(format!("leaf {idx} is not in epoch {epoch}")))?;
    let links = if leaf.position > position {
        store.main_line(&chain, position + 1, leaf.position)?
    } else {
        Vec::new()
    };
    // The path must be exactly the positions from the record to the head.
    if let Some((i, r)) = links
        .iter()
        .enumerate()
        .find(|(i, r)| r.position != position + 1 + *i as u64)
    {
        return Err(ProofError::Inconsistent(format!(
            "chain {chain} has no single main-line record at position {} (found {})",
            position + 1 + i as u64,
            r.position
        )));
    }
    if position + links.len() as u64 != leaf.position {
        return Err(ProofError::Inconsistent(format!(
            "chain {chain} ends at position {} before its anchored head at {}",
            position + links.len() as u64,
            leaf.position
        )));
    }
    // Each record as the chain model sees it, trusted by its stored status under the default
    // policy: the path must be a line of records that count.
    let policy = TrustPolicy::default();
    let path_records: Vec<(Hash32, SigStatus, Node)> = std::iter::once((
        *hash,
        found.previous_hash,
        found.status,
        found.raw.as_slice(),
    ))
    .chain(
        links
            .iter()
            .map(|r| (r.current_hash, r.previous_hash, r.status, r.raw.as_slice())),
    )
    .map(|(h, prev, status, raw)| {
        let trusted = policy.trusts(Some(&chain), status);
        (h, status, stored_node(h, prev, raw, trusted))
    })
    .collect();
    let start = path_records
        .first()
        .and_then(|(_, _, n)| path_start(position, n));
    if let Err((i, why)) = check_line(start, None, path_records.iter().map(|(_, _, n)| n.clone())) {
        let (h, status, _) = &path_records[i];
        return Err(ProofError::DoesNotCount(Box::new(DoesNotCount {
            chain,
            position: position + i as u64,
            hash: *h,
            status: *status,
            why,
        })));
    }
    let last = path_records.last().map_or(*hash, |(h, _, _)| *h);
    if last != leaf.head {
        return Err(ProofError::Inconsistent(format!(
            "the record at position {} of chain {chain} is {last}, the anchored head is {}",
            leaf.position, leaf.head
        )));
    }
    Ok(ProofBundle {
        format: FORMAT.into(),
        record: text(&found.raw)?,
        chain,
        position,
        links: links
            .iter()
            .map(|r| text(&r.raw))
            .collect::<Result<Vec<_>, _>>()?,
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
        owner: format!("{owner:#x}"),
        log_id: format!("{:#x}", log_id(owner, &log)),
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
    /// Signatures verified under the keyring (every record's).
    pub signatures: usize,
    /// The keyring's key ids that signed them.
    pub keys: BTreeSet<String>,
}

fn hash(step: &'static str, s: &str) -> Result<Hash32, ProofError> {
    Hash32::from_hex(s).ok_or_else(|| {
        invalid(
            step,
            format!("\"{}\" is not a 64-digit hex hash", shorten(s)),
        )
    })
}

fn address(step: &'static str, s: &str) -> Result<Address, ProofError> {
    s.parse()
        .map_err(|_| invalid(step, format!("\"{}\" is not a 0x address", shorten(s))))
}

/// Checks everything that needs no node, under the verifier's `keyring`: the records of the
/// path form a line under the chain model (each one's content produces its hash, links, seq,
/// one profile, and each one's signature verifies under `keyring` by a key valid at its time;
/// unsigned records never count here), they are of the bundle's chain, the last is the anchored
/// head, its leaf is in the tree under the root, and the log id is the owner's log's. What it
/// cannot check: that the root was anchored ([`verify_on_chain`]).
pub fn verify_offline(b: &ProofBundle, keyring: &Keyring) -> Result<Checked, ProofError> {
    if b.format != FORMAT {
        return Err(invalid(
            "format",
            format!("\"{}\" is not {FORMAT}", shorten(&b.format)),
        ));
    }
    let policy = TrustPolicy::default();
    let mut nodes = Vec::with_capacity(1 + b.links.len());
    let mut checks = Vec::with_capacity(1 + b.links.len());
    for (i, t) in std::iter::once(&b.record).chain(&b.links).enumerate() {
        let step = if i == 0 { "record" } else { "links" };
        let ins = inspect(t.as_bytes(), keyring, None).map_err(|error| ProofError::Unreadable {
            step,
            index: i,
            error,
        })?;
        let env = &ins.envelope;
        // A v1 record names its chain: it must be the bundle's (the leaf is checked against
        // the bundle's chain below). A lineage chain is named after its first record.
        let named = env.v1.as_ref().map(|v1| v1.chain_id.as_str());
        if let Some(c) = named.filter(|c| *c != b.chain) {
            return Err(invalid(
                step,
                format!(
                    "record {i} is of chain \"{}\", the bundle says \"{}\"",
                    shorten(c),
                    shorten(&b.chain)
                ),
            ));
        }
        if named.is_none() && b.position == 0 && i == 0 {
            let name = lineage_chain_name(&env.current_hash);
            if name != b.chain {
                return Err(invalid(
                    step,
                    format!(
                        "the lineage chain starting at record 0 is {name}, the bundle says \"{}\"",
                        shorten(&b.chain)
                    ),
                ));
            }
        }
        nodes.push(ins.node(policy.trusts(Some(&b.chain), ins.signature.status())));
        checks.push((env.signature.key_id.clone(), ins.signature));
    }
    let start = nodes.first().and_then(|n| path_start(b.position, n));
    if let Err((i, why)) = check_line(start, None, nodes.iter().cloned()) {
        let (key_id, signature) = checks.swap_remove(i);
        return Err(ProofError::Line(Box::new(NotALine {
            step: if i == 0 { "record" } else { "links" },
            index: i,
            hash: nodes[i].current,
            why,
            signature,
            key_id,
        })));
    }
    let last = nodes.last().map(|n| n.current);
    let head = hash("leaf", &b.leaf.head)?;
    if last != Some(head) {
        return Err(invalid(
            "head",
            format!(
                "the last record is {}, the anchored head is {head}",
                last.map_or("none".into(), |p| p.to_hex())
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
    let owner = address("owner", &b.owner)?;
    if b.log_id != format!("{:#x}", log_id(owner, &b.log)) {
        return Err(invalid(
            "log_id",
            format!(
                "{} is not the id of log \"{}\" of owner {owner:#x}",
                b.log_id, b.log
            ),
        ));
    }
    let keys: BTreeSet<String> = checks.into_iter().map(|(k, _)| k).collect();
    Ok(Checked {
        record: nodes.first().map_or(Hash32::ZERO, |n| n.current),
        records: nodes.len(),
        // Every record of a line is trusted, and under the default policy only a verified
        // signature is.
        signatures: nodes.len(),
        keys,
    })
}

/// What the person verifying pins for the on-chain check: never read from the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pins {
    /// The `ZtAnchor` deployment.
    pub contract: Address,
    /// The anchoring address: the transaction's sender must be it.
    pub writer: Address,
    /// The log's owner: the log id is this owner's log of the bundle's name (usually the
    /// writer; another address when the writer anchors for an owner that authorized it).
    pub owner: Address,
}

/// What the node confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnChain {
    /// The node's chain id.
    pub chain_id: u64,
    /// The transaction's block now (it may differ from the bundle's after a reorg).
    pub block_number: u64,
    /// Whether that block is the bundle's.
    pub same_block: bool,
    /// The latest block.
    pub latest: u64,
}

/// Asks the node, against the verifier's `pins`: the bundle's contract and owner must be the
/// pinned ones; the transaction must be in the chain, successful, sent by the pinned writer,
/// and carry the `Anchored` event of (the owner's log, epoch, root) from the pinned contract;
/// and the pinned contract's `rootOf(logId, epoch)` must be the root.
pub async fn verify_on_chain(
    b: &ProofBundle,
    evm: &Evm,
    pins: &Pins,
) -> Result<OnChain, ProofError> {
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
    if address("contract", &b.contract)? != pins.contract {
        return Err(invalid(
            "contract",
            format!(
                "the bundle names contract {}, not the pinned {:#x}",
                b.contract, pins.contract
            ),
        ));
    }
    if address("owner", &b.owner)? != pins.owner {
        return Err(invalid(
            "owner",
            format!(
                "the bundle's log belongs to {}, not the pinned owner {:#x}",
                b.owner, pins.owner
            ),
        ));
    }
    let tx: B256 = b.transaction.parse().map_err(|_| {
        invalid(
            "transaction",
            format!("\"{}\" is not a hash", shorten(&b.transaction)),
        )
    })?;
    let id = log_id(pins.owner, &b.log);
    let root = B256::from(hash("root", &b.root)?.0);
    let receipt = evm
        .receipt(tx)
        .await?
        .ok_or_else(|| invalid("transaction", format!("{tx:#x} is not in the chain")))?;
    if !receipt.success {
        return Err(invalid("transaction", format!("{tx:#x} reverted")));
    }
    if receipt.from != pins.writer {
        return Err(invalid(
            "writer",
            format!(
                "{tx:#x} was sent by {:#x}, not the pinned writer {:#x}",
                receipt.from, pins.writer
            ),
        ));
    }
    // The transaction must be the one that anchored this root: a retry of a recorded (epoch,
    // root) is a no-op without an event, and would prove nothing about when the root arrived.
    let emitted = receipt.anchored.iter().any(|a| {
        a.contract == pins.contract && a.log_id == id && a.epoch == b.epoch && a.root == root
    });
    if !emitted {
        return Err(invalid(
            "transaction",
            format!(
                "{tx:#x} did not anchor root {root:#x} for epoch {} of log \"{}\" of {:#x} on {:#x}",
                b.epoch, b.log, pins.owner, pins.contract
            ),
        ));
    }
    let held = evm.root_of(pins.contract, id, b.epoch).await?;
    if held != root {
        return Err(invalid(
            "contract",
            format!("rootOf({}, {}) is {held:#x}, not {root:#x}", b.log, b.epoch),
        ));
    }
    let latest = evm
        .tag_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .unwrap_or(0);
    Ok(OnChain {
        chain_id: evm.chain_id(),
        block_number: receipt.block_number,
        same_block: format!("{:#x}", receipt.block_hash) == b.block_hash,
        latest,
    })
}
