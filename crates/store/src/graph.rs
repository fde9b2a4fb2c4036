//! What placement sees of the records during one write transaction: a cache over the
//! `records` table, keyed the ways placement asks (by hash, by predecessor, by chain position,
//! by chain genesis, by id), with the batch's new rows and every change kept here until
//! [`Graph::flush`] writes them in a few statements.
//!
//! Why: placement asks a handful of questions per record. Asked of the database one by one,
//! each is a round trip, which PostgreSQL pays over a socket; asked of this cache, a batch
//! costs a few bulk reads ([`Graph::prefetch`]) and a few bulk writes, on either engine.
//!
//! Exactness: a key is read from the database once per transaction and from then on answered
//! here (the database has no row for it that the cache lacks: the batch's own rows are not in
//! the database until the flush, and nobody else writes the same chains meanwhile: SQLite has
//! one writer; PostgreSQL writers hold the chain locks, see `Store::insert_batch`).

use std::collections::{HashMap, HashSet};

use zt_core::chain::SigStatus;
use zt_core::{Hash32, Profile};

use crate::error::StoreError;
use crate::sql::{Conn, DbError, Engine, SqlRow, P};
use crate::types::{Line, NewRecord};

/// What placement reads of a stored record.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) id: i64,
    pub(crate) current: Hash32,
    pub(crate) previous: Hash32,
    pub(crate) chain: Option<String>,
    pub(crate) position: Option<i64>,
    pub(crate) line: Option<Line>,
    pub(crate) profile: Profile,
    pub(crate) status: SigStatus,
    pub(crate) uncovered: Vec<String>,
    pub(crate) fork: bool,
}

impl Row {
    pub(crate) fn v1(&self) -> bool {
        self.profile == Profile::V1
    }

    /// v1 records keep their seq in `position` even while detached.
    pub(crate) fn seq(&self) -> Option<u64> {
        if self.v1() {
            self.position.and_then(|p| u64::try_from(p).ok())
        } else {
            None
        }
    }
}

const COLUMNS: &str =
    "id, current_hash, previous_hash, chain, position, branch, profile, status, uncovered, fork";

// The reads placement makes. Each must be an index search on a handful of rows, never a walk
// of a chain: `plans_are_index_searches` checks them.
pub(crate) const BY_ID: &str = "WHERE id = ?1";
pub(crate) const BY_GENESIS: &str = "WHERE chain = ?1 AND previous_hash = ?2";
/// Bulk reads by hash: `IN` lists of these sizes (a batch is cut into them, so a few shapes
/// of statement serve every batch).
pub(crate) const CHUNKS: [usize; 4] = [64, 16, 4, 1];
/// New rows are written in multi-row `INSERT`s of these sizes (22 parameters a row: within
/// both engines' limits).
const INSERT_CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

fn read_row(mut r: SqlRow) -> Result<Row, StoreError> {
    let profile = r.text(6)?;
    Ok(Row {
        id: r.i64(0)?,
        current: r.hash(1)?,
        previous: r.hash(2)?,
        chain: r.opt_text(3)?,
        position: r.opt_i64(4)?,
        line: r.line(5)?,
        // Only profiles this build wrote are in the store; an unknown one cannot be judged,
        // so it is read as a record whose hash does not recompute (never on a main line).
        profile: Profile::from_name(&profile).unwrap_or(Profile::V1),
        status: r.status(7)?,
        uncovered: decode_uncovered(r.opt_text(8)?.as_deref()),
        fork: r.bool(9)?,
    })
}

/// `uncovered` is stored as the member names joined by newlines (member names of evidence
/// can hold commas; a raw newline in a member name is escaped by JSON, so it cannot occur).
pub(crate) fn encode_uncovered(members: &[String]) -> Option<String> {
    (!members.is_empty()).then(|| members.join("\n"))
}

fn decode_uncovered(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split('\n').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id(i64),
    Current(Hash32),
    Prev(Hash32),
    Genesis(String),
}

/// The cache; see the module docs.
pub(crate) struct Graph<'c, 'a> {
    conn: &'c mut Conn,
    rows: HashMap<i64, Row>,
    by_current: HashMap<Hash32, Vec<i64>>,
    by_prev: HashMap<Hash32, Vec<i64>>,
    by_genesis: HashMap<String, Vec<i64>>,
    loaded: HashSet<Key>,
    /// The batch's new records, written at the flush.
    pending: HashMap<i64, NewRecord<'a>>,
    order: Vec<i64>,
    dirty: HashSet<i64>,
    free_ids: Vec<i64>,
    reserve: usize,
}

fn push(ids: &mut Vec<i64>, id: i64) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

impl<'c, 'a> Graph<'c, 'a> {
    /// A cache over `conn`, which is in a write transaction; `reserve`: how many new rows the
    /// batch may add (ids are taken for that many at once).
    pub(crate) fn new(conn: &'c mut Conn, reserve: usize) -> Self {
        Self {
            conn,
            rows: HashMap::new(),
            by_current: HashMap::new(),
            by_prev: HashMap::new(),
            by_genesis: HashMap::new(),
            loaded: HashSet::new(),
            pending: HashMap::new(),
            order: Vec::new(),
            dirty: HashSet::new(),
            free_ids: Vec::new(),
            reserve: reserve.max(1),
        }
    }

    /// The connection, for statements outside placement (copies, quarantine).
    pub(crate) fn conn(&mut self) -> &mut Conn {
        self.conn
    }

    fn index(&mut self, id: i64) {
        let Some(r) = self.rows.get(&id) else { return };
        let (current, previous) = (r.current, r.previous);
        let genesis = r.chain.clone().filter(|_| r.previous == Hash32::ZERO);
        push(self.by_current.entry(current).or_default(), id);
        push(self.by_prev.entry(previous).or_default(), id);
        if let Some(c) = genesis {
            push(self.by_genesis.entry(c).or_default(), id);
        }
    }

    fn absorb(&mut self, rows: Vec<SqlRow>) -> Result<(), StoreError> {
        for r in rows {
            let r = read_row(r)?;
            let id = r.id;
            // What this transaction changed wins over what the database still says.
            if let std::collections::hash_map::Entry::Vacant(e) = self.rows.entry(id) {
                e.insert(r);
                self.index(id);
            }
        }
        Ok(())
    }

    /// Reads every key of one kind not read yet, in bulk.
    fn load_hashes(&mut self, column: &str, hashes: &[Hash32]) -> Result<(), StoreError> {
        let key = |h: &Hash32| {
            if column == "current_hash" {
                Key::Current(*h)
            } else {
                Key::Prev(*h)
            }
        };
        let mut seen = HashSet::new();
        let todo: Vec<Hash32> = hashes
            .iter()
            .filter(|h| !self.loaded.contains(&key(h)) && seen.insert(**h))
            .copied()
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        // PostgreSQL: one statement, the keys as an array (planned with its length, so an
        // index scan on a store of any size worth one). SQLite: `IN` lists.
        if self.conn.engine() == Engine::Postgres {
            let rows = self.conn.query(&any_list(column), &[P::Hashes(&todo)])?;
            self.absorb(rows)?;
        } else {
            for now in chunked(&todo, &CHUNKS) {
                let params: Vec<P<'_>> = now.iter().map(P::from).collect();
                let rows = self.conn.query(&in_list(column, now.len()), &params)?;
                self.absorb(rows)?;
            }
        }
        for h in todo {
            self.loaded.insert(key(&h));
        }
        Ok(())
    }

    fn load(&mut self, key: Key) -> Result<(), StoreError> {
        if self.loaded.contains(&key) {
            return Ok(());
        }
        let rows = match &key {
            Key::Current(h) => return self.load_hashes("current_hash", &[*h]),
            Key::Prev(h) => return self.load_hashes("previous_hash", &[*h]),
            Key::Id(id) => self.conn.query(&select(BY_ID), args![*id])?,
            Key::Genesis(c) => self
                .conn
                .query(&select(BY_GENESIS), args![c, &Hash32::ZERO])?,
        };
        self.absorb(rows)?;
        self.loaded.insert(key);
        Ok(())
    }

    /// Reads, in a few statements, what placing `records` will ask: the records with their
    /// hashes or predecessors' hashes, and those continuing from either.
    pub(crate) fn prefetch(&mut self, records: &[NewRecord<'_>]) -> Result<(), StoreError> {
        let mut hashes: Vec<Hash32> = Vec::with_capacity(records.len() * 2);
        for r in records {
            hashes.push(r.envelope.current_hash);
            if r.envelope.previous_hash != Hash32::ZERO {
                hashes.push(r.envelope.previous_hash);
            }
        }
        self.load_hashes("current_hash", &hashes)?;
        self.load_hashes("previous_hash", &hashes)?;
        Ok(())
    }

    /// A record by id.
    pub(crate) fn row(&mut self, id: i64) -> Result<Row, StoreError> {
        // A row in the cache is the row: read by another key, or new in this batch.
        if !self.rows.contains_key(&id) {
            self.load(Key::Id(id))?;
        }
        Ok(self.rows.get(&id).cloned().ok_or(DbError::Column {
            column: 0,
            want: "a stored record",
        })?)
    }

    fn rows_of(&self, ids: Option<&Vec<i64>>) -> Vec<Row> {
        let mut out: Vec<Row> = ids
            .into_iter()
            .flatten()
            .filter_map(|id| self.rows.get(id).cloned())
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// Records whose hash is `h` (at most one row: copies live in `record_copies`).
    pub(crate) fn by_current(&mut self, h: &Hash32) -> Result<Vec<Row>, StoreError> {
        self.load(Key::Current(*h))?;
        Ok(self.rows_of(self.by_current.get(h)))
    }

    /// Records naming `h` as their predecessor, in arrival order.
    pub(crate) fn by_prev(&mut self, h: &Hash32) -> Result<Vec<Row>, StoreError> {
        self.load(Key::Prev(*h))?;
        Ok(self.rows_of(self.by_prev.get(h)))
    }

    /// Records of `chain` with the zero hash as predecessor.
    pub(crate) fn geneses(&mut self, chain: &str) -> Result<Vec<Row>, StoreError> {
        self.load(Key::Genesis(chain.to_owned()))?;
        Ok(self.rows_of(self.by_genesis.get(chain)))
    }

    fn next_id(&mut self) -> Result<i64, StoreError> {
        if self.free_ids.is_empty() {
            let n = i64::try_from(self.reserve).unwrap_or(i64::MAX);
            self.free_ids = match self.conn.engine() {
                // One writer holds the write lock: the ids after the highest are free.
                Engine::Sqlite => {
                    let max = self
                        .conn
                        .query_one("SELECT COALESCE(MAX(id), 0) FROM records", &[])?
                        .i64(0)?;
                    let max = self.order.last().copied().unwrap_or(0).max(max);
                    (max + 1..=max + n).rev().collect()
                }
                // Concurrent writers take ids from the sequence.
                Engine::Postgres => {
                    let mut ids: Vec<i64> = self
                        .conn
                        .query(
                            "SELECT nextval('records_id_seq') FROM generate_series(1, ?1)",
                            args![n],
                        )?
                        .into_iter()
                        .map(|mut r| r.i64(0))
                        .collect::<Result<_, _>>()?;
                    ids.sort_unstable_by(|a, b| b.cmp(a));
                    ids
                }
            };
        }
        Ok(self.free_ids.pop().ok_or(DbError::Column {
            column: 0,
            want: "a free id",
        })?)
    }

    /// Adds a new record, detached (a v1 record names its chain and position); written at the
    /// flush.
    pub(crate) fn add(
        &mut self,
        rec: NewRecord<'a>,
        uncovered: Vec<String>,
    ) -> Result<i64, StoreError> {
        let id = self.next_id()?;
        let env = rec.envelope;
        let (chain, position) = match &env.v1 {
            Some(v1) => (Some(v1.chain_id.clone()), i64::try_from(v1.seq).ok()),
            None => (None, None),
        };
        self.rows.insert(
            id,
            Row {
                id,
                current: env.current_hash,
                previous: env.previous_hash,
                chain,
                position,
                line: None,
                profile: rec.profile,
                status: rec.status,
                uncovered,
                fork: false,
            },
        );
        self.index(id);
        self.pending.insert(id, rec);
        self.order.push(id);
        Ok(id)
    }

    /// A new record of this batch, if `id` is one.
    pub(crate) fn pending(&self, id: i64) -> Option<NewRecord<'a>> {
        self.pending.get(&id).copied()
    }

    /// Record `id`'s bytes are now those of `rec` (a better copy).
    pub(crate) fn supersede(
        &mut self,
        id: i64,
        rec: NewRecord<'a>,
        uncovered: Vec<String>,
    ) -> Result<(), StoreError> {
        if let Some(p) = self.pending.get_mut(&id) {
            *p = rec;
        } else {
            let env = rec.envelope;
            let encoded = encode_uncovered(&uncovered);
            self.conn.exec(
                "UPDATE records SET raw = ?1, status = ?2, key_id = ?3, uncovered = ?4, \
                 source = ?5, received_at_ms = ?6, sender = ?7 WHERE id = ?8",
                args![
                    rec.raw,
                    rec.status.as_str(),
                    &env.signature.key_id,
                    encoded.as_ref(),
                    rec.source,
                    rec.received_at_ms,
                    rec.sender,
                    id
                ],
            )?;
        }
        if let Some(r) = self.rows.get_mut(&id) {
            r.status = rec.status;
            r.uncovered = uncovered;
        }
        Ok(())
    }

    /// Places record `id`.
    pub(crate) fn set_place(
        &mut self,
        id: i64,
        chain: &str,
        position: Option<i64>,
        line: Line,
    ) -> Result<(), StoreError> {
        let r = self.rows.get_mut(&id).ok_or(DbError::Column {
            column: 0,
            want: "a stored record",
        })?;
        r.chain = Some(chain.to_owned());
        r.position = position;
        r.line = Some(line);
        self.index(id);
        if !self.pending.contains_key(&id) {
            self.dirty.insert(id);
        }
        Ok(())
    }

    /// Flags record `id` as a fork.
    pub(crate) fn set_fork(&mut self, id: i64) {
        if let Some(r) = self.rows.get_mut(&id) {
            if !r.fork {
                r.fork = true;
                if !self.pending.contains_key(&id) {
                    self.dirty.insert(id);
                }
            }
        }
    }

    /// The new rows of this batch, in order: `(waiting, fork)` of each.
    pub(crate) fn new_rows(&self) -> impl Iterator<Item = (bool, bool)> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.rows.get(id))
            .map(|r| (r.line.is_none(), r.fork))
    }

    /// Writes the batch's new rows and every change: multi-row inserts, then one update per
    /// changed older row.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        let order = std::mem::take(&mut self.order);
        for now in chunked(&order, &INSERT_CHUNKS) {
            let rows: Vec<(&Row, &NewRecord<'_>, Option<String>)> = now
                .iter()
                .filter_map(|id| Some((self.rows.get(id)?, self.pending.get(id)?)))
                .map(|(r, rec)| (r, rec, encode_uncovered(&r.uncovered)))
                .collect();
            let mut params: Vec<P<'_>> = Vec::with_capacity(rows.len() * INSERT_COLUMNS);
            for (r, rec, uncovered) in &rows {
                let env = rec.envelope;
                params.extend([
                    P::Int(r.id),
                    P::from(&r.current),
                    P::from(&r.previous),
                    P::from(r.chain.as_ref()),
                    P::from(r.position),
                    P::from(r.line),
                    P::Text(r.profile.name()),
                    P::Text(&env.actor),
                    P::Text(&env.action),
                    P::from(env.resource.as_ref()),
                    P::Text(&env.decision),
                    P::Text(&env.reason),
                    P::Text(&env.timestamp),
                    P::Int(env.signed_at.unix_millis()),
                    P::Text(&env.signature.key_id),
                    P::Text(r.status.as_str()),
                    P::Bool(r.fork),
                    P::Blob(rec.raw),
                    P::Int(rec.received_at_ms),
                    P::Text(rec.source),
                    P::from(uncovered.as_ref()),
                    P::from(rec.sender),
                ]);
            }
            self.conn.exec(&insert_rows(rows.len()), &params)?;
        }
        let mut dirty: Vec<i64> = self.dirty.drain().collect();
        dirty.sort_unstable();
        for id in dirty {
            if let Some(r) = self.rows.get(&id) {
                self.conn.exec(
                    "UPDATE records SET chain = ?1, position = ?2, branch = ?3, fork = ?4 WHERE id = ?5",
                    args![r.chain.as_ref(), r.position, r.line, r.fork, id],
                )?;
            }
        }
        self.pending.clear();
        Ok(())
    }
}

const INSERT_COLUMNS: usize = 22;

/// `items` cut into slices, each the largest of `sizes` that fits what is left (so a few
/// shapes of statement serve every length).
fn chunked<'t, T>(items: &'t [T], sizes: &'t [usize]) -> impl Iterator<Item = &'t [T]> + 't {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes
            .iter()
            .copied()
            .find(|&c| c <= rest.len())
            .unwrap_or(1);
        let (now, later) = rest.split_at(n);
        rest = later;
        Some(now)
    })
}

fn insert_rows(n: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO records (id, current_hash, previous_hash, chain, position, branch, profile, \
         actor, action, resource, decision, reason, timestamp, ts_ms, key_id, status, fork, raw, \
         received_at_ms, source, uncovered, sender) VALUES ",
    );
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..INSERT_COLUMNS {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("?{}", i * INSERT_COLUMNS + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// `SELECT` of the row columns with a `WHERE` clause.
pub(crate) fn select(clause: &str) -> String {
    format!("SELECT {COLUMNS} FROM records {clause}")
}

/// PostgreSQL: `SELECT` of the row columns whose `column` is in the array `?1`.
pub(crate) fn any_list(column: &str) -> String {
    select(&format!("WHERE {column} = ANY(?1)"))
}

/// `SELECT` of the row columns whose `column` is one of `n` parameters.
pub(crate) fn in_list(column: &str, n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("?{i}")).collect();
    select(&format!("WHERE {column} IN ({})", list.join(", ")))
}
