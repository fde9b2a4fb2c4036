//! Anchoring state, beside the evidence: for each log (an anchoring target) its epochs (root,
//! leaf count, transaction and its state) and each epoch's leaves `(chain, position, head)`.
//! An epoch is written, with its leaves, before its transaction is sent, and never changes
//! its root: a retry resends the same (epoch, root).

use std::collections::HashMap;

use zt_core::chain::SigStatus;
use zt_core::Hash32;

use crate::error::StoreError;
use crate::sql::SqlRow;
use crate::store::Store;
use crate::types::{now_ms, Line};

/// Where an epoch's transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EpochState {
    /// Built and stored; no transaction sent yet.
    Pending,
    /// A transaction was sent; no receipt yet.
    Submitted,
    /// In a block (`latest`).
    Included,
    /// In a block at or below the node's `safe` block.
    Safe,
    /// In a block at or below the node's `finalized` block.
    Finalized,
    /// The transaction reverted or the root on chain differs: needs an operator.
    Failed,
    /// The node no longer knows the transaction: it is sent again.
    Dropped,
    /// Its block left the canonical chain: it is sent again.
    Reorged,
}

impl EpochState {
    /// All states.
    pub const ALL: [EpochState; 8] = [
        EpochState::Pending,
        EpochState::Submitted,
        EpochState::Included,
        EpochState::Safe,
        EpochState::Finalized,
        EpochState::Failed,
        EpochState::Dropped,
        EpochState::Reorged,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            EpochState::Pending => "pending",
            EpochState::Submitted => "submitted",
            EpochState::Included => "included",
            EpochState::Safe => "safe",
            EpochState::Finalized => "finalized",
            EpochState::Failed => "failed",
            EpochState::Dropped => "dropped",
            EpochState::Reorged => "reorged",
        }
    }

    /// From the stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    /// On chain in some block (not necessarily final).
    pub fn on_chain(self) -> bool {
        matches!(
            self,
            EpochState::Included | EpochState::Safe | EpochState::Finalized
        )
    }
}

impl std::fmt::Display for EpochState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One epoch of one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRow {
    /// The log's name.
    pub log: String,
    /// Its number (from 1).
    pub epoch: u64,
    /// The Merkle root.
    pub root: Hash32,
    /// Leaves in the tree.
    pub leaf_count: u64,
    /// Where its transaction stands.
    pub state: EpochState,
    /// EVM chain id of the network.
    pub network_chain_id: Option<u64>,
    /// Contract address (0x...).
    pub contract: Option<String>,
    /// The log's owner on the contract (0x...): its id there is bound to this address. `None`
    /// for epochs anchored before logs had owners.
    pub owner: Option<String>,
    /// Latest transaction sent (0x...).
    pub tx_hash: Option<String>,
    /// That transaction, signed.
    pub raw_tx: Option<Vec<u8>>,
    /// Its nonce.
    pub nonce: Option<u64>,
    /// Block it is in.
    pub block_number: Option<u64>,
    /// That block's hash (0x...).
    pub block_hash: Option<String>,
    /// Transactions sent for this epoch.
    pub attempts: u64,
    /// Last error or revert reason.
    pub note: Option<String>,
    /// When the epoch was built, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// A record found by hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    /// Its chain (`None` while waiting).
    pub chain: Option<String>,
    /// Its position (`None` while waiting).
    pub position: Option<u64>,
    /// Its line (`None` while waiting); only a [`Line::Main`] record counts.
    pub line: Option<Line>,
    /// `previous_hash` (as stored).
    pub previous_hash: Hash32,
    /// Its signature status, as checked when it was stored.
    pub status: SigStatus,
    /// The bytes as received.
    pub raw: Vec<u8>,
}

/// A main-line record with its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord {
    /// Position.
    pub position: u64,
    /// `current_hash` (as stored).
    pub current_hash: Hash32,
    /// `previous_hash` (as stored).
    pub previous_hash: Hash32,
    /// Its signature status, as checked when it was stored.
    pub status: SigStatus,
    /// The bytes as received.
    pub raw: Vec<u8>,
}

/// One leaf: a chain's head at anchoring time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeafRow {
    /// Chain name (as in the store).
    pub chain: String,
    /// Position of the head.
    pub position: u64,
    /// The head's `current_hash`.
    pub head: Hash32,
}

/// A `LeafRow` from columns `(chain, position, head)` starting at `at`.
fn leaf_row(r: &mut SqlRow, at: usize) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        chain: r.text(at)?,
        position: u64_of(r.opt_i64(at + 1)?).unwrap_or(0),
        head: r.hash(at + 2)?,
    })
}

fn u64_of(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const EPOCH_COLUMNS: &str =
    "log, epoch, root, leaf_count, state, network_chain_id, contract, tx_hash, \
     raw_tx, nonce, block_number, block_hash, attempts, note, created_at_ms, updated_at_ms, owner";

fn epoch_row(mut r: SqlRow) -> Result<EpochRow, StoreError> {
    let state = r.text(4)?;
    Ok(EpochRow {
        log: r.text(0)?,
        epoch: u64_of(r.opt_i64(1)?).unwrap_or(0),
        root: r.hash(2)?,
        leaf_count: u64_of(r.opt_i64(3)?).unwrap_or(0),
        state: EpochState::from_name(&state).unwrap_or(EpochState::Failed),
        network_chain_id: u64_of(r.opt_i64(5)?),
        contract: r.opt_text(6)?,
        tx_hash: r.opt_text(7)?,
        raw_tx: r.opt_blob(8)?,
        nonce: u64_of(r.opt_i64(9)?),
        block_number: u64_of(r.opt_i64(10)?),
        block_hash: r.opt_text(11)?,
        attempts: u64_of(r.opt_i64(12)?).unwrap_or(0),
        note: r.opt_text(13)?,
        created_at_ms: r.i64(14)?,
        updated_at_ms: r.i64(15)?,
        owner: r.opt_text(16)?,
    })
}

impl Store {
    /// The head of every chain's main line: `(chain, position, current_hash)`, by chain.
    pub fn main_heads(&self) -> Result<Vec<LeafRow>, StoreError> {
        let rows = self.conn.borrow_mut().query(
            "SELECT r.chain, r.position, r.current_hash FROM records r \
             JOIN (SELECT chain, MAX(position) AS p FROM records WHERE branch = 0 GROUP BY chain) m \
               ON r.chain = m.chain AND r.position = m.p \
             WHERE r.branch = 0 ORDER BY r.chain, r.id",
            &[],
        )?;
        let mut out: Vec<LeafRow> = Vec::new();
        for mut row in rows {
            let row = leaf_row(&mut row, 0)?;
            // Two records at one v1 position on the main line are a fork: the first stays.
            if out.last().is_some_and(|l| l.chain == row.chain) {
                continue;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// The highest position of each chain in an epoch of `log` that is on chain.
    pub fn anchored_positions(&self, log: &str) -> Result<HashMap<String, u64>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT l.chain, MAX(l.position) FROM anchor_leaves l \
                 JOIN anchor_epochs e ON e.log = l.log AND e.epoch = l.epoch \
                 WHERE l.log = ?1 AND e.state IN ('included', 'safe', 'finalized') GROUP BY l.chain",
                args![log],
            )?
            .into_iter()
            .map(|mut r| Ok((r.text(0)?, u64_of(r.opt_i64(1)?).unwrap_or(0))))
            .collect()
    }

    /// The highest epoch of `log`.
    pub fn latest_epoch(&self, log: &str) -> Result<Option<EpochRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query_opt(
                &format!(
                    "SELECT {EPOCH_COLUMNS} FROM anchor_epochs WHERE log = ?1 ORDER BY epoch DESC LIMIT 1"
                ),
                args![log],
            )?
            .map(epoch_row)
            .transpose()
    }

    /// One epoch.
    pub fn epoch(&self, log: &str, epoch: u64) -> Result<Option<EpochRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query_opt(
                &format!("SELECT {EPOCH_COLUMNS} FROM anchor_epochs WHERE log = ?1 AND epoch = ?2"),
                args![log, i64_of(epoch)],
            )?
            .map(epoch_row)
            .transpose()
    }

    /// Every epoch of `log` (all logs when `None`), in order.
    pub fn epochs(&self, log: Option<&str>) -> Result<Vec<EpochRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                &format!(
                    "SELECT {EPOCH_COLUMNS} FROM anchor_epochs WHERE CAST(?1 AS TEXT) IS NULL OR log = ?1 ORDER BY log, epoch"
                ),
                args![log],
            )?
            .into_iter()
            .map(epoch_row)
            .collect()
    }

    /// Stores a new epoch and its leaves in one transaction. Fails (and changes nothing) when
    /// the epoch exists: two writers never both store one.
    pub fn insert_epoch(&mut self, row: &EpochRow, leaves: &[LeafRow]) -> Result<(), StoreError> {
        let conn = self.conn.get_mut();
        let mut tx = conn.begin()?;
        tx.exec(
            &format!(
                "INSERT INTO anchor_epochs ({EPOCH_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            args![
                &row.log,
                i64_of(row.epoch),
                &row.root,
                i64_of(row.leaf_count),
                row.state.name(),
                row.network_chain_id.map(i64_of),
                row.contract.as_ref(),
                row.tx_hash.as_ref(),
                row.raw_tx.as_ref(),
                row.nonce.map(i64_of),
                row.block_number.map(i64_of),
                row.block_hash.as_ref(),
                i64_of(row.attempts),
                row.note.as_ref(),
                row.created_at_ms,
                row.updated_at_ms,
                row.owner.as_ref(),
            ],
        )?;
        for (i, l) in leaves.iter().enumerate() {
            tx.exec(
                "INSERT INTO anchor_leaves (log, epoch, idx, chain, position, head) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![
                    &row.log,
                    i64_of(row.epoch),
                    i64::try_from(i).unwrap_or(i64::MAX),
                    &l.chain,
                    i64_of(l.position),
                    &l.head
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes an epoch's transaction fields and state (the root and leaves never change).
    pub fn update_epoch(&self, row: &EpochRow) -> Result<(), StoreError> {
        self.conn.borrow_mut().exec(
            "UPDATE anchor_epochs SET state = ?3, network_chain_id = ?4, contract = ?5, tx_hash = ?6, \
             raw_tx = ?7, nonce = ?8, block_number = ?9, block_hash = ?10, attempts = ?11, note = ?12, \
             updated_at_ms = ?13 WHERE log = ?1 AND epoch = ?2",
            args![
                &row.log,
                i64_of(row.epoch),
                row.state.name(),
                row.network_chain_id.map(i64_of),
                row.contract.as_ref(),
                row.tx_hash.as_ref(),
                row.raw_tx.as_ref(),
                row.nonce.map(i64_of),
                row.block_number.map(i64_of),
                row.block_hash.as_ref(),
                i64_of(row.attempts),
                row.note.as_ref(),
                now_ms(),
            ],
        )?;
        Ok(())
    }

    /// The leaves of one epoch, in tree order.
    pub fn leaves(&self, log: &str, epoch: u64) -> Result<Vec<LeafRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT chain, position, head FROM anchor_leaves WHERE log = ?1 AND epoch = ?2 ORDER BY idx",
                args![log, i64_of(epoch)],
            )?
            .into_iter()
            .map(|mut r| leaf_row(&mut r, 0))
            .collect()
    }

    /// The first epoch of `log` on chain whose leaf for `chain` is at or after `position`:
    /// `(epoch, leaf index, leaf)`.
    pub fn covering_epoch(
        &self,
        log: &str,
        chain: &str,
        position: u64,
    ) -> Result<Option<(u64, u64, LeafRow)>, StoreError> {
        self.conn
            .borrow_mut()
            .query_opt(
                "SELECT l.epoch, l.idx, l.chain, l.position, l.head FROM anchor_leaves l \
                 JOIN anchor_epochs e ON e.log = l.log AND e.epoch = l.epoch \
                 WHERE l.log = ?1 AND l.chain = ?2 AND l.position >= ?3 \
                   AND e.state IN ('included', 'safe', 'finalized') \
                 ORDER BY l.epoch LIMIT 1",
                args![log, chain, i64_of(position)],
            )?
            .map(|mut r| {
                Ok((
                    u64_of(r.opt_i64(0)?).unwrap_or(0),
                    u64_of(r.opt_i64(1)?).unwrap_or(0),
                    leaf_row(&mut r, 2)?,
                ))
            })
            .transpose()
    }

    /// Logs that have epochs.
    pub fn anchor_logs(&self) -> Result<Vec<String>, StoreError> {
        self.conn
            .borrow_mut()
            .query("SELECT DISTINCT log FROM anchor_epochs ORDER BY log", &[])?
            .into_iter()
            .map(|mut r| Ok(r.text(0)?))
            .collect()
    }

    /// A record by its hash.
    pub fn find_record(&self, hash: &Hash32) -> Result<Option<FoundRecord>, StoreError> {
        self.conn
            .borrow_mut()
            .query_opt(
                "SELECT chain, position, branch, raw, status, previous_hash FROM records \
                 WHERE current_hash = ?1",
                args![hash],
            )?
            .map(|mut r| {
                Ok(FoundRecord {
                    chain: r.opt_text(0)?,
                    position: u64_of(r.opt_i64(1)?),
                    line: r.line(2)?,
                    raw: r.blob(3)?,
                    status: r.status(4)?,
                    previous_hash: r.hash(5)?,
                })
            })
            .transpose()
    }

    /// The main-line records of `chain` from `from` to `to` (positions, inclusive), in order.
    pub fn main_line(
        &self,
        chain: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<LineRecord>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT position, current_hash, previous_hash, raw, status FROM records \
                 WHERE chain = ?1 AND branch = 0 AND position BETWEEN ?2 AND ?3 ORDER BY position, id",
                args![chain, i64_of(from), i64_of(to)],
            )?
            .into_iter()
            .map(|mut r| {
                Ok(LineRecord {
                    position: u64_of(r.opt_i64(0)?).unwrap_or(0),
                    current_hash: r.hash(1)?,
                    previous_hash: r.hash(2)?,
                    raw: r.blob(3)?,
                    status: r.status(4)?,
                })
            })
            .collect()
    }
}
