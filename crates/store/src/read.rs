//! Reading what is stored: chains, pages of a chain branch by branch (the main line first),
//! waiting records, quarantine and copies, counts, and [`JsonlReader`], a chain as JSON Lines
//! for the verifier. Every read is paged, so memory stays flat in the store's size.

use zt_core::Hash32;

use crate::error::StoreError;
use crate::store::Store;
use crate::types::{ChainCursor, ChainRow, RawRow};

impl Store {
    /// Chains, by name.
    pub fn chains(&self) -> Result<Vec<ChainRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT chain, COUNT(*), MAX(position) FROM records WHERE branch IS NOT NULL \
                 GROUP BY chain ORDER BY chain",
                &[],
            )?
            .into_iter()
            .map(|mut r| {
                Ok(ChainRow {
                    chain: r.text(0)?,
                    records: r.i64(1)?.try_into().unwrap_or(0),
                    last_position: r.i64(2)?,
                })
            })
            .collect()
    }

    /// Up to `limit` records of `chain`, as received, branch by branch in chain order (the
    /// main line first), after `after` (the [`RawRow::cursor`] of the last row of the previous
    /// page; `None`: from the start). Paging keeps memory flat; branch order makes a fork one
    /// finding, not a trail of broken links.
    pub fn page_chain(
        &self,
        chain: &str,
        after: Option<ChainCursor>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StoreError> {
        let ChainCursor {
            branch,
            position: pos,
            id,
        } = after.unwrap_or(ChainCursor::START);
        self.conn
            .borrow_mut()
            .query(
                "SELECT branch, position, id, raw FROM records \
                 WHERE chain = ?1 AND branch IS NOT NULL AND (branch, position, id) > (?2, ?3, ?4) \
                 ORDER BY branch, position, id LIMIT ?5",
                args![chain, branch, pos, id, limit as i64],
            )?
            .into_iter()
            .map(|mut r| {
                Ok(RawRow {
                    line: r.line(0)?,
                    position: r.opt_i64(1)?,
                    id: r.i64(2)?,
                    raw: r.blob(3)?,
                })
            })
            .collect()
    }

    /// The head of `chain`'s main line: its highest position and that record's hash. A
    /// producer (the control plane) resumes its chain from here after a restart.
    pub fn head(&self, chain: &str) -> Result<Option<(i64, Hash32)>, StoreError> {
        self.conn
            .borrow_mut()
            .query_opt(
                "SELECT position, current_hash FROM records WHERE chain = ?1 AND branch = 0 \
                 ORDER BY position DESC LIMIT 1",
                args![chain],
            )?
            .map(|mut r| Ok((r.i64(0)?, r.hash(1)?)))
            .transpose()
    }

    /// Up to `limit` waiting records (predecessor never arrived) with id above `after_id`, in
    /// arrival order.
    pub fn page_waiting(&self, after_id: i64, limit: usize) -> Result<Vec<RawRow>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT position, id, raw FROM records WHERE branch IS NULL AND id > ?1 \
                 ORDER BY id LIMIT ?2",
                args![after_id, limit as i64],
            )?
            .into_iter()
            .map(|mut r| {
                Ok(RawRow {
                    line: None,
                    position: r.opt_i64(0)?,
                    id: r.i64(1)?,
                    raw: r.blob(2)?,
                })
            })
            .collect()
    }

    /// Up to `limit` quarantined envelopes with id above `after_id`: `(row, reason)`.
    pub fn page_quarantined(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(RawRow, String)>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT id, raw, reason FROM quarantine WHERE id > ?1 ORDER BY id LIMIT ?2",
                args![after_id, limit as i64],
            )?
            .into_iter()
            .map(|mut r| {
                Ok((
                    RawRow {
                        line: None,
                        position: None,
                        id: r.i64(0)?,
                        raw: r.blob(1)?,
                    },
                    r.text(2)?,
                ))
            })
            .collect()
    }

    /// Up to `limit` other copies of stored records (`record_copies`), id above `after_id`:
    /// `(id, bytes)`.
    pub fn page_copies(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        self.conn
            .borrow_mut()
            .query(
                "SELECT id, raw FROM record_copies WHERE id > ?1 ORDER BY id LIMIT ?2",
                args![after_id, limit as i64],
            )?
            .into_iter()
            .map(|mut r| Ok((r.i64(0)?, r.blob(1)?)))
            .collect()
    }

    /// Who sent the stored record `current_hash` (its sender's SPIFFE ID), when the receiver
    /// knew; `None` also when no such record is stored.
    pub fn sender(&self, current_hash: &Hash32) -> Result<Option<String>, StoreError> {
        match self.conn.borrow_mut().query_opt(
            "SELECT sender FROM records WHERE current_hash = ?1",
            args![current_hash],
        )? {
            Some(mut r) => Ok(r.opt_text(0)?),
            None => Ok(None),
        }
    }

    /// Records stored (quarantine not included).
    pub fn count_records(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM records")
    }

    /// Envelopes in quarantine.
    pub fn count_quarantined(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM quarantine")
    }

    /// Records flagged as forks.
    pub fn count_forks(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM records WHERE fork = 1")
    }

    /// Records waiting for a predecessor.
    pub fn count_waiting(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM records WHERE branch IS NULL")
    }

    /// Other copies of stored records.
    pub fn count_copies(&self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM record_copies")
    }

    fn count(&self, sql: &str) -> Result<u64, StoreError> {
        let n = self.conn.borrow_mut().query_one(sql, &[])?.i64(0)?;
        Ok(n.try_into().unwrap_or(0))
    }
}

/// Which records a [`JsonlReader`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One chain, in chain order.
    Chain(String),
    /// The waiting records, in arrival order.
    Waiting,
}

/// Records as JSON Lines, paged from the store (memory flat in store size).
///
/// A record received pretty-printed is put on one line by turning its CR and LF bytes into
/// spaces: JSON forbids raw line breaks inside strings, so this changes whitespace only, never
/// a value or a hash.
#[derive(Debug)]
pub struct JsonlReader<'s> {
    store: &'s Store,
    which: Selection,
    after: Option<ChainCursor>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

const PAGE: usize = 2048;

impl Store {
    /// A JSONL stream of the selected records.
    pub fn jsonl(&self, which: Selection) -> JsonlReader<'_> {
        JsonlReader {
            store: self,
            which,
            after: None,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl JsonlReader<'_> {
    fn refill(&mut self) -> Result<(), StoreError> {
        let rows = match &self.which {
            Selection::Chain(c) => self.store.page_chain(c, self.after, PAGE)?,
            Selection::Waiting => self
                .store
                .page_waiting(self.after.map_or(0, |a| a.id), PAGE)?,
        };
        self.buf.clear();
        self.pos = 0;
        if rows.is_empty() {
            self.done = true;
        }
        for r in rows {
            self.buf.extend(
                r.raw
                    .iter()
                    .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            self.buf.push(b'\n');
            self.after = Some(r.cursor());
        }
        Ok(())
    }
}

impl std::io::Read for JsonlReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() && !self.done {
            self.refill().map_err(std::io::Error::other)?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
