//! The anchor job: each run settles the epoch in flight, then, if any chain's head moved
//! since the last epoch on chain, builds the next epoch and anchors it.
//!
//! The epoch (number, root, leaves) is committed to the store **before** any transaction is
//! signed, and its root never changes. Every transaction sent for it carries that same
//! (epoch, root), which the contract accepts once and ignores after: a crash or an RPC outage
//! at any point, followed by a run, can only resend the same anchor. A new epoch is built only
//! once the previous one is on chain, from the heads past what is on chain, so no head is
//! skipped.
//!
//! States: `pending` (stored, nothing sent) -> `submitted` (signed bytes and hash stored, then
//! broadcast) -> `included` -> `safe` -> `finalized`; `dropped` (the node forgot it and its
//! nonce went to something else) and `reorged` (its block left the canonical chain) go back to
//! sending; `failed` (it reverted) stops the job for an operator.

use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use zt_store::{EpochRow, EpochState, Store};

use crate::error::{AnchorError, LogElsewhere};
use crate::evm::{Evm, Fees, SendOutcome};
use crate::tree::{LogRef, Tree};

/// What the job needs besides the store and the node.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The log's name.
    pub log: String,
    /// Whose log it is (its id on chain binds this address: [`LogRef::id`]). `None`: the
    /// anchoring key's address. Another address when the key is a writer the owner authorized
    /// (`setWriter`).
    pub owner: Option<Address>,
    /// The `ZtAnchor` contract.
    pub contract: Address,
    /// Fees and gas cap.
    pub fees: Fees,
    /// How long one run waits for its transaction to be mined before leaving it `submitted`
    /// for the next run.
    pub receipt_timeout: Duration,
    /// Poll interval while waiting.
    pub poll: Duration,
    /// How long an unmined transaction the node no longer knows is given before it is
    /// rebroadcast, then replaced.
    pub dropped_after: Duration,
}

impl JobConfig {
    /// Defaults: 120 s receipt timeout, 500 ms poll, 60 s before a vanished tx is replaced.
    pub fn new(log: impl Into<String>, contract: Address) -> Self {
        Self {
            log: log.into(),
            owner: None,
            contract,
            fees: Fees::default(),
            receipt_timeout: Duration::from_secs(120),
            poll: Duration::from_millis(500),
            dropped_after: Duration::from_secs(60),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// No head moved since the last epoch on chain.
    NothingToAnchor {
        /// The latest epoch (0: none).
        latest_epoch: u64,
    },
    /// An epoch is on chain (the one in flight, or a new one).
    Anchored(EpochRow),
    /// Sent but not mined within the run's timeout: the next run carries on.
    Waiting(EpochRow),
}

fn now_ms() -> i64 {
    zt_store::now_ms()
}

fn hex32(h: B256) -> String {
    format!("{h:#x}")
}

fn parse_b256(s: &str) -> Option<B256> {
    s.parse().ok()
}

/// The job for one log on one contract.
#[derive(Debug)]
pub struct Anchorer<'a> {
    store: &'a mut Store,
    evm: &'a Evm,
    signer: &'a PrivateKeySigner,
    cfg: JobConfig,
}

impl<'a> Anchorer<'a> {
    /// A job over `store`, sending with `signer` through `evm`.
    pub fn new(
        store: &'a mut Store,
        evm: &'a Evm,
        signer: &'a PrivateKeySigner,
        cfg: JobConfig,
    ) -> Self {
        Self {
            store,
            evm,
            signer,
            cfg,
        }
    }

    /// The log this job writes: the configured owner's (or the key's own) log.
    pub fn log(&self) -> LogRef {
        LogRef::new(
            self.cfg.owner.unwrap_or_else(|| self.signer.address()),
            self.cfg.log.clone(),
        )
    }

    /// Before anything is built or sent: the store's epochs of this log must be this owner's on
    /// this contract (another owner's or contract's epochs would be continued under ids they
    /// never had), and a key that is not the owner must be an authorized writer (otherwise the
    /// epoch would be stored, then revert, and stop the job).
    async fn preflight(&self, last: Option<&EpochRow>) -> Result<(), AnchorError> {
        let log = self.log();
        let owner = format!("{:#x}", log.owner);
        let contract = format!("{:#x}", self.cfg.contract);
        if let Some(e) = last {
            if e.owner.as_deref() != Some(owner.as_str())
                || e.contract.as_deref() != Some(contract.as_str())
            {
                return Err(AnchorError::LogElsewhere(Box::new(LogElsewhere {
                    log: self.cfg.log.clone(),
                    epoch: e.epoch,
                    stored_owner: e.owner.clone(),
                    stored_contract: e.contract.clone(),
                    owner,
                    contract,
                })));
            }
        }
        let me = self.signer.address();
        if me != log.owner && !self.evm.is_writer(self.cfg.contract, log.id(), me).await? {
            return Err(AnchorError::NotWriter {
                log: self.cfg.log.clone(),
                owner,
                writer: format!("{me:#x}"),
            });
        }
        Ok(())
    }

    /// One run: settle the epoch in flight; then anchor the heads that moved, if any.
    pub async fn run_once(&mut self) -> Result<RunOutcome, AnchorError> {
        let last = self.store.latest_epoch(&self.cfg.log)?;
        self.preflight(last.as_ref()).await?;
        if let Some(last) = last {
            if !last.state.on_chain() {
                let settled = self.settle(last).await?;
                if !settled.state.on_chain() {
                    return Ok(RunOutcome::Waiting(settled));
                }
            } else {
                // Still where we left it? A reorg may have taken it out.
                let checked = self.refresh(last).await?;
                if !checked.state.on_chain() {
                    let settled = self.settle(checked).await?;
                    if !settled.state.on_chain() {
                        return Ok(RunOutcome::Waiting(settled));
                    }
                }
            }
        }
        let Some(next) = self.build_epoch()? else {
            let latest_epoch = self
                .store
                .latest_epoch(&self.cfg.log)?
                .map_or(0, |e| e.epoch);
            return Ok(RunOutcome::NothingToAnchor { latest_epoch });
        };
        let settled = self.settle(next).await?;
        Ok(if settled.state.on_chain() {
            RunOutcome::Anchored(settled)
        } else {
            RunOutcome::Waiting(settled)
        })
    }

    /// The next epoch over the heads past what is on chain, stored as `pending`; `None` when
    /// nothing moved.
    fn build_epoch(&mut self) -> Result<Option<EpochRow>, AnchorError> {
        let anchored = self.store.anchored_positions(&self.cfg.log)?;
        let moved: Vec<_> = self
            .store
            .main_heads()?
            .into_iter()
            .filter(|h| anchored.get(&h.chain).is_none_or(|p| h.position > *p))
            .collect();
        if moved.is_empty() {
            return Ok(None);
        }
        let epoch = self
            .store
            .latest_epoch(&self.cfg.log)?
            .map_or(1, |e| e.epoch + 1);
        let tree = Tree::new(moved);
        let now = now_ms();
        let row = EpochRow {
            log: self.cfg.log.clone(),
            epoch,
            root: tree.root(),
            leaf_count: tree.leaves().len() as u64,
            state: EpochState::Pending,
            network_chain_id: Some(self.evm.chain_id()),
            contract: Some(format!("{:#x}", self.cfg.contract)),
            owner: Some(format!("{:#x}", self.log().owner)),
            tx_hash: None,
            raw_tx: None,
            nonce: None,
            block_number: None,
            block_hash: None,
            attempts: 0,
            note: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_epoch(&row, tree.leaves())?;
        Ok(Some(row))
    }

    /// Drives an epoch towards `included` until the receipt timeout.
    async fn settle(&mut self, mut row: EpochRow) -> Result<EpochRow, AnchorError> {
        let deadline = tokio::time::Instant::now() + self.cfg.receipt_timeout;
        let mut unseen_since: Option<tokio::time::Instant> = None;
        // Poll fast at first (a local node mines at once), then at the configured pace.
        let mut wait = Duration::from_millis(10).min(self.cfg.poll);
        loop {
            row = match row.state {
                EpochState::Pending | EpochState::Dropped | EpochState::Reorged => {
                    unseen_since = None;
                    self.submit(row).await?
                }
                EpochState::Submitted => {
                    let (next, unseen) = self.check_submitted(row).await?;
                    if unseen {
                        let since = *unseen_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= self.cfg.dropped_after {
                            let mut d = next;
                            d.state = EpochState::Dropped;
                            d.note = Some("the node no longer knows the transaction".into());
                            self.store.update_epoch(&d)?;
                            d
                        } else {
                            next
                        }
                    } else {
                        next
                    }
                }
                EpochState::Failed => {
                    return Err(AnchorError::Stuck {
                        log: row.log.clone(),
                        epoch: row.epoch,
                        reason: format!(
                            "the anchor transaction failed ({}); see `zt-audit reconcile`",
                            row.note.clone().unwrap_or_default()
                        ),
                    })
                }
                _ => return self.refresh(row).await,
            };
            if row.state.on_chain() {
                return self.refresh(row).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(self.cfg.poll);
        }
    }

    /// Signs a new transaction for the epoch's (epoch, root), stores it, then broadcasts.
    async fn submit(&mut self, mut row: EpochRow) -> Result<EpochRow, AnchorError> {
        let log = self.log();
        let root = B256::from(row.root.0);
        // Already recorded on chain (an earlier transaction landed after all): nothing to send.
        let on_chain = self
            .evm
            .root_of(self.cfg.contract, log.id(), row.epoch)
            .await?;
        if on_chain == root {
            if let Some(found) = self.find_anchored_tx(&row).await? {
                return Ok(found);
            }
        } else if on_chain != B256::ZERO {
            row.state = EpochState::Failed;
            row.note = Some(format!(
                "the contract holds root {on_chain:#x} for epoch {}, not ours {root:#x}",
                row.epoch
            ));
            self.store.update_epoch(&row)?;
            return Ok(row);
        }
        let nonce = self.evm.pending_nonce(self.signer.address()).await?;
        let input = Evm::anchor_calldata(&log, row.epoch, root, row.leaf_count);
        let (hash, raw) = match self
            .evm
            .sign(
                self.signer,
                Some(self.cfg.contract),
                input,
                nonce,
                &self.cfg.fees,
            )
            .await
        {
            Ok(x) => x,
            Err(AnchorError::Revert(reason)) => {
                row.state = EpochState::Failed;
                row.note = Some(reason);
                self.store.update_epoch(&row)?;
                return Ok(row);
            }
            Err(e) => return Err(e),
        };
        // Stored before it is sent: after a crash the next run finds it and rebroadcasts the
        // same bytes instead of signing a second transaction.
        row.state = EpochState::Submitted;
        row.tx_hash = Some(hex32(hash));
        row.raw_tx = Some(raw.clone());
        row.nonce = Some(nonce);
        row.block_number = None;
        row.block_hash = None;
        row.attempts += 1;
        row.note = None;
        self.store.update_epoch(&row)?;
        if let Err(e) = self.evm.send_raw(&raw).await {
            row.note = Some(e.to_string());
            self.store.update_epoch(&row)?;
            return Err(e);
        }
        Ok(row)
    }

    /// After a dropped/replaced transaction: the `Anchored` event of this (epoch, root), if any
    /// transaction of ours put it there.
    async fn find_anchored_tx(&mut self, row: &EpochRow) -> Result<Option<EpochRow>, AnchorError> {
        let latest = self
            .evm
            .tag_number(BlockNumberOrTag::Latest)
            .await?
            .unwrap_or(0);
        let events = self
            .evm
            .anchored_events(self.cfg.contract, self.log().id(), 0, latest, 50_000)
            .await?;
        let root = B256::from(row.root.0);
        let Some(ev) = events
            .into_iter()
            .find(|e| e.epoch == row.epoch && e.root == root)
        else {
            return Ok(None);
        };
        let mut found = row.clone();
        if let (Some(tx), Some(bn)) = (ev.tx_hash, ev.block_number) {
            found.tx_hash = Some(hex32(tx));
            found.block_number = Some(bn);
            found.block_hash = self.evm.block_hash(bn).await?.map(hex32);
        }
        found.state = EpochState::Included;
        found.note = Some("recorded on chain by an earlier transaction".into());
        self.store.update_epoch(&found)?;
        Ok(Some(found))
    }

    /// Looks at a submitted transaction: mined, failed, pending, or unknown to the node (then
    /// rebroadcast). Returns the row and whether the node did not know the transaction.
    async fn check_submitted(
        &mut self,
        mut row: EpochRow,
    ) -> Result<(EpochRow, bool), AnchorError> {
        let Some(hash) = row.tx_hash.as_deref().and_then(parse_b256) else {
            row.state = EpochState::Pending;
            self.store.update_epoch(&row)?;
            return Ok((row, false));
        };
        if let Some(r) = self.evm.receipt(hash).await? {
            if r.success {
                row.state = EpochState::Included;
                row.block_number = Some(r.block_number);
                row.block_hash = Some(hex32(r.block_hash));
                row.note = None;
            } else {
                row.state = EpochState::Failed;
                row.block_number = Some(r.block_number);
                row.block_hash = Some(hex32(r.block_hash));
                row.note = Some("the anchor transaction reverted".into());
            }
            self.store.update_epoch(&row)?;
            return Ok((row, false));
        }
        if self.evm.tx_known(hash).await? {
            return Ok((row, false));
        }
        // Unknown to the node: it never arrived (RPC died mid-send) or was evicted. Send the
        // very same bytes again.
        if let Some(raw) = row.raw_tx.clone() {
            match self.evm.send_raw(&raw).await? {
                SendOutcome::Accepted => return Ok((row, false)),
                SendOutcome::NonceTooLow => {
                    // Its nonce went to another transaction: this one can never be mined.
                    // Was the anchor recorded some other way?
                    if let Some(found) = self.find_anchored_tx(&row).await? {
                        return Ok((found, false));
                    }
                    row.state = EpochState::Dropped;
                    row.note = Some("its nonce was used by another transaction".into());
                    self.store.update_epoch(&row)?;
                    return Ok((row, false));
                }
            }
        }
        Ok((row, true))
    }

    /// For an epoch on chain: still in the canonical chain, and how final.
    async fn refresh(&mut self, mut row: EpochRow) -> Result<EpochRow, AnchorError> {
        let (Some(bn), Some(bh)) = (row.block_number, row.block_hash.clone()) else {
            return Ok(row);
        };
        let canonical = self.evm.block_hash(bn).await?.map(hex32);
        if canonical.as_deref() != Some(bh.as_str()) {
            // Its block is gone. The transaction may be in another block now.
            if let Some(hash) = row.tx_hash.as_deref().and_then(parse_b256) {
                if let Some(r) = self.evm.receipt(hash).await? {
                    if r.success {
                        row.block_number = Some(r.block_number);
                        row.block_hash = Some(hex32(r.block_hash));
                        row.state = EpochState::Included;
                        row.note = Some("moved to another block by a reorg".into());
                        self.store.update_epoch(&row)?;
                        return Ok(row);
                    }
                }
            }
            row.state = EpochState::Reorged;
            row.note = Some(format!("block {bn} {bh} left the canonical chain"));
            row.block_number = None;
            row.block_hash = None;
            self.store.update_epoch(&row)?;
            return Ok(row);
        }
        let finalized = self.evm.tag_number(BlockNumberOrTag::Finalized).await?;
        let safe = self.evm.tag_number(BlockNumberOrTag::Safe).await?;
        let state = if finalized.is_some_and(|f| bn <= f) {
            EpochState::Finalized
        } else if safe.is_some_and(|s| bn <= s) {
            EpochState::Safe
        } else {
            EpochState::Included
        };
        if state != row.state {
            row.state = state;
            self.store.update_epoch(&row)?;
        }
        Ok(row)
    }
}

/// What a scheduled job ([`run_every`]) reports, run after run.
#[derive(Debug)]
pub enum Tick {
    /// A run ended.
    Ran(Box<RunOutcome>),
    /// Another job leads this log; the next try is after `retry_in`.
    StandingBy {
        /// Until the next try.
        retry_in: Duration,
    },
    /// A run failed; the next try is after `retry_in` (2 s, 4 s, ... never longer than the
    /// schedule), to ride out an outage.
    Failed {
        /// Why.
        error: AnchorError,
        /// Until the next try.
        retry_in: Duration,
    },
}

/// The role a job leads in its store ([`Store::try_lead`]): one leader per log across every
/// host, so two jobs never build or send the same epoch.
pub fn leader_role(cfg: &JobConfig, signer: &PrivateKeySigner) -> String {
    format!(
        "anchor {:#x} {:#x} {}",
        cfg.contract,
        cfg.owner.unwrap_or_else(|| signer.address()),
        cfg.log
    )
}

/// One run, if this job leads its log (None: another job does, and nothing was done): the
/// contract must be deployed where `evm` points.
///
/// # Errors
/// The store, the node, or no contract at the configured address.
pub async fn run_led_once(
    store: &mut Store,
    evm: &Evm,
    signer: &PrivateKeySigner,
    cfg: JobConfig,
) -> Result<Option<RunOutcome>, AnchorError> {
    if !store.try_lead(&leader_role(&cfg, signer))? {
        return Ok(None);
    }
    if !evm.has_code(cfg.contract).await? {
        return Err(AnchorError::Config(format!(
            "no contract at {:#x} on chain {}",
            cfg.contract,
            evm.chain_id()
        )));
    }
    Anchorer::new(store, evm, signer, cfg)
        .run_once()
        .await
        .map(Some)
}

/// Runs the job every `every` until `stop` resolves, connecting afresh for each run
/// (`connect`), asking for the lead each time (a session that was lost lost the lock too),
/// and reporting each run to `tick`. Stopping between runs loses nothing: the next start
/// resumes from the store.
pub async fn run_every<C, F>(
    store: &mut Store,
    connect: C,
    signer: &PrivateKeySigner,
    cfg: &JobConfig,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
    mut tick: impl FnMut(Tick),
) where
    C: Fn() -> F,
    F: std::future::Future<Output = Result<Evm, AnchorError>>,
{
    let role = leader_role(cfg, signer);
    tokio::pin!(stop);
    let mut failures = 0u32;
    loop {
        let step = match store.try_lead(&role) {
            Ok(true) => match connect().await {
                Ok(evm) => {
                    Anchorer::new(store, &evm, signer, cfg.clone())
                        .run_once()
                        .await
                }
                Err(e) => Err(e),
            },
            Ok(false) => {
                tick(Tick::StandingBy { retry_in: every });
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(every) => continue,
                }
            }
            Err(e) => Err(AnchorError::from(e)),
        };
        let wait = match step {
            Ok(outcome) => {
                failures = 0;
                tick(Tick::Ran(Box::new(outcome)));
                every
            }
            Err(error) => {
                failures += 1;
                let retry_in = Duration::from_secs(1u64 << failures.min(10)).min(every);
                tick(Tick::Failed { error, retry_in });
                retry_in
            }
        };
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
