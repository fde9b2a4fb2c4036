//! Queries for people browsing the store (the terminal browser): decisions newest first, a
//! page at a time by keyset (never an OFFSET, never everything), narrowed by a filter.

use crate::error::StoreError;
use crate::sql::{SqlRow, P};
use crate::store::Store;
use crate::types::Line;

/// A parameter of a query built here (owned: the query text is built with it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum SqlValue {
    Integer(i64),
    Text(String),
}

impl SqlValue {
    fn p(&self) -> P<'_> {
        match self {
            SqlValue::Integer(v) => P::Int(*v),
            SqlValue::Text(v) => P::Text(v),
        }
    }
}

fn params(v: &[SqlValue]) -> Vec<P<'_>> {
    v.iter().map(SqlValue::p).collect()
}

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Free-text terms: each must appear in actor, action, resource or reason.
    pub text: Vec<String>,
    /// `decision:` exact.
    pub decision: Option<String>,
    /// `actor:` exact.
    pub actor: Option<String>,
    /// `action:` exact.
    pub action: Option<String>,
    /// `chain:` exact.
    pub chain: Option<String>,
    /// `status:` exact (verified, unknown_key, bad_signature, ...).
    pub status: Option<String>,
}

impl Filter {
    /// Parses `decision:deny actor:agent-x some words`; unknown `key:` terms are free text.
    pub fn parse(s: &str) -> Self {
        let mut f = Filter::default();
        for term in s.split_whitespace() {
            let (k, v) = term.split_once(':').unwrap_or(("", term));
            let v = v.to_owned();
            match k {
                "decision" if !v.is_empty() => f.decision = Some(v),
                "actor" if !v.is_empty() => f.actor = Some(v),
                "action" if !v.is_empty() => f.action = Some(v),
                "chain" if !v.is_empty() => f.chain = Some(v),
                "status" if !v.is_empty() => f.status = Some(v),
                _ => f.text.push(term.to_owned()),
            }
        }
        f
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    fn sql(&self, params: &mut Vec<SqlValue>, like: &str) -> String {
        let mut w = Vec::new();
        for (col, v) in [
            ("decision", &self.decision),
            ("actor", &self.actor),
            ("action", &self.action),
            ("chain", &self.chain),
            ("status", &self.status),
        ] {
            if let Some(v) = v {
                params.push(SqlValue::Text(v.clone()));
                w.push(format!("{col} = ?{}", params.len()));
            }
        }
        for t in &self.text {
            // LIKE with the wildcards escaped: `terminate_instances` means an underscore.
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            params.push(SqlValue::Text(format!("%{escaped}%")));
            let n = params.len();
            w.push(format!(
                "(actor {like} ?{n} ESCAPE '\\' OR action {like} ?{n} ESCAPE '\\' OR \
                 resource {like} ?{n} ESCAPE '\\' OR reason {like} ?{n} ESCAPE '\\')"
            ));
        }
        w.join(" AND ")
    }
}

/// One decision, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    /// Row id.
    pub id: i64,
    /// Timestamp, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Timestamp as written.
    pub timestamp: String,
    /// Actor.
    pub actor: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// `allow` / `deny`.
    pub decision: String,
    /// Reason.
    pub reason: String,
    /// Signature status at ingest.
    pub status: zt_core::chain::SigStatus,
    /// Flagged as a fork.
    pub fork: bool,
    /// Chain (`None` while waiting).
    pub chain: Option<String>,
    /// Position.
    pub position: Option<i64>,
}

const COLUMNS: &str = "id, ts_ms, timestamp, actor, action, COALESCE(resource, ''), decision, \
                       reason, status, fork, chain, position";

fn decision_row(r: &mut SqlRow) -> Result<DecisionRow, StoreError> {
    Ok(DecisionRow {
        id: r.i64(0)?,
        ts_ms: r.i64(1)?,
        timestamp: r.text(2)?,
        actor: r.text(3)?,
        action: r.text(4)?,
        resource: r.text(5)?,
        decision: r.text(6)?,
        reason: r.text(7)?,
        status: r.status(8)?,
        fork: r.bool(9)?,
        chain: r.opt_text(10)?,
        position: r.opt_i64(11)?,
    })
}

/// Which way to page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The newest rows.
    Newest,
    /// Rows older than `(ts_ms, id)`.
    Older(i64, i64),
    /// Rows newer than `(ts_ms, id)` (returned newest first).
    Newer(i64, i64),
    /// The oldest rows (returned newest first).
    Oldest,
}

/// One chain at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOverview {
    /// Name.
    pub chain: String,
    /// Main-line head position.
    pub head_position: i64,
    /// Main-line head hash.
    pub head: Vec<u8>,
    /// Records off the main line: later claimants of a taken position, unverified records,
    /// records with a break, and what follows any of those.
    pub off_main_records: u64,
}

/// What a bounded scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanStep {
    /// Matching rows, newest first.
    pub rows: Vec<DecisionRow>,
    /// Where to continue (`None`: the oldest row was reached).
    pub resume: Option<(i64, i64)>,
    /// Rows looked at.
    pub scanned: u64,
}

/// A stored record for the detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDetail {
    /// The listed fields.
    pub row: DecisionRow,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Its line (`None` while waiting): only a [`Line::Main`] record counts.
    pub line: Option<Line>,
    /// Profile.
    pub profile: String,
    /// Key id.
    pub key_id: String,
    /// Where it came from.
    pub source: String,
    /// `previous_hash`.
    pub previous_hash: Vec<u8>,
    /// `current_hash`.
    pub current_hash: Vec<u8>,
    /// The predecessor's position, when it is stored.
    pub predecessor: Option<Option<i64>>,
}

impl Store {
    /// Up to `limit` decisions matching `filter`, newest first, from `page`.
    pub fn decisions(
        &self,
        filter: &Filter,
        page: Page,
        limit: usize,
    ) -> Result<Vec<DecisionRow>, StoreError> {
        let like = self.conn.borrow().like();
        let (sql, params, reverse) = decisions_query(filter, page, limit, like);
        let mut rows = self
            .conn
            .borrow_mut()
            .query(&sql, &self::params(&params))?
            .into_iter()
            .map(|mut r| decision_row(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        if reverse {
            rows.reverse();
        }
        Ok(rows)
    }
}

/// The query of [`Store::decisions`]: `(sql, parameters, reverse the rows)`. Keyset paging on
/// `(ts_ms, id)`, which `records_ts` orders on both engines.
fn decisions_query(
    filter: &Filter,
    page: Page,
    limit: usize,
    like: &str,
) -> (String, Vec<SqlValue>, bool) {
    let mut params = Vec::new();
    let mut w = filter.sql(&mut params, like);
    let (cmp, order, reverse) = match page {
        Page::Newest => (None, "DESC", false),
        Page::Older(ts, id) => (Some(("<", ts, id)), "DESC", false),
        Page::Newer(ts, id) => (Some((">", ts, id)), "ASC", true),
        Page::Oldest => (None, "ASC", true),
    };
    if let Some((op, ts, id)) = cmp {
        params.push(SqlValue::Integer(ts));
        params.push(SqlValue::Integer(id));
        let n = params.len();
        let k = format!("(ts_ms, id) {op} (?{}, ?{n})", n - 1);
        w = if w.is_empty() {
            k
        } else {
            format!("{w} AND {k}")
        };
    }
    params.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT {COLUMNS} FROM records {} ORDER BY ts_ms {order}, id {order} LIMIT ?{}",
        if w.is_empty() {
            String::new()
        } else {
            format!("WHERE {w}")
        },
        params.len()
    );
    (sql, params, reverse)
}

impl Store {
    /// Every chain, found by index seeks (one per chain, never a scan of the records): its
    /// main-line head and how many records sit on fork branches.
    pub fn chain_overview(&self) -> Result<Vec<ChainOverview>, StoreError> {
        let mut out = Vec::new();
        let mut c = self.conn.borrow_mut();
        let mut after = String::new();
        while let Some(mut next) = c.query_opt(
            "SELECT chain FROM records WHERE chain > ?1 ORDER BY chain LIMIT 1",
            args![&after],
        )? {
            let chain = next.text(0)?;
            let (head_position, head) = match c.query_opt(
                "SELECT position, current_hash FROM records WHERE chain = ?1 AND branch = 0 \
                 ORDER BY position DESC LIMIT 1",
                args![&chain],
            )? {
                Some(mut r) => (r.i64(0)?, r.blob(1)?),
                None => (-1, Vec::new()),
            };
            let off_main_records = c
                .query_one(
                    "SELECT COUNT(*) FROM records WHERE chain = ?1 AND branch > 0",
                    args![&chain],
                )?
                .i64(0)?;
            out.push(ChainOverview {
                chain: chain.clone(),
                head_position,
                head,
                off_main_records: u64::try_from(off_main_records).unwrap_or(0),
            });
            after = chain;
        }
        Ok(out)
    }

    /// Looks at no more than `max_scan` rows older than `after` (newest first) and returns
    /// those matching `filter`, with where to continue: a filter that matches little never
    /// holds the caller for a scan of the whole store.
    pub fn scan_decisions(
        &self,
        filter: &Filter,
        after: Option<(i64, i64)>,
        max_scan: usize,
    ) -> Result<ScanStep, StoreError> {
        let (ts, id) = after.unwrap_or((i64::MAX, i64::MAX));
        let max = i64::try_from(max_scan.max(1)).unwrap_or(i64::MAX);
        let mut c = self.conn.borrow_mut();
        // The key of the last row in this step's window (an index-only walk).
        let bound: Option<(i64, i64)> = c
            .query_opt(
                "SELECT ts_ms, id FROM records WHERE (ts_ms, id) < (?1, ?2) \
                 ORDER BY ts_ms DESC, id DESC LIMIT 1 OFFSET ?3",
                args![ts, id, max - 1],
            )?
            .map(|mut r| Ok::<_, StoreError>((r.i64(0)?, r.i64(1)?)))
            .transpose()?;
        let mut params = vec![SqlValue::Integer(ts), SqlValue::Integer(id)];
        let mut w = vec!["(ts_ms, id) < (?1, ?2)".to_owned()];
        if let Some((bt, bi)) = bound {
            params.push(SqlValue::Integer(bt));
            params.push(SqlValue::Integer(bi));
            w.push("(ts_ms, id) >= (?3, ?4)".into());
        }
        let f = filter.sql(&mut params, c.like());
        if !f.is_empty() {
            w.push(f);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM records WHERE {} ORDER BY ts_ms DESC, id DESC",
            w.join(" AND ")
        );
        let rows = c
            .query(&sql, &self::params(&params))?
            .into_iter()
            .map(|mut r| decision_row(&mut r))
            .collect::<Result<Vec<_>, _>>()?;
        let scanned = match bound {
            Some(_) => max_scan as u64,
            None => c
                .query_one(
                    "SELECT COUNT(*) FROM records WHERE (ts_ms, id) < (?1, ?2)",
                    args![ts, id],
                )?
                .i64(0)
                .map(|n| u64::try_from(n).unwrap_or(0))?,
        };
        Ok(ScanStep {
            rows,
            resume: bound,
            scanned,
        })
    }

    /// The highest row id (0: empty): a cheap "anything new?" for live views.
    pub fn max_record_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .borrow_mut()
            .query_one("SELECT COALESCE(MAX(id), 0) FROM records", &[])?
            .i64(0)?)
    }

    /// One record with everything the detail view shows.
    pub fn record_detail(&self, id: i64) -> Result<Option<RecordDetail>, StoreError> {
        let mut c = self.conn.borrow_mut();
        let found = c
            .query_opt(
                &format!(
                    "SELECT {COLUMNS}, raw, branch, profile, key_id, source, previous_hash, current_hash \
                     FROM records WHERE id = ?1"
                ),
                args![id],
            )?
            .map(|mut r| {
                Ok::<_, StoreError>(RecordDetail {
                    row: decision_row(&mut r)?,
                    raw: r.blob(12)?,
                    line: r.line(13)?,
                    profile: r.text(14)?,
                    key_id: r.text(15)?,
                    source: r.text(16)?,
                    previous_hash: r.blob(17)?,
                    current_hash: r.blob(18)?,
                    predecessor: None,
                })
            })
            .transpose()?;
        let Some(mut d) = found else { return Ok(None) };
        if d.previous_hash.iter().any(|b| *b != 0) {
            d.predecessor = c
                .query_opt(
                    "SELECT position FROM records WHERE current_hash = ?1",
                    args![&d.previous_hash],
                )?
                .map(|mut r| r.opt_i64(0))
                .transpose()?;
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Envelopes as unsigned records to store.
    fn unsigned(recs: &[String]) -> impl Iterator<Item = (&[u8], zt_core::chain::SigStatus)> + '_ {
        recs.iter()
            .map(|r| (r.as_bytes(), zt_core::chain::SigStatus::Unsigned))
    }

    #[test]
    fn filters_parse_terms_and_escape_wildcards() {
        let f = Filter::parse("decision:deny actor:agent-7 terminate_instances 100%");
        assert_eq!(f.decision.as_deref(), Some("deny"));
        assert_eq!(f.actor.as_deref(), Some("agent-7"));
        assert_eq!(f.text, ["terminate_instances", "100%"]);
        let mut p = Vec::new();
        let sql = f.sql(&mut p, "LIKE");
        assert!(
            sql.contains("decision = ?1") && sql.contains("ESCAPE"),
            "{sql}"
        );
        assert_eq!(p[2], SqlValue::Text("%terminate\\_instances%".into()));
        assert!(Filter::parse("  ").is_empty());
        assert_eq!(Filter::parse("weird:thing").text, ["weird:thing"]);
    }

    #[test]
    fn bounded_scans_cover_every_row_once_and_the_overview_finds_every_chain() {
        for (_d, mut store) in crate::testdb::stores() {
            let mut recs = Vec::new();
            for c in 0..3 {
                let mut prev = zt_core::Hash32::ZERO;
                for seq in 0..40u64 {
                    let s = zt_core::envelope::V1Draft {
                        chain_id: format!("c{c}"),
                        seq,
                        actor: format!("a{}", seq % 4),
                        action: if seq % 5 == 0 { "x.rare" } else { "x.common" }.into(),
                        resource: String::new(),
                        decision: "allow".into(),
                        reason: "r".into(),
                        timestamp: format!("2026-10-01T00:{:02}:{:02}.000Z", seq, c),
                        previous_hash: prev,
                        context: None,
                    }
                    .seal(None);
                    prev = s.current_hash;
                    recs.push(s.json);
                }
            }
            // These chains accept unsigned records, so their heads are on the main line.
            store.set_trust(zt_core::chain::TrustPolicy::allow_all_unsigned());
            crate::testdb::insert(&mut store, unsigned(&recs));
            let f = Filter::parse("rare");
            let (mut found, mut after, mut scanned) = (Vec::new(), None, 0);
            loop {
                let step = store.scan_decisions(&f, after, 7).unwrap();
                scanned += step.scanned;
                found.extend(step.rows);
                match step.resume {
                    Some(r) => after = Some(r),
                    None => break,
                }
            }
            assert_eq!(scanned, 120);
            assert_eq!(found.len(), 24);
            let direct = store.decisions(&f, Page::Newest, 1000).unwrap();
            assert_eq!(found, direct);
            let o = store.chain_overview().unwrap();
            assert_eq!(
                o.iter().map(|c| c.chain.as_str()).collect::<Vec<_>>(),
                ["c0", "c1", "c2"]
            );
            assert!(o
                .iter()
                .all(|c| c.head_position == 39 && c.off_main_records == 0));
        }
    }

    /// The browser's keyset paging, its scans' bounds, the chain overview and placement's
    /// reads are index-driven on PostgreSQL too: no sequential scan of `records` in any plan,
    /// on a store big enough for the planner to mean it.
    #[test]
    fn postgres_plans_are_index_driven() {
        let Some(server) = crate::testdb::postgres_server() else {
            return;
        };
        let db = crate::ScratchDatabase::create(&server, "zt_plans").unwrap();
        let mut store = Store::connect(db.location()).unwrap();
        store.set_trust(zt_core::chain::TrustPolicy::allow_all_unsigned());
        let mut recs = Vec::new();
        for c in 0..5 {
            let mut prev = zt_core::Hash32::ZERO;
            for seq in 0..2000u64 {
                let s = zt_core::envelope::V1Draft {
                    chain_id: format!("c{c}"),
                    seq,
                    actor: format!("a{}", seq % 50),
                    action: format!("x.{}", seq % 20),
                    resource: String::new(),
                    decision: if seq % 4 == 0 { "deny" } else { "allow" }.into(),
                    reason: "r".into(),
                    timestamp: format!(
                        "2026-10-01T{:02}:{:02}:{:02}.000Z",
                        seq / 3600,
                        (seq / 60) % 60,
                        seq % 60
                    ),
                    previous_hash: prev,
                    context: None,
                }
                .seal(None);
                prev = s.current_hash;
                recs.push(s.json);
            }
        }
        for chunk in recs.chunks(500) {
            crate::testdb::insert(&mut store, unsigned(chunk));
        }
        let mut c = store.conn.borrow_mut();
        c.batch("ANALYZE records").unwrap();
        let mut queries: Vec<(String, Vec<SqlValue>)> = Vec::new();
        for (filter, page) in [
            ("", Page::Newest),
            ("", Page::Older(1_000_000, 5000)),
            ("", Page::Newer(1_000_000, 5000)),
            ("", Page::Oldest),
            ("decision:deny", Page::Newest),
            ("actor:a7", Page::Older(1_000_000, 5000)),
            ("action:x.3", Page::Newest),
        ] {
            let (sql, params, _) = decisions_query(&Filter::parse(filter), page, 100, "ILIKE");
            queries.push((sql, params));
        }
        let ints = |v: &[i64]| v.iter().map(|x| SqlValue::Integer(*x)).collect::<Vec<_>>();
        queries.push((
            "SELECT ts_ms, id FROM records WHERE (ts_ms, id) < (?1, ?2) \
             ORDER BY ts_ms DESC, id DESC LIMIT 1 OFFSET ?3"
                .into(),
            ints(&[i64::MAX, i64::MAX, 999]),
        ));
        queries.push((
            "SELECT chain FROM records WHERE chain > ?1 ORDER BY chain LIMIT 1".into(),
            vec![SqlValue::Text("c1".into())],
        ));
        queries.push((
            "SELECT position, current_hash FROM records WHERE chain = ?1 AND branch = 0 \
             ORDER BY position DESC LIMIT 1"
                .into(),
            vec![SqlValue::Text("c1".into())],
        ));
        queries.push((
            "SELECT branch, position, id, raw FROM records \
             WHERE chain = ?1 AND branch IS NOT NULL AND (branch, position, id) > (?2, ?3, ?4) \
             ORDER BY branch, position, id LIMIT ?5"
                .into(),
            vec![
                SqlValue::Text("c1".into()),
                SqlValue::Integer(0),
                SqlValue::Integer(10),
                SqlValue::Integer(0),
                SqlValue::Integer(2048),
            ],
        ));
        queries.push((crate::graph::select(crate::graph::BY_ID), ints(&[77])));
        for (sql, params) in &queries {
            let plan: Vec<String> = c
                .query(&format!("EXPLAIN {sql}"), &self::params(params))
                .unwrap()
                .into_iter()
                .map(|mut r| r.text(0).unwrap())
                .collect();
            let plan = plan.join("\n");
            assert!(
                !plan.contains("Seq Scan on records") && plan.contains("Index"),
                "{sql}\n{plan}"
            );
        }
        // Placement's bulk reads: the keys of a batch as one array.
        let hashes: Vec<zt_core::Hash32> = (0..64u8).map(|i| zt_core::Hash32([i; 32])).collect();
        let bulk: [(String, Vec<P<'_>>); 2] = [
            (
                crate::graph::any_list("current_hash"),
                vec![P::Hashes(&hashes)],
            ),
            (
                crate::graph::any_list("previous_hash"),
                vec![P::Hashes(&hashes)],
            ),
        ];
        for (sql, params) in &bulk {
            let plan: Vec<String> = c
                .query(&format!("EXPLAIN {sql}"), params)
                .unwrap()
                .into_iter()
                .map(|mut r| r.text(0).unwrap())
                .collect();
            let plan = plan.join("\n");
            assert!(!plan.contains("Seq Scan on records"), "{sql}\n{plan}");
        }
    }
}
