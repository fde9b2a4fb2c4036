//! Placing records in their chains: the SQL edge of the chain model ([`zt_core::chain`]).
//!
//! The store never decides a chain rule itself. For each record it looks up what the model
//! needs (the predecessor by hash, what already continues from it, the chain's first record:
//! the [`ChainIndex`] lookups), asks [`chain::place`], and writes down the model's
//! [`Judgement`](zt_core::chain::Judgement): the chain, the position, the line, and the fork
//! flag:
//!
//! - [`Line::Main`] (`branch = 0`): the main line, the trusted, unbroken prefix of the chain.
//!   Only these records are heads, anchored, or links in a proof.
//! - [`Line::Branch`] (`branch = <id>`): linked but off the main line: a fork's later
//!   claimant, an unverified record, a record with a break, and what follows any of those. The
//!   first successor of such a record continues its branch, so each branch reads as a line
//!   (which branch an off-main record joins is bookkeeping, not a chain rule: it decides
//!   nothing about what counts).
//! - no line (`branch IS NULL`): detached (waiting): its predecessor has not arrived. A v1
//!   record keeps its `chain_id` and `seq` meanwhile; a lineage record has neither until it
//!   links.
//! - `fork = 1` exactly when the model's judgement holds a [`Break::Fork`] (not a replay):
//!   the store records the verdict, it has no fork rule of its own.
//!
//! Records arrive in any order and copies of one record may differ outside the hash, so
//! placement is re-run where it can change: when a predecessor arrives (its waiting successors
//! link), and when a record becomes trusted (a verified copy supersedes an unverified one):
//! then its successors may join the main line too. A record on the main line never leaves it.

use zt_core::chain::{
    self, lineage_chain_name, Break, ChainIndex, Node, Order, Successor, Tip, TrustPolicy,
};
use zt_core::Hash32;

use crate::error::StoreError;
use crate::graph::{Graph, Row};
use crate::types::{BatchOutcome, BranchId, Line};

fn node(r: &Row, chain: Option<&str>, trust: &TrustPolicy) -> Node {
    Node {
        current: r.current,
        previous: r.previous,
        seq: r.seq(),
        // Stored records recomputed under their profile at ingest (quarantine holds the rest).
        profile: Some(r.profile),
        trusted: trust.trusts(chain, r.status),
        uncovered: r.uncovered.clone(),
        recomputed: Vec::new(),
        repeated: false,
    }
}

/// What continues from `hash` within `chain` (placed records only), except `except`.
fn successor_state(
    g: &mut Graph<'_, '_>,
    hash: &Hash32,
    chain: &str,
    except: i64,
) -> Result<Successor, StoreError> {
    let min = g
        .by_prev(hash)?
        .into_iter()
        .filter(|s| s.id != except && s.chain.as_deref() == Some(chain))
        .filter_map(|s| s.line)
        .min();
    Ok(match min {
        None => Successor::None,
        Some(Line::Main) => Successor::Main,
        Some(Line::Branch(_)) => Successor::OffMain,
    })
}

fn tip(r: &Row, successor: Successor) -> Tip {
    Tip {
        current: r.current,
        position: r.position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0),
        seq: r.seq(),
        main: r.line == Some(Line::Main),
        successor,
        successor_at: None,
        at: None,
    }
}

/// The store's answers to the chain model's lookups for one record, read from its tables
/// before: its predecessor as placed (with what else continues from it), or for a genesis the
/// chain's main-line first record. A store has no order: records wait for their predecessor.
struct Lookups {
    /// The chain's profile so far (the predecessor's, or the first record's).
    profile: Option<zt_core::Profile>,
    first: Option<Tip>,
    pred: Option<Tip>,
}

impl ChainIndex for Lookups {
    type Error = std::convert::Infallible;

    fn by_current(&mut self, hash: &Hash32) -> Result<Option<Tip>, Self::Error> {
        Ok(self.pred.filter(|t| t.current == *hash))
    }

    fn first(&mut self) -> Result<Option<Tip>, Self::Error> {
        Ok(self.first)
    }

    fn order(&mut self) -> Result<Order, Self::Error> {
        Ok(Order::Unordered)
    }
}

/// The branch an off-main record takes: its predecessor's, when it is the first to continue
/// that (non-main) branch; otherwise a branch of its own (named by its row id).
fn off_main_branch(
    g: &mut Graph<'_, '_>,
    id: i64,
    pred: Option<&Row>,
) -> Result<BranchId, StoreError> {
    let own = BranchId(id);
    let Some(p) = pred else { return Ok(own) };
    match p.line {
        Some(Line::Branch(b)) => {
            let taken = g
                .by_prev(&p.current)?
                .iter()
                .any(|s| s.id != id && s.line == Some(Line::Branch(b)));
            Ok(if taken { own } else { b })
        }
        _ => Ok(own),
    }
}

/// Places record `id` (added detached) and then whatever can follow it.
pub(crate) fn place(
    g: &mut Graph<'_, '_>,
    id: i64,
    trust: &TrustPolicy,
    out: &mut BatchOutcome,
) -> Result<(), StoreError> {
    let r = g.row(id)?;
    if let Some(placed) = judge_and_write(g, &r, trust)? {
        recheck_siblings(g, &placed, trust)?;
        settle(g, placed, trust, out)?;
    }
    Ok(())
}

/// Judges `r` against its predecessor as stored now and writes the outcome: the row as
/// placed, or `None` when it stays detached.
fn judge_and_write(
    g: &mut Graph<'_, '_>,
    r: &Row,
    trust: &TrustPolicy,
) -> Result<Option<Row>, StoreError> {
    let (chain, position, pred_row, lookups) = if r.previous == Hash32::ZERO {
        let chain = match (&r.chain, r.v1()) {
            (Some(c), true) => c.clone(),
            _ => lineage_chain_name(&r.current),
        };
        // A v1 chain's first record, when it is on the main line (an unverified genesis that
        // came first holds nothing); a lineage chain is named after its genesis, so it has no
        // other.
        let first: Option<Row> = if r.v1() {
            g.geneses(&chain)?
                .into_iter()
                .find(|f| f.line == Some(Line::Main) && f.id != r.id)
        } else {
            None
        };
        let position = if r.v1() { r.position } else { Some(0) };
        let lookups = Lookups {
            profile: first.as_ref().map(|f| f.profile),
            first: first.as_ref().map(|f| tip(f, Successor::None)),
            pred: None,
        };
        (chain, position, None, lookups)
    } else {
        let p: Option<Row> = g
            .by_current(&r.previous)?
            .into_iter()
            .find(|p| p.line.is_some());
        // A v1 record links only within its own chain.
        let Some(p) = p.filter(|p| !r.v1() || (p.chain == r.chain && p.v1())) else {
            return Ok(None);
        };
        let Some(chain) = p.chain.clone() else {
            return Ok(None);
        };
        let succ = successor_state(g, &p.current, &chain, r.id)?;
        let position = if r.v1() {
            r.position
        } else {
            p.position.map(|x| x + 1)
        };
        let lookups = Lookups {
            profile: Some(p.profile),
            first: None,
            pred: Some(tip(&p, succ)),
        };
        (chain, position, Some(p), lookups)
    };
    let profile = lookups.profile;
    let mut lookups = lookups;
    let Ok(judged) = chain::place(&node(r, Some(&chain), trust), profile, &mut lookups);
    let line = match judged.line {
        chain::Line::Main => Line::Main,
        chain::Line::Branch => Line::Branch(off_main_branch(g, r.id, pred_row.as_ref())?),
        chain::Line::Detached => return Ok(None),
    };
    g.set_place(r.id, &chain, position, line)?;
    // The fork flag is the model's verdict, nothing else: a later claimant of a place the
    // main line holds (a record never stops being one).
    if judged
        .breaks
        .iter()
        .any(|b| matches!(b, Break::Fork { replay: false, .. }))
    {
        g.set_fork(r.id);
    }
    Ok(Some(Row {
        chain: Some(chain),
        position,
        line: Some(line),
        ..r.clone()
    }))
}

/// When `r` has just joined the main line, the records that claimed its place before it (off
/// the main line: unverified, broken) are judged again: each is now a later claimant of a place
/// the main line holds, a fork, as it would have been had it arrived second. So the flags do
/// not depend on arrival order, and a record nobody's key verified never flags the genuine one.
fn recheck_siblings(g: &mut Graph<'_, '_>, r: &Row, trust: &TrustPolicy) -> Result<(), StoreError> {
    if r.line != Some(Line::Main) {
        return Ok(());
    }
    let Some(chain) = &r.chain else { return Ok(()) };
    let siblings: Vec<Row> = if r.previous != Hash32::ZERO {
        g.by_prev(&r.previous)?
    } else if r.v1() {
        g.geneses(chain)?
    } else {
        Vec::new()
    };
    for s in siblings {
        if s.id == r.id || s.chain.as_ref() != Some(chain) {
            continue;
        }
        // Re-read: placing an earlier one may have moved it.
        let s = g.row(s.id)?;
        if matches!(s.line, Some(Line::Branch(_))) {
            judge_and_write(g, &s, trust)?;
        }
    }
    Ok(())
}

/// Re-judges what follows `start`, transitively: waiting successors link, and when a record is
/// on the main line its off-main successors may join it (in arrival order, so the first
/// trusted, unbroken successor continues the main line).
fn settle(
    g: &mut Graph<'_, '_>,
    start: Row,
    trust: &TrustPolicy,
    out: &mut BatchOutcome,
) -> Result<(), StoreError> {
    let mut queue = vec![start];
    while let Some(xr) = queue.pop() {
        let main = xr.line == Some(Line::Main);
        let candidates: Vec<Row> = g
            .by_prev(&xr.current)?
            .into_iter()
            .filter(|c| c.line.is_none() || (main && c.line != Some(Line::Main)))
            .collect();
        for c in candidates {
            // Re-read: an earlier candidate's settling may have moved it.
            let c = g.row(c.id)?;
            if !(c.line.is_none() || (main && c.line != Some(Line::Main))) {
                continue;
            }
            let Some(after) = judge_and_write(g, &c, trust)? else {
                continue;
            };
            if (&after.chain, after.position, after.line) != (&c.chain, c.position, c.line) {
                if c.line.is_none() {
                    out.linked += 1;
                }
                recheck_siblings(g, &after, trust)?;
                queue.push(after);
            }
        }
    }
    Ok(())
}

/// After a record's row changed for the better (a verified copy superseded an unverified one):
/// judge it again where it stands, and what follows it.
pub(crate) fn replace(
    g: &mut Graph<'_, '_>,
    id: i64,
    trust: &TrustPolicy,
    out: &mut BatchOutcome,
) -> Result<(), StoreError> {
    let r = g.row(id)?;
    if r.line == Some(Line::Main) {
        return Ok(());
    }
    if r.previous == Hash32::ZERO || r.line.is_none() {
        return place(g, id, trust, out);
    }
    // Its predecessor decides whether it may now continue the main line.
    let pred = g
        .by_current(&r.previous)?
        .into_iter()
        .find(|p| p.line.is_some());
    match pred {
        Some(p) => settle(g, p, trust, out),
        None => place(g, id, trust, out),
    }
}

/// Throws every placement away and places every record again, in arrival order: for stores
/// written before the chain model decided placement.
pub(crate) fn relink_all(g: &mut Graph<'_, '_>, trust: &TrustPolicy) -> Result<(), StoreError> {
    g.conn().batch(
        "UPDATE records SET branch = NULL, fork = 0, \
             chain = CASE WHEN profile = 'v1' THEN chain END, \
             position = CASE WHEN profile = 'v1' THEN position END",
    )?;
    let ids: Vec<i64> = g
        .conn()
        .query("SELECT id FROM records ORDER BY id", &[])?
        .into_iter()
        .map(|mut r| r.i64(0))
        .collect::<Result<_, _>>()?;
    let mut out = BatchOutcome::default();
    for id in ids {
        // Linked already as a successor of an earlier record.
        if g.row(id)?.line.is_none() {
            place(g, id, trust, &mut out)?;
        }
    }
    g.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;
    use zt_core::chain::SigStatus;
    use zt_core::crypto::SigningKey;
    use zt_core::envelope::{V1Draft, MAX_SEQ};
    use zt_core::{Envelope, Hash32};

    use crate::Store;

    fn draft(chain: &str, seq: u64, prev: Hash32) -> V1Draft {
        V1Draft {
            chain_id: chain.into(),
            seq,
            actor: "agent".into(),
            action: "x.y".into(),
            resource: "r".into(),
            decision: "allow".into(),
            reason: "ok".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            previous_hash: prev,
            context: None,
        }
    }

    /// A genuine signed chain of `n` records: (json, hash).
    fn genuine(n: u64) -> Vec<(String, Hash32)> {
        let key = SigningKey::generate();
        let mut prev = Hash32::ZERO;
        (0..n)
            .map(|seq| {
                let s = draft("cp", seq, prev).seal(Some((&key, "k")));
                prev = s.current_hash;
                (s.json, s.current_hash)
            })
            .collect()
    }

    fn put(store: &mut Store, items: &[(String, SigStatus)]) -> crate::BatchOutcome {
        crate::testdb::insert(store, items.iter().map(|(j, s)| (j.as_bytes(), *s)))
    }

    fn open() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.db")).unwrap();
        (d, s)
    }

    fn main_line(store: &Store) -> Vec<Hash32> {
        store
            .main_line("cp", 0, u64::MAX >> 1)
            .unwrap()
            .into_iter()
            .map(|r| r.current_hash)
            .collect()
    }

    /// Every query of placement is an index search, never a scan or a walk of a chain's
    /// branch index: one of them once was, and importing 20,000 records took 25 times as long.
    #[test]
    fn plans_are_index_searches() {
        let (_d, s) = open();
        let mut sqls: Vec<String> = [crate::graph::BY_ID, crate::graph::BY_GENESIS]
            .iter()
            .map(|w| crate::graph::select(w))
            .collect();
        for n in crate::graph::CHUNKS {
            sqls.push(crate::graph::in_list("current_hash", n));
            sqls.push(crate::graph::in_list("previous_hash", n));
        }
        let mut c = s.conn.borrow_mut();
        for sql in &sqls {
            let plan = c.sqlite_plan(sql).unwrap();
            let searches = plan.iter().filter(|l| l.starts_with("SEARCH")).count();
            assert!(searches == 1, "{sql}: {plan:?}");
            assert!(
                plan.iter()
                    .all(|l| !l.starts_with("SCAN") && !l.contains("records_chain")),
                "{sql}: {plan:?}"
            );
        }
    }

    fn forked(store: &Store) -> Vec<Hash32> {
        store
            .conn
            .borrow_mut()
            .query(
                "SELECT current_hash FROM records WHERE fork = 1 ORDER BY id",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|mut r| r.hash(0).unwrap())
            .collect()
    }

    /// One fork rule, the model's: the later claimant of a place the main line holds is the
    /// fork, never the main-line record, whatever the arrival order. An unsigned claimant of
    /// the head's successor, or of the chain's start, that arrives first is flagged when the
    /// genuine record takes the place (the store used to flag both, so a forged record cost
    /// the control plane its next decision); a record waiting at a seq flags nothing.
    #[test]
    fn the_later_claimant_is_the_fork_in_either_order() {
        for first_forged in [true, false] {
            for (_d, mut s) in crate::testdb::stores() {
                let g = genuine(4);
                let claimant = draft("cp", 3, g[2].1).seal(None);
                let waiting = draft("cp", 5, Hash32::digest(b"nothing held")).seal(None);
                let restart = draft("cp", 0, Hash32::ZERO).seal(None);
                let forged = [
                    (claimant.json.clone(), SigStatus::Unsigned),
                    (waiting.json, SigStatus::Unsigned),
                    (restart.json.clone(), SigStatus::Unsigned),
                ];
                let genuine: Vec<(String, SigStatus)> = g
                    .iter()
                    .map(|(j, _)| (j.clone(), SigStatus::Verified))
                    .collect();
                let mut forks = 0;
                if first_forged {
                    // The forged start first, alone: the chain has no record yet.
                    forks += put(&mut s, &forged[2..]).forks;
                    forks += put(&mut s, &genuine[..3]).forks;
                    forks += put(&mut s, &forged[..2]).forks;
                    forks += put(&mut s, &genuine[3..]).forks;
                } else {
                    forks += put(&mut s, &genuine).forks;
                    forks += put(&mut s, &forged).forks;
                }
                assert_eq!(main_line(&s), g.iter().map(|x| x.1).collect::<Vec<_>>());
                let mut want = vec![claimant.current_hash, restart.current_hash];
                let mut got = forked(&s);
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(got, want, "first_forged: {first_forged}");
                // A batch counts its own new records that are forks, never the genuine ones:
                // forged records that came first are flagged later, in no batch's count.
                let new_forks = if first_forged { 0 } else { 2 };
                assert_eq!(forks, new_forks, "first_forged: {first_forged}");
            }
        }
    }

    /// Attack 1 of issue 11: an unsigned record naming a real chain with the largest seq took
    /// the main line's head (and was anchored).
    #[test]
    fn an_unsigned_record_with_a_huge_seq_never_becomes_the_head() {
        for (_d, mut s) in crate::testdb::stores() {
            let g = genuine(4);
            let forged = draft("cp", MAX_SEQ, Hash32::digest(b"nothing")).seal(None);
            let successor = draft("cp", 4, g[3].1).seal(None);
            let mut items: Vec<(String, SigStatus)> = g
                .iter()
                .map(|(j, _)| (j.clone(), SigStatus::Verified))
                .collect();
            items.push((forged.json, SigStatus::Unsigned));
            items.push((successor.json, SigStatus::Unsigned));
            put(&mut s, &items);
            let heads = s.main_heads().unwrap();
            assert_eq!(heads.len(), 1);
            assert_eq!((heads[0].position, heads[0].head), (3, g[3].1));
            assert_eq!(main_line(&s), g.iter().map(|x| x.1).collect::<Vec<_>>());
            // Both forgeries are kept as evidence.
            assert_eq!(s.count_records().unwrap(), 6);
        }
    }

    /// Attack 3 of issue 11: a copy with a broken signature arriving first made the genuine
    /// copy a no-op, and the decision read `bad_signature` forever.
    #[test]
    fn a_verified_copy_supersedes_an_unverified_one_and_both_bytes_stay() {
        for (_d, mut s) in crate::testdb::stores() {
            let g = genuine(3);
            let broken = g[1].0.replace("\"signature\":\"", "\"signature\":\"AAAA");
            assert_ne!(broken, g[1].0);
            let o = put(
                &mut s,
                &[
                    (g[0].0.clone(), SigStatus::Verified),
                    (broken.clone(), SigStatus::BadSignature),
                    (g[2].0.clone(), SigStatus::Verified),
                ],
            );
            assert_eq!(o.inserted, 3);
            assert_eq!(
                main_line(&s),
                [g[0].1],
                "nothing counts past the broken copy"
            );
            let o = put(&mut s, &[(g[1].0.clone(), SigStatus::Verified)]);
            assert_eq!((o.superseded, o.inserted), (1, 0));
            assert_eq!(main_line(&s), g.iter().map(|x| x.1).collect::<Vec<_>>());
            let found = s.find_record(&g[1].1).unwrap().unwrap();
            assert_eq!(found.raw, g[1].0.as_bytes());
            let copies: Vec<Vec<u8>> = s
                .conn
                .borrow_mut()
                .query("SELECT raw FROM record_copies", &[])
                .unwrap()
                .into_iter()
                .map(|mut r| r.blob(0).unwrap())
                .collect();
            assert_eq!(copies, [broken.as_bytes().to_vec()]);
            // A broken copy arriving after the genuine one is kept, and changes nothing.
            let later = g[2].0.replace("\"signature\":\"", "\"signature\":\"BBBB");
            let o = put(&mut s, &[(later, SigStatus::BadSignature)]);
            assert_eq!((o.copies, o.superseded), (1, 0));
            assert_eq!(main_line(&s).len(), 3);
        }
    }

    /// Under a policy that lets unsigned records count, a verified copy that carries a member
    /// no hash covers must not replace the unsigned copy on the main line: the genuine
    /// signature with an added `approved_by` would otherwise cut the chain there.
    #[test]
    fn a_verified_copy_with_an_uncovered_member_does_not_replace_a_counting_copy() {
        for (_d, mut s) in crate::testdb::stores() {
            s.set_trust(zt_core::chain::TrustPolicy {
                allow_unsigned: zt_core::chain::AllowUnsigned::Everywhere,
            });
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../fixtures/profiles/approved-by-added.jsonl"),
            )
            .unwrap();
            let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
            use zt_core::json::{self, Map, Value};
            let Ok(Value::Object(mut plain)) = json::parse(lines[1].as_bytes()) else {
                panic!("fixture line 1")
            };
            plain.remove("approved_by");
            plain.remove("kms_signature");
            let mut none = Map::new();
            for (k, v) in [("algorithm", "none"), ("key_id", ""), ("signature", "")] {
                none.push(k.into(), Value::String(v.into()));
            }
            plain.push("kms_signature".into(), Value::Object(none));
            let unsigned_copy =
                String::from_utf8(json::canonicalize(&Value::Object(plain))).unwrap();
            let put_lineage = |s: &mut Store, j: &str, status: SigStatus| {
                crate::testdb::insert(s, [(j.as_bytes(), status)])
            };
            put_lineage(&mut s, lines[0], SigStatus::Verified);
            put_lineage(&mut s, &unsigned_copy, SigStatus::Unsigned);
            let first = Envelope::from_json(lines[0].as_bytes()).unwrap();
            let second = Envelope::from_json(lines[1].as_bytes()).unwrap();
            let chain = zt_core::chain::lineage_chain_name(&first.current_hash);
            let line = |s: &Store| -> Vec<Hash32> {
                s.main_line(&chain, 0, u64::MAX >> 1)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.current_hash)
                    .collect()
            };
            assert_eq!(line(&s), [first.current_hash, second.current_hash]);
            let o = put_lineage(&mut s, lines[1], SigStatus::Verified);
            assert_eq!(
                (o.superseded, o.copies),
                (0, 1),
                "kept as a copy, not made the record"
            );
            assert_eq!(
                line(&s),
                [first.current_hash, second.current_hash],
                "the main line is not cut"
            );
        }
    }

    #[test]
    fn waiting_v1_records_link_when_their_predecessor_arrives() {
        for (_d, mut s) in crate::testdb::stores() {
            let g = genuine(5);
            for (j, _) in g.iter().rev() {
                put(&mut s, &[(j.clone(), SigStatus::Verified)]);
            }
            assert_eq!(s.count_waiting().unwrap(), 0);
            assert_eq!(main_line(&s), g.iter().map(|x| x.1).collect::<Vec<_>>());
        }
    }

    /// What a forger without the key can send.
    #[derive(Debug, Clone)]
    enum Forgery {
        /// Unsigned, naming the chain, at any seq, after any genuine record or as a genesis.
        Unsigned { seq: u64, after: Option<usize> },
        /// A genuine record's text with its signature changed.
        BrokenCopy { of: usize },
        /// Signed by a key the keyring does not hold, as a successor.
        UnknownKey { after: usize },
    }

    fn forgery() -> impl Strategy<Value = Forgery> {
        prop_oneof![
            (0..MAX_SEQ, proptest::option::of(0usize..12))
                .prop_map(|(seq, after)| Forgery::Unsigned { seq, after }),
            (0..MAX_SEQ, proptest::option::of(0usize..12)).prop_map(|(seq, after)| {
                Forgery::Unsigned {
                    seq: seq % 3,
                    after,
                }
            }),
            (0usize..12).prop_map(|of| Forgery::BrokenCopy { of }),
            (0usize..12).prop_map(|after| Forgery::UnknownKey { after }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Any interleaving of a genuine signed chain with forged records, in any batches,
        /// leaves the genuine chain as the main line and its head as the only anchorable head.
        #[test]
        fn only_genuine_heads_are_anchorable(
            n in 1u64..12,
            forged in proptest::collection::vec(forgery(), 0..12),
            order in any::<proptest::sample::Index>(),
            cuts in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let g = genuine(n);
            let other = SigningKey::generate();
            let mut items: Vec<(String, SigStatus)> =
                g.iter().map(|(j, _)| (j.clone(), SigStatus::Verified)).collect();
            for f in &forged {
                let n = g.len();
                items.push(match *f {
                    Forgery::Unsigned { seq, after } => {
                        // None: a genesis of its own, before or after the genuine one.
                        let prev = after.map_or(Hash32::ZERO, |a| g[a % n].1);
                        (draft("cp", seq, prev).seal(None).json, SigStatus::Unsigned)
                    }
                    Forgery::BrokenCopy { of } => (
                        g[of % n].0.replace("\"signature\":\"", "\"signature\":\"AAAA"),
                        SigStatus::BadSignature,
                    ),
                    Forgery::UnknownKey { after } => {
                        let a = after % n;
                        (
                            draft("cp", a as u64 + 1, g[a].1).seal(Some((&other, "k"))).json,
                            SigStatus::UnknownKey,
                        )
                    }
                });
            }
            // A deterministic shuffle from the index.
            let mut seed = order.index(usize::MAX / 2) as u64 | 1;
            for i in (1..items.len()).rev() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                items.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            for (_d, mut s) in crate::testdb::stores() {
                let mut start = 0;
                for (i, cut) in cuts.iter().enumerate() {
                    if *cut && i + 1 > start && i < items.len() {
                        put(&mut s, &items[start..i + 1]);
                        start = i + 1;
                    }
                }
                put(&mut s, &items[start..]);
                let want: Vec<Hash32> = g.iter().map(|x| x.1).collect();
                prop_assert_eq!(main_line(&s), want);
                let heads = s.main_heads().unwrap();
                prop_assert_eq!(heads.len(), 1);
                prop_assert_eq!(heads[0].head, g[g.len() - 1].1);
                prop_assert_eq!(heads[0].position, n - 1);
            }
        }
    }
}
