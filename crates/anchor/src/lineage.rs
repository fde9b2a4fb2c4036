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
//!
//! # Whose events count
//!
//! Anyone can call `logAction` and `logBatch`. Only events of the loggers the person
//! reconciling names count ([`Options::loggers`]): the event's `logger` (the contract's
//! `msg.sender`) must be one of them, and so must the sender of its transaction (one receipt
//! a distinct transaction, asked only for events that passed the first test, so the number of
//! requests is the named loggers' own doing). Every other event is counted as ignored and
//! reported as such, never a finding: a hostile sender can make noise, not evidence.
//!
//! # What matching costs
//!
//! Events are read a page of blocks at a time; an ignored event costs its decoding and a
//! counter. For the named loggers' batches, matching is bounded per logger:
//! 1. **In order** (the lineage logs as it goes): each logger's events are taken in chain
//!    order with a cursor just past the last record that logger covered (by `logAction` or a
//!    matched batch); a batch is tried at the cursor only, and on a match the cursor moves past
//!    it. Honest, non-overlapping batches cost about one pair hash a record in all. A logger
//!    may spend at most [`CURSOR_WORK_PER_RECORD`] pair hashes a record of the file this way.
//! 2. **Anywhere**, for batches not found at their cursor: every run of that size is hashed
//!    at once with shared subtrees ([`crate::tree::lineage_window_roots`], at most
//!    `2 n ceil(log2 size)` pair hashes a size, shared by all batches of that size). A logger
//!    may have at most [`SIZES_PER_LOGGER`] sizes searched this way.
//!
//! A batch left over when a logger's budget is spent is a `batch_unmatched` finding that says
//! so: an unchecked batch is never taken as matched. So one logger costs at most
//! `n (CURSOR_WORK_PER_RECORD + 2 SIZES_PER_LOGGER log2 n)` pair hashes, whatever its number
//! of events, and anyone else's events cost O(1) each. The report counts the pair hashes spent
//! (`match_work`).

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::sol_types::SolEvent;
use serde::Serialize;
use zt_core::json::Value;
use zt_core::{Envelope, Hash32};

use crate::error::{AnchorError, LineageFileError};
use crate::evm::{DAALog, Evm};
use crate::reconcile::{Finding, FindingKind};
use crate::tree::{lineage_batch_root_counted, lineage_window_roots};

/// Pair hashes a logger may spend a record of the file matching batches at its cursor.
pub const CURSOR_WORK_PER_RECORD: u64 = 4;
/// Batch sizes a logger may have searched anywhere in the file.
pub const SIZES_PER_LOGGER: usize = 4;

/// What a lineage reconcile reads.
#[derive(Debug, Clone)]
pub struct Options {
    /// The addresses whose events count (at least one): the lineage's logging accounts.
    pub loggers: Vec<Address>,
    /// First block to read events from.
    pub from_block: u64,
    /// Blocks per `eth_getLogs` query.
    pub span: u64,
}

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
    /// The loggers whose events count.
    pub loggers: Vec<String>,
    /// `ActionLogged` events of the loggers.
    pub action_events: u64,
    /// `BatchLogged` events of the loggers.
    pub batch_events: u64,
    /// `ActionLogged` events of anyone else: ignored.
    pub ignored_action_events: u64,
    /// `BatchLogged` events of anyone else: ignored.
    pub ignored_batch_events: u64,
    /// Distinct senders of the ignored events.
    pub ignored_senders: u64,
    /// Pair hashes spent matching batches (bounded: see the module docs).
    pub match_work: u64,
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
pub fn read_file(text: &[u8]) -> Result<Vec<LineageRecord>, LineageFileError> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let env = Envelope::from_json(line).map_err(|source| LineageFileError {
            line: i + 1,
            source,
        })?;
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

/// A batch logged by one of the loggers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedBatch {
    /// Its root.
    pub root: B256,
    /// Records it claims.
    pub count: u64,
    /// Who logged it.
    pub logger: Address,
}

/// A logger's event, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// `logAction(actionHash)`.
    Action {
        /// The action hash.
        hash: B256,
        /// Who logged it.
        logger: Address,
    },
    /// `logBatch(root, count)`.
    Batch(LoggedBatch),
}

/// Why a batch matched no run of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// It claims no records, or more than the file has.
    Size,
    /// Searched everywhere: no run of the file has its root.
    NoRun,
    /// Its logger's matching budget was spent before it was searched everywhere.
    Budget,
}

/// What matching found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matching {
    /// For each batch (in the order given), the start of the run it matched.
    pub starts: Vec<Option<usize>>,
    /// Why each unmatched batch is.
    pub unmatched: Vec<(usize, Unmatched)>,
    /// Pair hashes computed.
    pub work: u64,
}

/// Matches the loggers' batches (within `events`, in chain order) to runs of `hashes`, the
/// file's records in order, at a bounded cost per logger: see the module docs.
pub fn match_batches(hashes: &[Hash32], events: &[Logged]) -> Matching {
    let n = hashes.len();
    let index: HashMap<B256, usize> = hashes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, h)| (B256::from(h.0), i))
        .collect();
    let mut out = Matching::default();
    let mut cursor: HashMap<Address, usize> = HashMap::new();
    let mut spent: HashMap<Address, u64> = HashMap::new();
    let budget = CURSOR_WORK_PER_RECORD.saturating_mul(n as u64);
    let mut batches: Vec<&LoggedBatch> = Vec::new();
    let mut deferred: Vec<usize> = Vec::new();
    // 1. In order, at each logger's cursor.
    for ev in events {
        match ev {
            Logged::Action { hash, logger } => {
                if let Some(&i) = index.get(hash) {
                    let c = cursor.entry(*logger).or_default();
                    *c = (*c).max(i + 1);
                }
            }
            Logged::Batch(b) => {
                let k = batches.len();
                batches.push(b);
                out.starts.push(None);
                let size = usize::try_from(b.count).unwrap_or(usize::MAX);
                if size == 0 || size > n {
                    out.unmatched.push((k, Unmatched::Size));
                    continue;
                }
                let at = cursor.get(&b.logger).copied().unwrap_or(0);
                let used = spent.entry(b.logger).or_default();
                // A run of `size` leaves costs fewer than `2 size` pair hashes.
                let cost = 2 * size as u64;
                if at + size <= n && *used + cost <= budget {
                    let mut w = 0;
                    let root = lineage_batch_root_counted(&hashes[at..at + size], &mut w);
                    *used += w;
                    out.work += w;
                    if root.map(|r| B256::from(r.0)) == Some(b.root) {
                        out.starts[k] = Some(at);
                        cursor.insert(b.logger, at + size);
                        continue;
                    }
                }
                deferred.push(k);
            }
        }
    }
    // 2. Anywhere, a bounded number of sizes a logger; each size hashed once for everyone.
    let mut sizes_of: HashMap<Address, Vec<usize>> = HashMap::new();
    let mut wanted: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &k in &deferred {
        let b = batches[k];
        let size = usize::try_from(b.count).unwrap_or(usize::MAX);
        let sizes = sizes_of.entry(b.logger).or_default();
        if !sizes.contains(&size) {
            if sizes.len() == SIZES_PER_LOGGER {
                out.unmatched.push((k, Unmatched::Budget));
                continue;
            }
            sizes.push(size);
        }
        wanted.entry(size).or_default().push(k);
    }
    for (size, ks) in wanted {
        let roots = lineage_window_roots(hashes, size, &mut out.work);
        let mut first: HashMap<B256, usize> = HashMap::new();
        for (s, r) in roots.iter().enumerate() {
            first.entry(B256::from(r.0)).or_insert(s);
        }
        for k in ks {
            match first.get(&batches[k].root) {
                Some(&s) => out.starts[k] = Some(s),
                None => out.unmatched.push((k, Unmatched::NoRun)),
            }
        }
    }
    out.unmatched.sort_unstable_by_key(|(k, _)| *k);
    out
}

/// Where the events come from.
struct Source<'a> {
    evm: &'a Evm,
    contract: Address,
    opts: &'a Options,
    latest: u64,
}

/// Reads the `DAALog` events of one kind, a page of blocks at a time, keeping the named
/// loggers' (`keep`) and counting the rest into `ignored`.
async fn read_events<E: SolEvent>(
    src: &Source<'_>,
    logger_of: impl Fn(&E) -> Address,
    mut keep: impl FnMut(E, &alloy::rpc::types::Log),
    ignored: &mut u64,
    senders: &mut HashSet<Address>,
) -> Result<(), AnchorError> {
    let opts = src.opts;
    let span = opts.span.max(1);
    let mut start = opts.from_block;
    while start <= src.latest {
        let end = src.latest.min(start.saturating_add(span - 1));
        for log in src
            .evm
            .raw_events(src.contract, E::SIGNATURE_HASH, start, end, span)
            .await?
        {
            match E::decode_log(&log.inner) {
                Ok(ev) if opts.loggers.contains(&logger_of(&ev.data)) => keep(ev.data, &log),
                Ok(ev) => {
                    *ignored += 1;
                    senders.insert(logger_of(&ev.data));
                }
                // The deployment at this address emits well-formed events; anything else is
                // not the lineage's.
                Err(_) => *ignored += 1,
            }
        }
        start = end.saturating_add(1);
    }
    Ok(())
}

/// Reconciles `records` (a lineage file, in order) with the `DAALog` at `contract`, counting
/// only the events of `opts.loggers` (see the module docs).
pub async fn reconcile_lineage(
    records: &[LineageRecord],
    evm: &Evm,
    contract: Address,
    opts: &Options,
) -> Result<LineageReport, AnchorError> {
    if opts.loggers.is_empty() {
        return Err(AnchorError::Config(
            "a lineage reconcile needs the loggers whose events count: anyone can call logAction and logBatch".into(),
        ));
    }
    let latest = evm.tag_number(BlockNumberOrTag::Latest).await?.unwrap_or(0);
    let mut ignored_actions = 0;
    let mut ignored_batches = 0;
    let mut ignored_senders: HashSet<Address> = HashSet::new();
    // (block, log index) -> event, for chain order; and the transactions to ask about.
    let mut kept: BTreeMap<(u64, u64), (Logged, Option<B256>)> = BTreeMap::new();
    let src = Source {
        evm,
        contract,
        opts,
        latest,
    };
    read_events::<DAALog::ActionLogged>(
        &src,
        |e| e.logger,
        |e, log| {
            kept.insert(
                (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0)),
                (
                    Logged::Action {
                        hash: e.actionHash,
                        logger: e.logger,
                    },
                    log.transaction_hash,
                ),
            );
        },
        &mut ignored_actions,
        &mut ignored_senders,
    )
    .await?;
    read_events::<DAALog::BatchLogged>(
        &src,
        |e| e.logger,
        |e, log| {
            kept.insert(
                (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0)),
                (
                    Logged::Batch(LoggedBatch {
                        root: e.batchRoot,
                        count: u64::try_from(e.count).unwrap_or(u64::MAX),
                        logger: e.logger,
                    }),
                    log.transaction_hash,
                ),
            );
        },
        &mut ignored_batches,
        &mut ignored_senders,
    )
    .await?;
    // The transaction's sender must be a named logger too (a logger that is a contract anyone
    // can call would otherwise lend its name to anyone).
    let mut sender_of: HashMap<B256, Option<Address>> = HashMap::new();
    for (_, tx) in kept.values() {
        if let Some(tx) = tx {
            if !sender_of.contains_key(tx) {
                let from = evm.receipt(*tx).await?.map(|r| r.from);
                sender_of.insert(*tx, from);
            }
        }
    }
    let mut events = Vec::with_capacity(kept.len());
    let mut action_tx: HashMap<B256, Option<B256>> = HashMap::new();
    for (ev, tx) in kept.into_values() {
        let from = tx.and_then(|t| sender_of.get(&t).copied().flatten());
        if !from.is_some_and(|f| opts.loggers.contains(&f)) {
            match &ev {
                Logged::Action { .. } => ignored_actions += 1,
                Logged::Batch(_) => ignored_batches += 1,
            }
            if let Some(f) = from {
                ignored_senders.insert(f);
            }
            continue;
        }
        if let Logged::Action { hash, .. } = &ev {
            action_tx.insert(*hash, tx);
        }
        events.push(ev);
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
        if let Some(tx) = action_tx.get(&h) {
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
                "no such event from the loggers".into(),
                "the record says it was logged on chain; the contract has no event for it from the loggers named".into(),
            ));
        }
    }
    let mut missing: Vec<B256> = action_tx
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
    let matching = match_batches(&hashes, &events);
    let batches: Vec<&LoggedBatch> = events
        .iter()
        .filter_map(|e| match e {
            Logged::Batch(b) => Some(b),
            Logged::Action { .. } => None,
        })
        .collect();
    let mut batched = 0;
    for (b, start) in batches.iter().zip(&matching.starts) {
        if let Some(s) = start {
            let end = s.saturating_add(usize::try_from(b.count).unwrap_or(usize::MAX));
            for x in covered.iter_mut().take(end).skip(*s) {
                if !*x {
                    *x = true;
                    batched += 1;
                }
            }
        }
    }
    for (k, why) in &matching.unmatched {
        let b = batches[*k];
        let message = match why {
            Unmatched::Size | Unmatched::NoRun => {
                "a batch logged on chain is not in the file as logged: truncated or rewritten"
            }
            Unmatched::Budget => {
                "a batch logged on chain was not searched: its logger's batches use more sizes than one reconcile searches (see the lineage module docs); it is not taken as matched"
            }
        };
        findings.push(f(
            FindingKind::BatchUnmatched,
            None,
            format!("{} consecutive records with root {:#x}", b.count, b.root),
            match why {
                Unmatched::Size => format!("a file of {} records", records.len()),
                Unmatched::NoRun => "no run of the file's records has that root".into(),
                Unmatched::Budget => "not searched".into(),
            },
            format!("{message} (logged by {:#x})", b.logger),
        ));
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
        loggers: opts.loggers.iter().map(|a| format!("{a:#x}")).collect(),
        action_events: action_tx.len() as u64,
        batch_events: batches.len() as u64,
        ignored_action_events: ignored_actions,
        ignored_batch_events: ignored_batches,
        ignored_senders: ignored_senders.len() as u64,
        match_work: matching.work,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::lineage_batch_root;

    fn hashes(n: u32) -> Vec<Hash32> {
        (0..n).map(|i| Hash32::digest(&i.to_be_bytes())).collect()
    }

    fn batch(h: &[Hash32], logger: Address) -> Logged {
        Logged::Batch(LoggedBatch {
            root: B256::from(lineage_batch_root(h).unwrap().0),
            count: h.len() as u64,
            logger,
        })
    }

    #[test]
    fn batches_logged_as_the_lineage_goes_match_at_their_cursor() {
        let h = hashes(100);
        let me = Address::repeat_byte(1);
        let mut events: Vec<Logged> = h[..6]
            .iter()
            .map(|x| Logged::Action {
                hash: B256::from(x.0),
                logger: me,
            })
            .collect();
        // Batches of varying sizes, one after the other: each found where the last one ended.
        let mut at = 6;
        for size in [10, 3, 17, 1, 29, 34] {
            events.push(batch(&h[at..at + size], me));
            at += size;
        }
        let m = match_batches(&h, &events);
        assert!(m.unmatched.is_empty(), "{m:?}");
        assert_eq!(
            m.starts,
            [6, 16, 19, 36, 37, 66].map(Some).to_vec(),
            "{m:?}"
        );
        // About a pair hash a record, not a search.
        assert!(m.work <= 2 * 94, "{}", m.work);
    }

    #[test]
    fn a_batch_away_from_its_cursor_is_searched_for() {
        let h = hashes(50);
        let me = Address::repeat_byte(1);
        // The lineage skipped records 0..9 (logged nowhere).
        let m = match_batches(&h, &[batch(&h[10..20], me), batch(&h[20..30], me)]);
        assert_eq!(m.starts, [Some(10), Some(20)]);
        assert!(m.unmatched.is_empty());
    }

    #[test]
    fn one_loggers_batches_cost_a_bounded_amount_of_hashing() {
        let n = 2000u32;
        let h = hashes(n);
        let me = Address::repeat_byte(1);
        // A named logger gone rogue (or a compromised key): a batch of every size, none real.
        let events: Vec<Logged> = (1..=u64::from(n))
            .map(|count| {
                Logged::Batch(LoggedBatch {
                    root: B256::repeat_byte(0x66),
                    count,
                    logger: me,
                })
            })
            .collect();
        let m = match_batches(&h, &events);
        let n64 = u64::from(n);
        let log2 = u64::from(u32::BITS - (n - 1).leading_zeros());
        let bound = n64 * (CURSOR_WORK_PER_RECORD + 2 * SIZES_PER_LOGGER as u64 * log2);
        assert!(m.work <= bound, "{} pair hashes, bound {bound}", m.work);
        // Searching every size of a 2000-record file would have cost ~ n^2 / 2 window roots.
        assert!(m.work < n64 * n64 / 20, "{}", m.work);
        // None is taken as matched; the ones not searched say so.
        assert!(m.starts.iter().all(Option::is_none));
        assert_eq!(m.unmatched.len(), n as usize);
        assert!(
            m.unmatched
                .iter()
                .filter(|(_, w)| *w == Unmatched::Budget)
                .count()
                > 1900
        );
        // Batches of no records, or of more than the file has, cost nothing and never match.
        let odd: Vec<Logged> = [0, u64::from(n) + 1, u64::MAX]
            .into_iter()
            .map(|count| {
                Logged::Batch(LoggedBatch {
                    root: B256::repeat_byte(0x66),
                    count,
                    logger: me,
                })
            })
            .collect();
        let m = match_batches(&h, &odd);
        assert_eq!(m.work, 0);
        assert!(m.unmatched.iter().all(|(_, w)| *w == Unmatched::Size));
        // Another logger's batches have their own budget.
        let other = Address::repeat_byte(2);
        let mut with_honest = events.clone();
        with_honest.push(batch(&h[..100], other));
        let m = match_batches(&h, &with_honest);
        assert_eq!(m.starts.last(), Some(&Some(0)));
    }
}
