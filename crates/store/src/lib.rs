//! The evidence store shared by ingest, verifier, anchor and browser: a SQLite file (WAL; the
//! embedded default) or a PostgreSQL database that receivers and control planes on many hosts
//! write at once ([`Location`]; `docs/postgres.md`). Both engines run the same queries
//! (`sql.rs`) and the same placement (`graph.rs`, `link.rs`).
//!
//! Every envelope is kept **byte for byte as received** (`raw`), beside extracted columns for
//! browsing. Nothing is dropped:
//! - the same envelope again (same `current_hash`) is a no-op: exporters retry;
//! - a record whose predecessor has not arrived is stored with no chain yet (*waiting*) and is
//!   linked, with its own successors, when the predecessor comes;
//! - a second record claiming a place the main line already holds (a predecessor's
//!   successor, a v1 chain's start) is stored too, off the main line, and flagged `fork`: the
//!   chain model's verdict ([`zt_core::chain::judge`]), whatever the arrival order (a claimant
//!   that came first but does not count is flagged when the genuine record takes the place);
//!   the main-line record is never flagged;
//! - envelopes that cannot be accepted (unreadable, hash does not recompute) go to
//!   `quarantine` with the reason: they are evidence of something.
//!
//! Chains: a v1 record names its chain (`chain_id`, position = `seq`). A lineage record's
//! chain is named after its genesis record (`lineage-` and 16 hex digits of that record's
//! hash), position = predecessor's position + 1.
//!
//! Trust: where a record goes (main line, branch, waiting) is the chain model's decision
//! ([`zt_core::chain`]), made in `link.rs`. Only records that count under the store's
//! [`TrustPolicy`] (signature verified, or unsigned in a chain configured to accept them) can
//! be on a main line; the rest are kept as evidence, off it. Copies of one record (same
//! `current_hash`, other bytes: the signature and a few members are outside the hash) are all
//! kept; a verified copy supersedes an unverified one as the record, the other bytes stay in
//! `record_copies`.
//!
//! Durability: `synchronous=FULL` by default (PostgreSQL: `synchronous_commit = on`), so a
//! batch that [`Store::insert_batch`] returned from survives a power cut; one transaction per
//! batch (group commit).
//!
//! ```no_run
//! use zt_store::Store;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(std::path::Path::new("audit.db"))?;
//! for c in store.chains()? {
//!     println!("{} {} records", c.chain, c.records);
//! }
//! # Ok(()) }
//! ```

mod anchor;
mod browse;
mod graph;
mod link;
mod location;
mod pgschema;
mod sql;
#[cfg(test)]
mod testdb;

use std::cell::RefCell;
use std::path::Path;

pub use anchor::{EpochRow, EpochState, FoundRecord, LeafRow, LineRecord};
pub use browse::{ChainOverview, DecisionRow, Filter, Page, RecordDetail, ScanStep};
pub use location::{Location, ScratchDatabase};
use sql::{args, Conn, Engine};
use zt_core::chain::{SigStatus, TrustPolicy};
use zt_core::{Envelope, Hash32, Profile};

/// Store errors: the database said no, or it is not a store this version can use.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (or could not be reached): the server's own words when it answered.
    #[error("PostgreSQL: {}", describe_postgres(.0))]
    Postgres(postgres::Error),
    /// The database was written by a newer zt-audit.
    #[error("store schema version {found} is newer than this zt-audit supports ({supported})")]
    NewerSchema {
        /// Schema version found.
        found: i64,
        /// Highest this build knows.
        supported: i64,
    },
    /// A read-only connection (a replica) found no store, or an older one it cannot migrate.
    #[error("{0}")]
    NotReady(String),
    /// A column held something this build never writes there.
    #[error("unexpected value in result column {column}: wanted {want}")]
    Column {
        /// 0-based column.
        column: usize,
        /// What was expected.
        want: &'static str,
    },
    /// A `status` column names no signature status.
    #[error("unknown signature status {0:?} in the store")]
    Status(String),
    /// The PostgreSQL URL or its TLS setup could not be used.
    #[error("{0}")]
    Config(String),
    /// The PostgreSQL session ended under a transaction: nothing of it was committed.
    #[error("PostgreSQL: {0}")]
    Lost(&'static str),
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE records (
    id              INTEGER PRIMARY KEY,
    current_hash    BLOB NOT NULL UNIQUE,
    previous_hash   BLOB NOT NULL,
    chain           TEXT,            -- NULL while waiting for the predecessor
    position        INTEGER,         -- 0-based within the chain; NULL while waiting
    branch          INTEGER,         -- 0 on the main line; a fork's later claimant starts its own (its id)
    profile         TEXT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT,
    decision        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    timestamp       TEXT NOT NULL,
    ts_ms           INTEGER NOT NULL,
    key_id          TEXT NOT NULL,
    status          TEXT NOT NULL,   -- signature check: verified, unsigned, mock, unknown_key, key_not_valid, bad_signature, unauthorized_signer
    fork            INTEGER NOT NULL DEFAULT 0,
    raw             BLOB NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
CREATE INDEX records_ts       ON records(ts_ms DESC, id DESC);
CREATE INDEX records_actor    ON records(actor, ts_ms DESC);
CREATE INDEX records_action   ON records(action, ts_ms DESC);
CREATE INDEX records_decision ON records(decision, ts_ms DESC);
CREATE INDEX records_prev     ON records(previous_hash, chain);
CREATE INDEX records_chain    ON records(chain, branch, position, id);
CREATE INDEX records_position ON records(chain, position);
CREATE TABLE quarantine (
    id              INTEGER PRIMARY KEY,
    raw_sha256      BLOB NOT NULL UNIQUE,   -- retries of the same bytes are one row
    raw             BLOB NOT NULL,
    reason          TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
"#,
    anchor::MIGRATION,
    // 3: the chain model decides placement (relinked in Rust after this runs), and every copy
    // of a record is kept.
    r#"
ALTER TABLE records ADD COLUMN uncovered TEXT;   -- members the hash does not cover, newline-separated
CREATE INDEX records_detached ON records(id) WHERE branch IS NULL;
CREATE TABLE record_copies (
    id              INTEGER PRIMARY KEY,
    current_hash    BLOB NOT NULL,
    content_sha256  BLOB NOT NULL UNIQUE,   -- SHA-256 of the RFC 8785 form: the same content again is one row
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    superseded      INTEGER NOT NULL,       -- 1: was the record until a better copy came
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
CREATE INDEX record_copies_hash ON record_copies(current_hash);
"#,
    // 4: a log on the contract is its owner's (the log id binds the owner's address).
    anchor::MIGRATION_OWNER,
    // 5: who sent each envelope: the SPIFFE ID of the X.509-SVID the receiver verified over
    // mTLS (NULL when none). Receipt metadata, like `source`: not part of the envelope.
    r#"
ALTER TABLE records ADD COLUMN sender TEXT;
ALTER TABLE quarantine ADD COLUMN sender TEXT;
ALTER TABLE record_copies ADD COLUMN sender TEXT;
"#,
    // 6: one fork rule, the chain model's (a later claimant of a place the main line holds).
    pgschema::ONE_FORK_RULE,
];

/// The migration after which placement is the chain model's: stores older than this are
/// relinked when it runs.
const RELINK_AT: usize = 3;

/// An accepted envelope, ready to store.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// The bytes as received.
    pub raw: &'a [u8],
    /// The parsed envelope.
    pub envelope: &'a Envelope,
    /// The profile its hash recomputes under.
    pub profile: Profile,
    /// Its signature status under the receiver's keyring.
    pub status: SigStatus,
    /// Where it came from (`import:FILE`, `otlp:ADDR`, ...).
    pub source: &'a str,
    /// Who sent it: the sender's authenticated identity (an SVID's SPIFFE ID), if any.
    pub sender: Option<&'a str>,
    /// When it arrived, ms since the Unix epoch.
    pub received_at_ms: i64,
}

/// A rejected envelope, kept with its reason.
#[derive(Debug, Clone, Copy)]
pub struct Rejected<'a> {
    /// The bytes as received.
    pub raw: &'a [u8],
    /// Why it was not accepted.
    pub reason: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// Who sent it: the sender's authenticated identity (an SVID's SPIFFE ID), if any.
    pub sender: Option<&'a str>,
    /// When it arrived, ms since the Unix epoch.
    pub received_at_ms: i64,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New records stored.
    pub inserted: u64,
    /// Records already stored (no-op).
    pub duplicates: u64,
    /// New records flagged as forks.
    pub forks: u64,
    /// New records still waiting for their predecessor after the batch.
    pub waiting: u64,
    /// Earlier waiting records linked into a chain by this batch.
    pub linked: u64,
    /// Rejected envelopes quarantined.
    pub quarantined: u64,
    /// Copies of stored records with other bytes (kept in `record_copies`).
    pub copies: u64,
    /// Records whose stored copy was superseded by a verified one.
    pub superseded: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: BatchOutcome) {
        self.inserted += o.inserted;
        self.duplicates += o.duplicates;
        self.forks += o.forks;
        self.waiting += o.waiting;
        self.linked += o.linked;
        self.quarantined += o.quarantined;
        self.copies += o.copies;
        self.superseded += o.superseded;
    }
}

/// One chain in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    /// Chain name.
    pub chain: String,
    /// Records in it.
    pub records: u64,
    /// Highest position.
    pub last_position: i64,
}

/// A stored record's bytes and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Branch in its chain (0: the main line; see the module docs).
    pub branch: Option<i64>,
    /// Position in its chain (`None` while waiting, and in quarantine).
    pub position: Option<i64>,
    /// Row id (arrival order).
    pub id: i64,
    /// The bytes as received.
    pub raw: Vec<u8>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: RefCell<Conn>,
    trust: TrustPolicy,
    location: Location,
}

/// A 32-byte hash column (anything else reads as zeros, which no record has): the SQL edge of
/// [`Hash32`], for every SQLite file of zt-audit (the control plane's `state.db` too).
pub fn hash_of(v: &[u8]) -> Hash32 {
    let mut b = [0u8; 32];
    if v.len() == 32 {
        b.copy_from_slice(v);
    }
    Hash32(b)
}

/// A `status` column: the SQL edge of [`SigStatus`].
pub(crate) fn sig_status(s: String) -> Result<SigStatus, StoreError> {
    s.parse().map_err(|_| StoreError::Status(s))
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Postgres(e)
    }
}

/// The server's message (severity, text, SQLSTATE, detail, hint), or the client's error and
/// its causes (a refused connection, say).
fn describe_postgres(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(d) = db.detail() {
            s.push_str(&format!("; {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    zt_core::text::error_chain(e)
}

/// Statements this process has sent to PostgreSQL so far, every store together (0 on SQLite):
/// what a receiver costs the database, per envelope (`zt_ingest_store_statements_total`).
pub fn postgres_statements() -> u64 {
    sql::STATEMENTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a PostgreSQL server has written and which process it is, for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresStats {
    /// Bytes of WAL written since the cluster began (`pg_current_wal_lsn`).
    pub wal_bytes: i64,
    /// Size of this database on disk (tables, indexes).
    pub database_bytes: i64,
    /// The server process serving this connection (its parent is the postmaster).
    pub backend_pid: i64,
}

/// Current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    zt_core::time::Timestamp::now().unix_millis()
}

/// Lock names: a v1 chain's writers take its own lock; lineage records (whose chain is known
/// only once linked) take the lineage lock exclusively, v1 writers take it shared.
const LINEAGE_LOCK: &str = "lineage";

impl Store {
    /// Opens (creating and migrating if needed) the SQLite store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::connect(&Location::Sqlite(path.to_path_buf()))
    }

    /// Opens the store at `location` (a SQLite file, or a PostgreSQL database), creating and
    /// migrating it if needed.
    pub fn connect(location: &Location) -> Result<Self, StoreError> {
        let mut store = Self::raw(location, false)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens the store at `location`, which must exist already (a SQLite file; a PostgreSQL
    /// database is migrated if needed, as [`Store::connect`] does): for the commands that
    /// work on a store others fill (`anchor run`, `prove`).
    pub fn open_existing(location: &Location) -> Result<Self, StoreError> {
        exists(location)?;
        Self::connect(location)
    }

    /// Opens the store at `location` for reading only: nothing is created or migrated, and a
    /// PostgreSQL session is read-only (a streaming replica serves it). Readers: `verify`,
    /// `tui`, `reconcile`.
    pub fn open_read_only(location: &Location) -> Result<Self, StoreError> {
        exists(location)?;
        let store = Self::raw(location, true)?;
        match location {
            // A SQLite reader migrates as before: the file is the one store, and a reader of
            // an old file may be the first to open it with this version.
            Location::Sqlite(_) => {
                let mut store = store;
                store.migrate()?;
                Ok(store)
            }
            Location::Postgres(_) => {
                let found = store.schema_version()?;
                let supported = pgschema::VERSION;
                if found > supported {
                    return Err(StoreError::NewerSchema { found, supported });
                }
                if found < supported {
                    return Err(StoreError::NotReady(format!(
                        "{location} holds no zt-audit store of schema {supported} (found {found}): \
                         open it once read-write (serve, import) on the primary"
                    )));
                }
                Ok(store)
            }
        }
    }

    fn raw(location: &Location, read_only: bool) -> Result<Self, StoreError> {
        let conn = match location {
            Location::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                // WAL: readers (verify, browser) never block the writer. FULL: a committed
                // batch survives power loss, which is what an OTLP 200 promises.
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                // The hash indexes have random keys: past the default 2 MiB page cache every
                // insert misses. 64 MiB keeps inserts fast into the millions of records; it is
                // a bound, so memory stays flat.
                conn.pragma_update(None, "cache_size", -65_536)?;
                // Checkpoint every 8,192 pages (32 MiB of WAL) instead of 1,000: fewer, larger
                // copies back into the database while ingest is running.
                conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
                conn.set_prepared_statement_cache_capacity(128);
                Conn::Sqlite(conn)
            }
            Location::Postgres(url) => {
                Conn::Postgres(Box::new(location::connect_postgres(url, read_only)?))
            }
        };
        Ok(Self {
            conn: RefCell::new(conn),
            trust: TrustPolicy::default(),
            location: location.clone(),
        })
    }

    /// Where this store is (a PostgreSQL URL without its password).
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Which records count, for the records placed from now on (default: only verified ones;
    /// see [`TrustPolicy`]). Records already placed keep their place.
    pub fn set_trust(&mut self, trust: TrustPolicy) {
        self.trust = trust;
    }

    /// How long a write waits for another connection's lock before failing (10 s by default;
    /// PostgreSQL: `lock_timeout`).
    pub fn set_busy_timeout(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        match &mut *self.conn.borrow_mut() {
            Conn::Sqlite(c) => c.busy_timeout(timeout)?,
            c @ Conn::Postgres(_) => {
                c.batch(&format!("SET lock_timeout = {}", timeout.as_millis()))?
            }
        }
        Ok(())
    }

    /// Sets `PRAGMA synchronous` (`FULL` by default; `NORMAL` trades the last commits on power
    /// loss for speed). PostgreSQL: `synchronous_commit` `on` / `off`.
    pub fn set_synchronous(&self, full: bool) -> Result<(), StoreError> {
        match &mut *self.conn.borrow_mut() {
            Conn::Sqlite(c) => {
                c.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?
            }
            c @ Conn::Postgres(_) => c.batch(if full {
                "SET synchronous_commit = on"
            } else {
                "SET synchronous_commit = off"
            })?,
        }
        Ok(())
    }

    /// Takes the leadership named `role` for as long as this store is open (PostgreSQL: a
    /// session advisory lock, so one holder across every host; it is released when the
    /// connection ends, a crash included). `false`: another session holds it. A SQLite store
    /// has one host; its leadership is always granted.
    pub fn try_lead(&self, role: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.borrow_mut();
        if c.engine() == Engine::Sqlite {
            return Ok(true);
        }
        c.query_one(
            "SELECT pg_try_advisory_lock(?1)::int",
            args![sql::lock_key("leader", role)],
        )?
        .bool(0)
    }

    /// Runs `f` with every read of this store in one snapshot (SQLite: one read transaction;
    /// PostgreSQL: `REPEATABLE READ READ ONLY`): what writers commit meanwhile is not seen, so
    /// a verification of a live store is of one moment. Reads only: a write inside fails.
    pub fn in_snapshot<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        {
            let mut c = self.conn.borrow_mut();
            let begin = match c.engine() {
                Engine::Sqlite => "BEGIN",
                Engine::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            };
            c.batch(begin)?;
        }
        let out = f();
        self.conn.borrow_mut().batch("COMMIT")?;
        Ok(out)
    }

    /// WAL position, database size and backend pid, on PostgreSQL (`None` on SQLite).
    pub fn postgres_stats(&self) -> Result<Option<PostgresStats>, StoreError> {
        let mut c = self.conn.borrow_mut();
        if c.engine() != Engine::Postgres {
            return Ok(None);
        }
        let mut r = c.query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, \
             pg_database_size(current_database()), pg_backend_pid()::bigint",
            &[],
        )?;
        Ok(Some(PostgresStats {
            wal_bytes: r.i64(0)?,
            database_bytes: r.i64(1)?,
            backend_pid: r.i64(2)?,
        }))
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        let mut c = self.conn.borrow_mut();
        match &mut *c {
            Conn::Sqlite(conn) => Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?),
            c @ Conn::Postgres(_) => pgschema::version(c),
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        if self.conn.get_mut().engine() == Engine::Postgres {
            return pgschema::migrate(self.conn.get_mut());
        }
        let version = self.schema_version()?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::NewerSchema {
                found: version,
                supported,
            });
        }
        for (i, ddl) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let conn = self.conn.get_mut();
            let mut tx = conn.begin()?;
            tx.batch(ddl)?;
            if i + 1 == RELINK_AT && version > 0 {
                fill_uncovered(&mut tx)?;
                let mut g = graph::Graph::new(&mut tx, 1024);
                link::relink_all(&mut g, &self.trust)?;
            }
            tx.batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }

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
            let mut g = graph::Graph::new(&mut tx, records.len());
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

    /// Up to `limit` records of `chain`, as received, branch by branch in chain order, after
    /// `after` (the `(branch, position, id)` of the last row of the previous page). Paging
    /// keeps memory flat; branch order makes a fork one finding, not a trail of broken links.
    pub fn page_chain(
        &self,
        chain: &str,
        after: Option<(i64, i64, i64)>,
        limit: usize,
    ) -> Result<Vec<RawRow>, StoreError> {
        let (branch, pos, id) = after.unwrap_or((-1, -1, -1));
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
                    branch: r.opt_i64(0)?,
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
                    branch: None,
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
                        branch: None,
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
            Some(mut r) => r.opt_text(0),
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

/// A SQLite store must be an existing file for the commands that read one.
fn exists(location: &Location) -> Result<(), StoreError> {
    match location {
        Location::Sqlite(p) if !p.is_file() => Err(StoreError::NotReady(format!(
            "no store at {}",
            zt_core::text::escape(&p.display().to_string())
        ))),
        _ => Ok(()),
    }
}

/// Inserts one record and places it with the chain model; `false` when a record with its
/// `current_hash` was already stored (a retry, or a copy with other bytes: kept in
/// `record_copies`, and made the record when it is better).
fn insert_one<'a>(
    g: &mut graph::Graph<'_, 'a>,
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

/// Migration 3: the members each stored lineage record has outside its profile's hash.
fn fill_uncovered(conn: &mut Conn) -> Result<(), StoreError> {
    let rows = conn.query(
        "SELECT id, raw, profile FROM records WHERE profile != 'v1'",
        &[],
    )?;
    for mut r in rows {
        let (id, raw, profile) = (r.i64(0)?, r.blob(1)?, r.text(2)?);
        let (Ok(env), Some(p)) = (Envelope::from_json(&raw), Profile::from_name(&profile)) else {
            continue;
        };
        if let Some(u) = graph::encode_uncovered(&env.uncovered_members(p)) {
            conn.exec(
                "UPDATE records SET uncovered = ?1 WHERE id = ?2",
                args![&u, id],
            )?;
        }
    }
    Ok(())
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
    after: Option<(i64, i64, i64)>,
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
                .page_waiting(self.after.map_or(0, |a| a.2), PAGE)?,
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
            self.after = Some((r.branch.unwrap_or(-1), r.position.unwrap_or(-1), r.id));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(rel: &str) -> Vec<Vec<u8>> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(rel);
        std::fs::read(p)
            .unwrap()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn put(store: &mut Store, raws: &[Vec<u8>]) -> BatchOutcome {
        crate::testdb::insert(
            store,
            raws.iter().map(|r| (r.as_slice(), SigStatus::Verified)),
        )
    }

    fn positions(store: &Store, chain: &str) -> Vec<i64> {
        store
            .page_chain(chain, None, 1000)
            .unwrap()
            .into_iter()
            .map(|r| r.position.unwrap())
            .collect()
    }

    #[test]
    fn head_is_the_main_line_tip() {
        for (_d, mut s) in crate::testdb::stores() {
            assert_eq!(s.head("nope").unwrap(), None);
            let valid = lines("interop/zt-infra-full/valid.jsonl");
            put(&mut s, &valid);
            let chain = s.chains().unwrap()[0].chain.clone();
            let last = Envelope::from_json(valid.last().unwrap()).unwrap();
            assert_eq!(s.head(&chain).unwrap(), Some((11, last.current_hash)));
        }
    }

    #[test]
    fn in_order_then_duplicates_are_no_ops() {
        for (_d, mut s) in crate::testdb::stores() {
            let valid = lines("interop/zt-infra-full/valid.jsonl");
            let o = put(&mut s, &valid);
            assert_eq!(
                (o.inserted, o.duplicates, o.forks, o.waiting),
                (12, 0, 0, 0)
            );
            assert_eq!(s.count_records().unwrap(), 12);
            let again = put(&mut s, &valid);
            assert_eq!(again.duplicates, 12);
            assert_eq!(s.count_records().unwrap(), 12);
            let chains = s.chains().unwrap();
            assert_eq!(chains.len(), 1);
            assert!(chains[0].chain.starts_with("lineage-f2cd5d9e431f4aa4"));
            assert_eq!(positions(&s, &chains[0].chain), (0..12).collect::<Vec<_>>());
            // stored byte for byte
            assert_eq!(
                s.page_chain(&chains[0].chain, None, 1).unwrap()[0].raw,
                valid[0]
            );
        }
    }

    #[test]
    fn out_of_order_records_wait_then_link() {
        for (_d, mut s) in crate::testdb::stores() {
            let mut valid = lines("interop/zt-infra-full/valid.jsonl");
            valid.reverse();
            // one at a time, newest first: everything waits until the genesis arrives
            for (i, r) in valid.iter().enumerate() {
                let o = put(&mut s, std::slice::from_ref(r));
                if i < 11 {
                    assert_eq!(o.waiting, 1, "record {i}");
                } else {
                    assert_eq!(o.linked, 11);
                }
            }
            assert_eq!(s.count_waiting().unwrap(), 0);
            let c = &s.chains().unwrap()[0];
            assert_eq!(positions(&s, &c.chain), (0..12).collect::<Vec<_>>());
        }
    }

    #[test]
    fn forks_are_stored_and_flagged_never_overwritten() {
        for (_d, mut s) in crate::testdb::stores() {
            // One fork rule, the chain model's: the later claimant of a place the main line
            // holds is the fork; the record on the main line is not.
            let o = put(&mut s, &lines("interop/zt-infra-full/fork.jsonl"));
            assert_eq!(o.inserted, 9);
            assert_eq!(o.forks, 1);
            assert_eq!(s.count_forks().unwrap(), 1);
            let v1 = lines("v1/fork.jsonl");
            let o = put(&mut s, &v1);
            assert_eq!(o.forks, 1, "same predecessor and same seq: the later one");
        }
    }

    /// A store written under the old rule (both claimants flagged) opens with the model's
    /// flags: the main-line record and waiting ones are not forks.
    #[test]
    fn migration_6_clears_fork_flags_the_model_never_sets() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.db");
        {
            let mut s = Store::open(&path).unwrap();
            put(&mut s, &lines("v1/fork.jsonl"));
            let mut c = s.conn.borrow_mut();
            c.batch("UPDATE records SET fork = 1; PRAGMA user_version = 5")
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.count_forks().unwrap(), 1, "only the later claimant");
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    }

    #[test]
    fn v1_chains_and_lineage_restarts_are_separate_chains() {
        for (_d, mut s) in crate::testdb::stores() {
            put(&mut s, &lines("v1/valid.jsonl"));
            let names: Vec<String> = s.chains().unwrap().into_iter().map(|c| c.chain).collect();
            assert_eq!(names, ["cp-east", "cp-west"]);
            assert_eq!(
                s.count_forks().unwrap(),
                0,
                "both chains start at the zero hash: not a fork"
            );
            assert_eq!(positions(&s, "cp-east"), (0..6).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_sender_is_kept_beside_the_record_and_in_quarantine() {
        for (_d, mut s) in crate::testdb::stores() {
            let raws = lines("interop/zt-infra-full/valid.jsonl");
            let env = Envelope::from_json(&raws[0]).unwrap();
            let spiffe = "spiffe://td.test/exporter";
            s.insert_batch(
                &[NewRecord {
                    raw: &raws[0],
                    envelope: &env,
                    profile: env.detect_profile().unwrap(),
                    status: SigStatus::Verified,
                    source: "otlp",
                    sender: Some(spiffe),
                    received_at_ms: 0,
                }],
                &[Rejected {
                    raw: b"not json",
                    reason: "not JSON",
                    source: "otlp",
                    sender: Some(spiffe),
                    received_at_ms: 0,
                }],
            )
            .unwrap();
            assert_eq!(
                s.sender(&env.current_hash).unwrap().as_deref(),
                Some(spiffe)
            );
            let q: Option<String> = s
                .conn
                .borrow_mut()
                .query_one("SELECT sender FROM quarantine", &[])
                .unwrap()
                .opt_text(0)
                .unwrap();
            assert_eq!(q.as_deref(), Some(spiffe));
            // not part of the record: the verifier reads the same bytes
            assert_eq!(s.sender(&Hash32([7; 32])).unwrap(), None);
        }
    }

    #[test]
    fn quarantine_keeps_bytes_and_reason() {
        for (_d, mut s) in crate::testdb::stores() {
            let o = s
                .insert_batch(
                    &[],
                    &[Rejected {
                        raw: b"not json",
                        reason: "not JSON",
                        source: "test",
                        sender: None,
                        received_at_ms: 1,
                    }],
                )
                .unwrap();
            assert_eq!(o.quarantined, 1);
            let again = s
                .insert_batch(
                    &[],
                    &[Rejected {
                        raw: b"not json",
                        reason: "not JSON",
                        source: "retry",
                        sender: None,
                        received_at_ms: 2,
                    }],
                )
                .unwrap();
            assert_eq!(
                (again.quarantined, again.duplicates),
                (0, 1),
                "a retry is not a second row"
            );
            let q = s.page_quarantined(0, 10).unwrap();
            assert_eq!(
                (q[0].0.raw.as_slice(), q[0].1.as_str()),
                (&b"not json"[..], "not JSON")
            );
        }
    }

    #[test]
    fn jsonl_reader_pages_through_a_chain() {
        for (_d, mut s) in crate::testdb::stores() {
            let valid = lines("v1/valid.jsonl");
            put(&mut s, &valid);
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut s.jsonl(Selection::Chain("cp-west".into())),
                &mut text,
            )
            .unwrap();
            let got: Vec<&str> = text.lines().collect();
            let want: Vec<String> = valid
                .iter()
                .skip(1)
                .step_by(2)
                .map(|l| String::from_utf8(l.clone()).unwrap())
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let mut s = Store::open(&path).unwrap();
            put(&mut s, &lines("interop/zt-infra-full/valid.jsonl"));
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.count_records().unwrap(), 12);
    }

    /// A reader in a snapshot does not see what a writer commits meanwhile; after it, it does.
    #[test]
    fn a_snapshot_is_one_moment() {
        for (guard, mut writer) in crate::testdb::stores() {
            let valid = lines("v1/valid.jsonl");
            put(&mut writer, &valid[..4]);
            let reader = match &guard {
                crate::testdb::Guard::Dir(d) => Store::open(&d.path().join("t.db")).unwrap(),
                crate::testdb::Guard::Pg(db) => Store::open_read_only(db.location()).unwrap(),
            };
            let (before, during) = reader
                .in_snapshot(|| {
                    let before = reader.count_records().unwrap();
                    put(&mut writer, &valid[4..]);
                    (before, reader.count_records().unwrap())
                })
                .unwrap();
            assert_eq!((before, during), (4, 4));
            assert_eq!(reader.count_records().unwrap(), valid.len() as u64);
        }
    }
}
