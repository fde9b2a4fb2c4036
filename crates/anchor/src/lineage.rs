//! The lineage's on-chain logs: reconciling a zt-infra JSONL file with a `DAALog` deployment.
//!
//! The lineage logged each record's `current_hash` as `actionHash` (`logAction`, one
//! transaction and one `ActionLogged` event per record), or the root of a batch
//! (`logBatch(root, count)`: SHA-256 over pairs of the records' hashes, the odd node paired
//! with itself, see [`crate::tree::lineage_batch_root`]). A batch is matched to `count`
//! consecutive records of the file whose root it is.
//!
//! Findings: the file's own chain broken (a record whose content does not produce its hash, a
//! link that does not hold: `rewritten`); an action hash logged on chain that the file lacks
//! (`missing_record`: the file was truncated or rewritten after it was logged); a batch root
//! on chain that no run of the file's records reproduces (`batch_unmatched`); a record whose
//! `daal.blockchain_tx_hash` names a transaction without its `ActionLogged` event
//! (`anchor_missing`). Records logged nowhere are counted, not findings: the lineage logged
//! selectively.

use std::collections::{HashMap, HashSet};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::sol_types::SolEvent;
use serde::Serialize;
use zt_core::json::Value;
use zt_core::{Envelope, Hash32};

use crate::error::AnchorError;
use crate::evm::{DAALog, Evm};
use crate::reconcile::{Finding, FindingKind};
use crate::tree::lineage_batch_root;

/// The answer for a lineage file.
#[derive(Debug, Clone, Serialize)]
pub struct LineageReport {
    /// No finding.
    pub ok: bool,
    /// The DAALog contract.
    pub contract: String,
    /// EVM chain id.
    pub chain_id: u64,
    /// Records in the file.
    pub records: u64,
    /// Records whose hash has an `ActionLogged` event.
    pub logged: u64,
    /// Records inside a batch whose root is on chain.
    pub batched: u64,
    /// Records logged nowhere (not a finding).
    pub unanchored: u64,
    /// `ActionLogged` events read.
    pub action_events: u64,
    /// `BatchLogged` events read.
    pub batch_events: u64,
    /// The inconsistencies.
    pub findings: Vec<Finding>,
}

/// One record of the file.
#[derive(Debug, Clone)]
pub struct LineageRecord {
    /// Its `current_hash`.
    pub hash: Hash32,
    /// Its `previous_hash`.
    pub previous: Hash32,
    /// Whether its content produces its hash (under some lineage profile).
    pub recomputes: bool,
    /// `daal.blockchain_tx_hash`, when set.
    pub claimed_tx: Option<String>,
}

fn claimed_tx(line: &[u8]) -> Option<String> {
    let v = zt_core::json::parse(line).ok()?;
    let top = v.as_object()?;
    let daal = top.get("daal").or_else(|| {
        top.get("audit")
            .and_then(Value::as_object)
            .and_then(|a| a.get("daal"))
    })?;
    let tx = daal.as_object()?.get("blockchain_tx_hash")?.as_str()?;
    (!tx.is_empty()).then(|| tx.to_lowercase())
}

/// Reads a lineage JSONL file (split on `\n` only).
pub fn read_file(text: &[u8]) -> Result<Vec<LineageRecord>, String> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let env = Envelope::from_json(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(LineageRecord {
            hash: env.current_hash,
            previous: env.previous_hash,
            recomputes: env.detect_profile().is_some(),
            claimed_tx: claimed_tx(line),
        });
    }
    Ok(out)
}

fn f(
    kind: FindingKind,
    position: Option<u64>,
    expected: String,
    found: String,
    message: String,
) -> Finding {
    Finding {
        kind,
        epoch: None,
        chain: None,
        position,
        expected,
        found,
        message,
    }
}

/// Reconciles `records` (a lineage file, in order) with the `DAALog` at `contract`.
pub async fn reconcile_lineage(
    records: &[LineageRecord],
    evm: &Evm,
    contract: Address,
    from_block: u64,
    span: u64,
) -> Result<LineageReport, AnchorError> {
    let latest = evm.tag_number(BlockNumberOrTag::Latest).await?.unwrap_or(0);
    let mut actions: HashMap<B256, Option<B256>> = HashMap::new();
    for log in evm
        .raw_events(
            contract,
            DAALog::ActionLogged::SIGNATURE_HASH,
            from_block,
            latest,
            span,
        )
        .await?
    {
        if let Ok(ev) = DAALog::ActionLogged::decode_log(&log.inner) {
            actions.insert(ev.actionHash, log.transaction_hash);
        }
    }
    let mut batches: Vec<(B256, u64)> = Vec::new();
    for log in evm
        .raw_events(
            contract,
            DAALog::BatchLogged::SIGNATURE_HASH,
            from_block,
            latest,
            span,
        )
        .await?
    {
        if let Ok(ev) = DAALog::BatchLogged::decode_log(&log.inner) {
            batches.push((ev.batchRoot, u64::try_from(ev.count).unwrap_or(u64::MAX)));
        }
    }
    let mut findings = Vec::new();

    // The file's own chain.
    let mut prev: Option<Hash32> = None;
    for (i, r) in records.iter().enumerate() {
        let at = Some(i as u64);
        if !r.recomputes {
            findings.push(f(
                FindingKind::Rewritten,
                at,
                r.hash.to_hex(),
                "content that produces another hash".into(),
                "the record's content does not produce its hash (edited)".into(),
            ));
            break;
        }
        if let Some(p) = prev {
            if r.previous != p && r.previous != Hash32::ZERO {
                findings.push(f(
                    FindingKind::Rewritten,
                    at,
                    p.to_hex(),
                    r.previous.to_hex(),
                    "the link to the previous record is broken".into(),
                ));
                break;
            }
        }
        prev = Some(r.hash);
    }

    // Individually logged records, and what the records claim.
    let in_file: HashSet<B256> = records.iter().map(|r| B256::from(r.hash.0)).collect();
    let mut covered = vec![false; records.len()];
    let mut logged = 0;
    for (i, r) in records.iter().enumerate() {
        let h = B256::from(r.hash.0);
        if let Some(tx) = actions.get(&h) {
            logged += 1;
            covered[i] = true;
            if let (Some(claim), Some(tx)) = (&r.claimed_tx, tx) {
                if *claim != format!("{tx:#x}") {
                    findings.push(f(
                        FindingKind::AnchorMissing,
                        Some(i as u64),
                        claim.clone(),
                        format!("{tx:#x}"),
                        "the record names another transaction than the one that logged it".into(),
                    ));
                }
            }
        } else if let Some(claim) = &r.claimed_tx {
            findings.push(f(
                FindingKind::AnchorMissing,
                Some(i as u64),
                format!("ActionLogged({h:#x}) in {claim}"),
                "no such event".into(),
                "the record says it was logged on chain; the contract has no event for it".into(),
            ));
        }
    }
    let mut missing: Vec<B256> = actions
        .keys()
        .filter(|h| !in_file.contains(*h))
        .copied()
        .collect();
    missing.sort();
    for h in missing {
        findings.push(f(
            FindingKind::MissingRecord,
            None,
            format!("{h:#x}"),
            "not in the file".into(),
            "an action hash logged on chain is not in the file: truncated or rewritten after it was logged".into(),
        ));
    }

    // Batches: each root must be reproduced by a run of `count` consecutive records.
    let hashes: Vec<Hash32> = records.iter().map(|r| r.hash).collect();
    let mut batched = 0;
    let mut by_count: HashMap<u64, Vec<B256>> = HashMap::new();
    for (root, count) in &batches {
        by_count.entry(*count).or_default().push(*root);
    }
    let mut matched: HashSet<B256> = HashSet::new();
    for (count, roots) in &by_count {
        let c = usize::try_from(*count).unwrap_or(usize::MAX);
        if c == 0 || c > hashes.len() {
            continue;
        }
        let wanted: HashSet<B256> = roots.iter().copied().collect();
        for start in 0..=hashes.len() - c {
            if let Some(root) = lineage_batch_root(&hashes[start..start + c]) {
                let root = B256::from(root.0);
                if wanted.contains(&root) && matched.insert(root) {
                    for x in &mut covered[start..start + c] {
                        if !*x {
                            *x = true;
                            batched += 1;
                        }
                    }
                }
            }
        }
    }
    for (root, count) in &batches {
        if !matched.contains(root) {
            findings.push(f(
                FindingKind::BatchUnmatched,
                None,
                format!("{count} consecutive records with root {root:#x}"),
                "no run of the file's records has that root".into(),
                "a batch logged on chain is not in the file as logged: truncated or rewritten"
                    .into(),
            ));
        }
    }
    let unanchored = covered.iter().filter(|c| !**c).count() as u64;
    Ok(LineageReport {
        ok: findings.is_empty(),
        contract: format!("{contract:#x}"),
        chain_id: evm.chain_id(),
        records: records.len() as u64,
        logged,
        batched,
        unanchored,
        action_events: actions.len() as u64,
        batch_events: batches.len() as u64,
        findings,
    })
}
