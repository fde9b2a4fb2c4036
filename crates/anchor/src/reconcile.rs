//! Reconciliation: the local store against the chain.
//!
//! Findings, each naming the epoch or the chain and position, with expected and found:
//! - `anchor_missing`: an epoch the store has (or believes is mined) that the contract never
//!   recorded, past the finality window;
//! - `tx_failed`: its transaction reverted;
//! - `root_differs`: the contract holds another root for the epoch, or the stored leaves no
//!   longer hash to the stored root (the anchoring data was edited);
//! - `unknown_on_chain`: an `Anchored` event for this log that the store does not know;
//! - `not_final`: on chain, but still not finalized past the window;
//! - `truncated`: a chain ends before a position whose head was anchored;
//! - `rewritten`: at or before an anchored position, a record is missing, or the main line breaks
//!   a chain rule (a link, the genesis, a v1 seq, the chain's one profile, a record's content
//!   not producing its hash: [`zt_core::chain`] decides, as everywhere), or the record at the
//!   anchored position is not the anchored head. A key holder who rewrites and re-signs a chain
//!   passes signature checks; the anchored head, taken before, is what catches it.
//!
//! Only anchors the chain confirms (an `Anchored` event with the stored root) are used to check
//! heads: a store cannot vouch for itself. Signatures are `zt-audit verify`'s job.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use rayon::prelude::*;
use serde::Serialize;
use zt_core::chain::{check_line, Break, LineError, Node, Successor, Tip};
use zt_core::{Envelope, Hash32, Profile};
use zt_store::{EpochState, LineRecord, Store};

use crate::error::AnchorError;
use crate::evm::{AnchoredEvent, Evm};
use crate::tree::{LogRef, Tree};

/// What kind of inconsistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The store has an epoch the contract never recorded.
    AnchorMissing,
    /// The anchor transaction reverted.
    TxFailed,
    /// Roots disagree (chain vs store, or stored leaves vs stored root).
    RootDiffers,
    /// The chain has an epoch the store does not know.
    UnknownOnChain,
    /// Not finalized past the window.
    NotFinal,
    /// A chain ends before an anchored head.
    Truncated,
    /// A chain no longer contains an anchored head as anchored.
    Rewritten,
    /// A record logged on chain (lineage `DAALog.logAction`) is not in the file.
    MissingRecord,
    /// A batch root on chain (lineage `DAALog.logBatch`) matches no run of the file's records.
    BatchUnmatched,
}

impl FindingKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::AnchorMissing => "anchor_missing",
            FindingKind::TxFailed => "tx_failed",
            FindingKind::RootDiffers => "root_differs",
            FindingKind::UnknownOnChain => "unknown_on_chain",
            FindingKind::NotFinal => "not_final",
            FindingKind::Truncated => "truncated",
            FindingKind::Rewritten => "rewritten",
            FindingKind::MissingRecord => "missing_record",
            FindingKind::BatchUnmatched => "batch_unmatched",
        }
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Kind.
    pub kind: FindingKind,
    /// The epoch concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    /// The evidence chain concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The position in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
    /// In words.
    pub message: String,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// No finding.
    pub ok: bool,
    /// The log.
    pub log: String,
    /// Its owner (given by the person reconciling).
    pub owner: String,
    /// Its id on chain.
    pub log_id: String,
    /// The contract.
    pub contract: String,
    /// The EVM chain id.
    pub chain_id: u64,
    /// Epochs in the store.
    pub local_epochs: u64,
    /// `Anchored` events on chain for this log.
    pub chain_epochs: u64,
    /// Epochs both agree on.
    pub confirmed_epochs: u64,
    /// Epochs sent or being sent, within the window: not findings yet.
    pub in_flight: u64,
    /// Evidence chains whose anchored heads were checked.
    pub chains_checked: u64,
    /// Records read doing so.
    pub records_checked: u64,
    /// The inconsistencies.
    pub findings: Vec<Finding>,
}

/// Knobs.
#[derive(Debug, Clone)]
pub struct Options {
    /// First block to read events from (the contract's deployment block, say).
    pub from_block: u64,
    /// Blocks per `eth_getLogs` query.
    pub span: u64,
    /// An anchor older than this and not finalized (or not on chain) is a finding.
    pub final_within: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            from_block: 0,
            span: 50_000,
            final_within: Duration::from_secs(3600),
        }
    }
}

fn finding(
    kind: FindingKind,
    epoch: Option<u64>,
    chain: Option<&str>,
    position: Option<u64>,
    expected: impl Into<String>,
    found: impl Into<String>,
    message: impl Into<String>,
) -> Finding {
    Finding {
        kind,
        epoch,
        chain: chain.map(str::to_owned),
        position,
        expected: expected.into(),
        found: found.into(),
        message: message.into(),
    }
}

/// Compares the store's anchors of `log` with the `contract` through `evm`. The contract and
/// the log's owner are the caller's: only that owner's log is read (its id binds the owner), so
/// whatever others anchored under the same name is not seen.
pub async fn reconcile(
    store: &Store,
    evm: &Evm,
    contract: Address,
    log_ref: &LogRef,
    opts: &Options,
) -> Result<Report, AnchorError> {
    let log = log_ref.name.as_str();
    let id = log_ref.id();
    let latest = evm.tag_number(BlockNumberOrTag::Latest).await?.unwrap_or(0);
    let finalized = evm.tag_number(BlockNumberOrTag::Finalized).await?;
    let events = evm
        .anchored_events(contract, id, opts.from_block, latest, opts.span)
        .await?;
    let on_chain: HashMap<u64, AnchoredEvent> =
        events.iter().map(|e| (e.epoch, e.clone())).collect();
    let local = store.epochs(Some(log))?;
    let now = zt_store::now_ms();
    let window_ms = i64::try_from(opts.final_within.as_millis()).unwrap_or(i64::MAX);
    let mut findings = Vec::new();
    let mut confirmed = Vec::new();
    let mut in_flight = 0;

    for e in &local {
        let ep = Some(e.epoch);
        let root = B256::from(e.root.0);
        let leaves = store.leaves(log, e.epoch)?;
        let stored_root = Tree::in_order(leaves.clone()).root();
        if stored_root != e.root || leaves.len() as u64 != e.leaf_count {
            findings.push(finding(
                FindingKind::RootDiffers,
                ep,
                None,
                None,
                format!("{} ({} leaves)", e.root, e.leaf_count),
                format!("{stored_root} ({} leaves)", leaves.len()),
                "the stored leaves no longer hash to the stored root: the anchoring data was edited",
            ));
            continue;
        }
        let old = now.saturating_sub(e.created_at_ms) > window_ms;
        match (e.state, on_chain.get(&e.epoch)) {
            (_, Some(ev)) if ev.root != root => findings.push(finding(
                FindingKind::RootDiffers,
                ep,
                None,
                None,
                format!("{root:#x}"),
                format!("{:#x}", ev.root),
                "the contract holds another root for this epoch",
            )),
            (EpochState::Failed, None) => findings.push(finding(
                FindingKind::TxFailed,
                ep,
                None,
                None,
                "an Anchored event",
                e.note
                    .clone()
                    .unwrap_or_else(|| "a reverted transaction".into()),
                format!(
                    "the anchor transaction {} failed",
                    e.tx_hash.as_deref().unwrap_or("-")
                ),
            )),
            (_, Some(ev)) => {
                confirmed.push(e.epoch);
                let final_block = finalized.unwrap_or(0);
                if ev.block_number.is_some_and(|b| b > final_block) && old {
                    findings.push(finding(
                        FindingKind::NotFinal,
                        ep,
                        None,
                        None,
                        format!("finalized within {:?}", opts.final_within),
                        format!(
                            "in block {} (finalized: {})",
                            ev.block_number.unwrap_or(0),
                            finalized.map_or("none".into(), |f| f.to_string())
                        ),
                        "the anchor is on chain but not final yet",
                    ));
                }
            }
            (state, None) if state.on_chain() || old => findings.push(finding(
                FindingKind::AnchorMissing,
                ep,
                None,
                None,
                format!("Anchored({log}, epoch {}, {root:#x})", e.epoch),
                "no such event".to_owned(),
                format!(
                    "the store has this epoch as {state} (tx {}), the contract never recorded it",
                    e.tx_hash.as_deref().unwrap_or("-")
                ),
            )),
            (_, None) => in_flight += 1,
        }
    }
    let known: std::collections::HashSet<u64> = local.iter().map(|e| e.epoch).collect();
    for ev in &events {
        if !known.contains(&ev.epoch) {
            findings.push(finding(
                FindingKind::UnknownOnChain,
                Some(ev.epoch),
                None,
                None,
                "an epoch in the store".to_owned(),
                format!(
                    "{:#x} in tx {}",
                    ev.root,
                    ev.tx_hash.map_or("-".into(), |t| format!("{t:#x}"))
                ),
                "the contract has an anchor for this log that the store does not know (store replaced or anchors deleted?)",
            ));
        }
    }

    // Every head the chain confirms must still be in the store, as anchored.
    let mut heads: BTreeMap<String, BTreeMap<u64, Hash32>> = BTreeMap::new();
    for ep in &confirmed {
        for l in store.leaves(log, *ep)? {
            heads.entry(l.chain).or_default().insert(l.position, l.head);
        }
    }
    let mut records_checked = 0;
    for (chain, anchored) in &heads {
        let (found, n) = check_chain(store, chain, anchored)?;
        records_checked += n;
        findings.extend(found);
    }
    findings.sort_by(|a, b| (a.epoch, &a.chain, a.position).cmp(&(b.epoch, &b.chain, b.position)));
    Ok(Report {
        ok: findings.is_empty(),
        log: log.to_owned(),
        owner: format!("{:#x}", log_ref.owner),
        log_id: format!("{id:#x}"),
        contract: format!("{contract:#x}"),
        chain_id: evm.chain_id(),
        local_epochs: local.len() as u64,
        chain_epochs: events.len() as u64,
        confirmed_epochs: confirmed.len() as u64,
        in_flight,
        chains_checked: heads.len() as u64,
        records_checked,
        findings,
    })
}

/// Records read per page while walking a chain.
const PAGE: u64 = 8192;

/// A stored main-line record as the chain model sees it ([`Node`]): the hashes the store files
/// it under, and what its bytes say. Bytes that do not parse, that name other hashes than the
/// store's columns, or that recompute under no profile have no profile: the model calls that a
/// hash mismatch. `trusted` is the caller's to decide (see [`check_chain`] and the proofs).
pub(crate) fn stored_node(current: Hash32, previous: Hash32, raw: &[u8], trusted: bool) -> Node {
    let env = Envelope::from_json(raw)
        .ok()
        .filter(|e| e.current_hash == current && e.previous_hash == previous);
    let profile = env.as_ref().and_then(Envelope::detect_profile);
    Node {
        current,
        previous,
        seq: env.as_ref().and_then(|e| e.v1.as_ref().map(|v| v.seq)),
        profile,
        trusted,
        uncovered: match (&env, profile) {
            (Some(e), Some(p)) => e.uncovered_members(p),
            _ => Vec::new(),
        },
        // Only explains a mismatch; the finding says what the bytes produce instead.
        recomputed: Vec::new(),
        repeated: false,
    }
}

/// What the bytes of an edited record produce, for the finding.
fn body_hash(raw: &[u8], profile: Option<Profile>) -> String {
    let Ok(env) = Envelope::from_json(raw) else {
        return "an unreadable record".into();
    };
    let p = profile
        .or_else(|| env.detect_profile())
        .or_else(|| env.candidates().first().copied());
    match p.map(|p| env.compute_hash(p)) {
        Some(Ok(h)) if h != env.current_hash => h.to_hex(),
        // It recomputes, but to another hash than the one the store files it under.
        _ => env.current_hash.to_hex(),
    }
}

/// The finding for the first record of an anchored stretch that the chain model does not let
/// continue the line. The messages are the ones people already read in reports.
fn break_finding(chain: &str, r: &LineRecord, profile: Option<Profile>, why: LineError) -> Finding {
    let c = Some(chain);
    let at = Some(r.position);
    let b = match why {
        LineError::Break(b) => *b,
        // With every record trusted (see `check_chain`) the first break is always named;
        // these are here so that a change in the model cannot pass silently.
        other => {
            return finding(
                FindingKind::Rewritten,
                None,
                c,
                at,
                "a record continuing the chain",
                r.current_hash.to_hex(),
                format!("{other} (before an anchored head)"),
            )
        }
    };
    match &b {
        Break::HashMismatch { matched, .. } if matched.is_none() || *matched == profile => finding(
            FindingKind::Rewritten,
            None,
            c,
            at,
            r.current_hash.to_hex(),
            body_hash(&r.raw, profile),
            "the record's content does not produce its hash (edited in the store)",
        ),
        Break::BadGenesis { .. } | Break::BrokenLink { .. } | Break::Fork { .. } => finding(
            FindingKind::Rewritten,
            None,
            c,
            at,
            b.expected(),
            b.found(),
            "the link to the previous record is broken before an anchored head",
        ),
        _ => finding(
            FindingKind::Rewritten,
            None,
            c,
            at,
            b.expected(),
            b.found(),
            format!("{b} (before an anchored head)"),
        ),
    }
}

/// Walks `chain`'s main line up to its last anchored position with the chain model
/// ([`zt_core::chain::check_line`]: genesis, links, seq, one profile fixed by the first record,
/// content), and checks what only anchors can: positions contiguous from 0 (a record deleted
/// from the store leaves a hole the chain model cannot see in a query by position) and the
/// anchored heads. The first problem is the finding.
///
/// Every record is passed as trusted: which signatures count is the store's placement and
/// `zt-audit verify`'s report; what reconcile adds is whether the chain still holds what was
/// anchored.
fn check_chain(
    store: &Store,
    chain: &str,
    anchored: &BTreeMap<u64, Hash32>,
) -> Result<(Option<Finding>, u64), AnchorError> {
    let Some((&last, _)) = anchored.iter().next_back() else {
        return Ok((None, 0));
    };
    let c = Some(chain);
    let mut expect_pos = 0u64;
    let mut tip: Option<Tip> = None;
    let mut profile: Option<Profile> = None;
    let mut read = 0u64;
    while expect_pos <= last {
        let page = store.main_line(chain, expect_pos, (expect_pos + PAGE - 1).min(last))?;
        if page.is_empty() {
            break;
        }
        // Content first, in parallel: does each record's body produce its stored hash?
        let nodes: Vec<Node> = page
            .par_iter()
            .map(|r| stored_node(r.current_hash, r.previous_hash, &r.raw, true))
            .collect();
        let gap = page
            .iter()
            .zip(expect_pos..)
            .position(|(r, want)| r.position != want);
        let upto = gap.unwrap_or(page.len());
        let first_profile = nodes.first().and_then(|n| n.profile);
        let seqs: Vec<Option<u64>> = nodes.iter().map(|n| n.seq).collect();
        let broke = check_line(tip, profile, nodes.into_iter().take(upto)).err();
        let sound = broke.as_ref().map_or(upto, |(i, _)| *i);
        for (i, r) in page.iter().enumerate().take(sound) {
            if let Some(head) = anchored.get(&r.position) {
                if *head != r.current_hash {
                    return Ok((
                        Some(finding(
                            FindingKind::Rewritten,
                            None,
                            c,
                            Some(r.position),
                            head.to_hex(),
                            r.current_hash.to_hex(),
                            "the record at this anchored position is not the anchored head: the chain was rewritten (signatures may still verify)",
                        )),
                        read + i as u64 + 1,
                    ));
                }
            }
        }
        if let Some((i, why)) = broke {
            let f = break_finding(chain, &page[i], profile.or(first_profile), why);
            return Ok((Some(f), read + i as u64 + 1));
        }
        if let Some(g) = gap {
            let head = anchored.range(expect_pos + g as u64..).next();
            let want = expect_pos + g as u64;
            return Ok((
                Some(finding(
                    FindingKind::Rewritten,
                    None,
                    c,
                    Some(want),
                    format!("a record at position {want}"),
                    format!("the next record is at position {}", page[g].position),
                    format!(
                        "records are missing before the anchored head at position {}",
                        head.map_or(last, |h| *h.0)
                    ),
                )),
                read + g as u64 + 1,
            ));
        }
        read += page.len() as u64;
        profile = profile.or(first_profile);
        if let (Some(r), Some(seq)) = (page.last(), seqs.last()) {
            tip = Some(Tip {
                current: r.current_hash,
                position: r.position,
                seq: *seq,
                main: true,
                successor: Successor::None,
                successor_at: None,
                at: None,
            });
            expect_pos = r.position + 1;
        }
    }
    if expect_pos <= last {
        return Ok((
            Some(finding(
                FindingKind::Truncated,
                None,
                c,
                Some(last),
                anchored.get(&last).map_or(String::new(), Hash32::to_hex),
                if expect_pos == 0 {
                    "no record of this chain".to_owned()
                } else {
                    format!("the chain ends at position {}", expect_pos - 1)
                },
                format!("the chain stops before its anchored head at position {last}"),
            )),
            read,
        ));
    }
    Ok((None, read))
}
