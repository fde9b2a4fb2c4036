//! Writing: a batch of accepted and rejected envelopes in one transaction, each record placed
//! by the chain model (`link.rs`) through the transaction's cache (`graph.rs`); copies of a
//! stored record ranked by the chain model's `copy_rank`.

use zt_core::chain::TrustPolicy;
use zt_core::Hash32;

use crate::error::StoreError;
use crate::graph::Graph;
use crate::link;
use crate::sql::{self, Engine};
use crate::store::Store;
use crate::types::{BatchOutcome, NewRecord, Rejected};

/// Lock names: a v1 chain's writers take its own lock; lineage records (whose chain is known
/// only once linked) take the lineage lock exclusively, v1 writers take it shared.
const LINEAGE_LOCK: &str = "lineage";

impl Store {
    /// Stores a batch in one transaction (one fsync): accepted records, then rejected ones.
    ///
    /// On PostgreSQL, writers on any number of hosts may run this at once: the transaction
    /// first takes the locks of what it may change (each v1 chain of the batch, in name order;
    /// the lineage lock exclusively when the batch holds a lineage record, else shared), so
    /// placement sees every record an earlier writer committed and no writer changes the same
    /// chain meanwhile. It returns only after the commit.
    pub fn insert_batch(
        &mut self,
        records: &[NewRecord<'_>],
        rejected: &[Rejected<'_>],
    ) -> Result<BatchOutcome, StoreError> {
        let trust = self.trust.clone();
        let conn = self.conn.get_mut();
        let mut tx = conn.begin()?;
        if !records.is_empty() && tx.engine() == Engine::Postgres {
            let lineage = records.iter().any(|r| r.envelope.v1.is_none());
            tx.lock(sql::lock_key("chain", LINEAGE_LOCK), !lineage)?;
            let mut chains: Vec<&str> = records
                .iter()
                .filter_map(|r| r.envelope.v1.as_ref().map(|v| v.chain_id.as_str()))
                .collect();
            chains.sort_unstable();
            chains.dedup();
            let mut keys: Vec<i64> = chains.iter().map(|c| sql::lock_key("chain", c)).collect();
            // Taken in one order by every writer: no deadlock among them.
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                tx.lock(k, false)?;
            }
        }
        let mut out = BatchOutcome::default();
        {
            let mut g = Graph::new(&mut tx, records.len());
            g.prefetch(records)?;
            for r in records {
                if insert_one(&mut g, *r, &trust, &mut out)? {
                    out.inserted += 1;
                }
            }
            // Counted after the whole batch: a record may wait only until a later one in the
            // same batch arrives.
            for (waiting, fork) in g.new_rows() {
                out.waiting += u64::from(waiting);
                out.forks += u64::from(fork);
            }
            g.flush()?;
        }
        for r in rejected {
            // Rejections without bytes (an oversized record) are keyed by their reason.
            let key = if r.raw.is_empty() {
                r.reason.as_bytes()
            } else {
                r.raw
            };
            let h = Hash32::digest(key);
            let n = tx.exec(
                "INSERT INTO quarantine (raw_sha256, raw, reason, received_at_ms, source, sender) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                args![&h, r.raw, r.reason, r.received_at_ms, r.source, r.sender],
            )?;
            if n == 0 {
                out.duplicates += 1;
            } else {
                out.quarantined += 1;
            }
        }
        tx.commit()?;
        Ok(out)
    }
}

/// Inserts one record and places it with the chain model; `false` when a record with its
/// `current_hash` was already stored (a retry, or a copy with other bytes: kept in
/// `record_copies`, and made the record when it is better).
fn insert_one<'a>(
    g: &mut Graph<'_, 'a>,
    r: NewRecord<'a>,
    trust: &TrustPolicy,
    out: &mut BatchOutcome,
) -> Result<bool, StoreError> {
    let env = r.envelope;
    let uncovered = env.uncovered_members(r.profile);
    let Some(stored) = g.by_current(&env.current_hash)?.into_iter().next() else {
        let id = g.add(r, uncovered)?;
        link::place(g, id, trust, out)?;
        return Ok(true);
    };
    // The stored copy's bytes and receipt: this batch's own, or the database's.
    let (raw, key_id, source, sender) = match g.pending(stored.id) {
        Some(p) => (
            p.raw.to_vec(),
            p.envelope.signature.key_id.clone(),
            p.source.to_owned(),
            p.sender.map(str::to_owned),
        ),
        None => {
            let mut row = g.conn().query_one(
                "SELECT raw, key_id, source, sender FROM records WHERE id = ?1",
                args![stored.id],
            )?;
            (row.blob(0)?, row.text(1)?, row.text(2)?, row.opt_text(3)?)
        }
    };
    // The same content again (a retry, or the same record serialized another way, as an
    // OTLP kvlist body is): a duplicate. Only other content is another copy.
    if raw == r.raw || content_key(&raw) == content_key(r.raw) {
        out.duplicates += 1;
        return Ok(false);
    }
    // The chain model ranks the copies (see zt_core::chain::copy_rank).
    let chain = stored.chain.as_deref();
    let better = zt_core::chain::copy_rank(trust, chain, r.status, uncovered.is_empty())
        > zt_core::chain::copy_rank(trust, chain, stored.status, stored.uncovered.is_empty());
    let (copy_raw, copy_status, copy_key, copy_source, copy_sender, superseded) = if better {
        (
            raw.as_slice(),
            stored.status,
            key_id.as_str(),
            source.as_str(),
            sender.as_deref(),
            true,
        )
    } else {
        (
            r.raw,
            r.status,
            env.signature.key_id.as_str(),
            r.source,
            r.sender,
            false,
        )
    };
    let kept = g.conn().exec(
        "INSERT INTO record_copies (current_hash, content_sha256, raw, status, key_id, \
         superseded, received_at_ms, source, sender) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT DO NOTHING",
        args![
            &env.current_hash,
            &content_key(copy_raw),
            copy_raw,
            copy_status.as_str(),
            copy_key,
            superseded,
            r.received_at_ms,
            copy_source,
            copy_sender
        ],
    )?;
    if better {
        // The stored copy stepped aside (its bytes stay); this one becomes the record.
        g.supersede(stored.id, r, uncovered)?;
        out.superseded += 1;
        link::replace(g, stored.id, trust, out)?;
    } else if kept == 0 {
        out.duplicates += 1;
    } else {
        out.copies += 1;
    }
    Ok(false)
}

/// What makes two copies of a record the same: the SHA-256 of their RFC 8785 form (member
/// order and whitespace are not evidence), or of the bytes when they do not parse.
fn content_key(raw: &[u8]) -> Hash32 {
    match zt_core::json::parse(raw) {
        Ok(v) => Hash32::digest(&zt_core::json::canonicalize(&v)),
        Err(_) => Hash32::digest(raw),
    }
}
