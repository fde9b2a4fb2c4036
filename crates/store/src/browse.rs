//! Queries for people browsing the store (the terminal browser): decisions newest first, a
//! page at a time by keyset (never an OFFSET, never everything), narrowed by a filter.

use rusqlite::types::Value as SqlValue;
use rusqlite::Row;

use crate::{Store, StoreError};

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

    fn sql(&self, params: &mut Vec<SqlValue>) -> String {
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
                "(actor LIKE ?{n} ESCAPE '\\' OR action LIKE ?{n} ESCAPE '\\' OR \
                 resource LIKE ?{n} ESCAPE '\\' OR reason LIKE ?{n} ESCAPE '\\')"
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
    pub status: String,
    /// Flagged as a fork.
    pub fork: bool,
    /// Chain (`None` while waiting).
    pub chain: Option<String>,
    /// Position.
    pub position: Option<i64>,
}

const COLUMNS: &str = "id, ts_ms, timestamp, actor, action, COALESCE(resource, ''), decision, \
                       reason, status, fork, chain, position";

fn decision_row(r: &Row<'_>) -> rusqlite::Result<DecisionRow> {
    Ok(DecisionRow {
        id: r.get(0)?,
        ts_ms: r.get(1)?,
        timestamp: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        resource: r.get(5)?,
        decision: r.get(6)?,
        reason: r.get(7)?,
        status: r.get(8)?,
        fork: r.get(9)?,
        chain: r.get(10)?,
        position: r.get(11)?,
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

/// A stored record for the detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDetail {
    /// The listed fields.
    pub row: DecisionRow,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Branch (0: main line).
    pub branch: Option<i64>,
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
        let mut params = Vec::new();
        let mut w = filter.sql(&mut params);
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
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st
            .query_map(rusqlite::params_from_iter(params), decision_row)?
            .collect::<Result<Vec<_>, _>>()?;
        if reverse {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Records flagged as forks, per chain.
    pub fn forks_by_chain(&self) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT chain, COUNT(*) FROM records WHERE fork = 1 AND chain IS NOT NULL GROUP BY chain",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The highest row id (0: empty): a cheap "anything new?" for live views.
    pub fn max_record_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM records", [], |r| r.get(0))?)
    }

    /// One record with what the detail view needs.
    pub fn record_detail(&self, id: i64) -> Result<Option<RecordDetail>, StoreError> {
        use rusqlite::OptionalExtension;
        let found = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS}, raw, branch, profile, key_id, source, previous_hash, current_hash \
                 FROM records WHERE id = ?1"
            ))?
            .query_row([id], |r| {
                Ok(RecordDetail {
                    row: decision_row(r)?,
                    raw: r.get(12)?,
                    branch: r.get(13)?,
                    profile: r.get(14)?,
                    key_id: r.get(15)?,
                    source: r.get(16)?,
                    previous_hash: r.get(17)?,
                    current_hash: r.get(18)?,
                    predecessor: None,
                })
            })
            .optional()?;
        let Some(mut d) = found else { return Ok(None) };
        if d.previous_hash.iter().any(|b| *b != 0) {
            d.predecessor = self
                .conn
                .prepare_cached("SELECT position FROM records WHERE current_hash = ?1")?
                .query_row([&d.previous_hash], |r| r.get(0))
                .optional()?;
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_terms_and_escape_wildcards() {
        let f = Filter::parse("decision:deny actor:agent-7 terminate_instances 100%");
        assert_eq!(f.decision.as_deref(), Some("deny"));
        assert_eq!(f.actor.as_deref(), Some("agent-7"));
        assert_eq!(f.text, ["terminate_instances", "100%"]);
        let mut p = Vec::new();
        let sql = f.sql(&mut p);
        assert!(
            sql.contains("decision = ?1") && sql.contains("ESCAPE"),
            "{sql}"
        );
        assert_eq!(p[2], SqlValue::Text("%terminate\\_instances%".into()));
        assert!(Filter::parse("  ").is_empty());
        assert_eq!(Filter::parse("weird:thing").text, ["weird:thing"]);
    }
}
