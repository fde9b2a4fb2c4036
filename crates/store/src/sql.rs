//! The SQL edge: one connection type over the two engines the store runs on, SQLite
//! (embedded, the default) and PostgreSQL (many writers on many hosts). This is the only
//! module that names an engine's types (`rusqlite`, `postgres`, the PostgreSQL TLS connector).
//!
//! Every query of the store is written once, in the SQL both engines speak, with `?N`
//! parameters (rewritten to `$N` for PostgreSQL). Values cross this edge as [`P`] (parameters)
//! and [`SqlRow`] (results), and typed columns turn into their types here ([`SqlRow::hash`],
//! [`SqlRow::status`], [`SqlRow::line`]); what differs between the engines (opening a
//! connection, session settings, schema DDL, locks, case-insensitive matching) is asked of
//! [`Conn`] here. Errors are [`DbError`], with the engine's own error as the source.

use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use zt_core::chain::SigStatus;
use zt_core::Hash32;

use crate::location::{redact, Location};
use crate::types::Line;

/// What the database failed at, or answered that this build cannot read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed. (Boxed: SQLite's error is large, and every result of the store carries
    /// this type.)
    #[error("SQLite: {0}")]
    Sqlite(#[source] Box<rusqlite::Error>),
    /// PostgreSQL failed (or could not be reached): the server's own words when it answered,
    /// else the client's error and its causes.
    #[error("PostgreSQL: {}", describe_postgres(.0))]
    Postgres(postgres::Error),
    /// The PostgreSQL session ended under a transaction: nothing of it was committed.
    #[error("PostgreSQL: {0}")]
    Lost(&'static str),
    /// The PostgreSQL URL cannot be used.
    #[error("PostgreSQL URL {url}")]
    Url {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: postgres::Error,
    },
    /// The TLS configuration of a PostgreSQL connection cannot be built (from `zt-tls`).
    #[error(transparent)]
    Tls(Box<zt_tls::TlsError>),
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
}

impl From<zt_tls::TlsError> for DbError {
    fn from(e: zt_tls::TlsError) -> Self {
        DbError::Tls(Box::new(e))
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(Box::new(e))
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
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

/// A 32-byte hash column (anything else reads as zeros, which no record has): the SQL edge of
/// [`Hash32`], for every SQLite file of zt-audit (the control plane's `state.db` too).
pub fn hash_of(v: &[u8]) -> Hash32 {
    let mut b = [0u8; 32];
    if v.len() == 32 {
        b.copy_from_slice(v);
    }
    Hash32(b)
}

/// A query parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum P<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
    Bool(bool),
    /// A `bytea[]` (PostgreSQL only: `= ANY(?N)`).
    Hashes(&'a [Hash32]),
}

impl From<i64> for P<'_> {
    fn from(v: i64) -> Self {
        P::Int(v)
    }
}
impl From<bool> for P<'_> {
    fn from(v: bool) -> Self {
        P::Bool(v)
    }
}
impl<'a> From<&'a str> for P<'a> {
    fn from(v: &'a str) -> Self {
        P::Text(v)
    }
}
impl<'a> From<&'a String> for P<'a> {
    fn from(v: &'a String) -> Self {
        P::Text(v)
    }
}
impl<'a> From<&'a [u8]> for P<'a> {
    fn from(v: &'a [u8]) -> Self {
        P::Blob(v)
    }
}
impl<'a> From<&'a Vec<u8>> for P<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        P::Blob(v)
    }
}
impl<'a> From<&'a Hash32> for P<'a> {
    fn from(v: &'a Hash32) -> Self {
        P::Blob(v.as_bytes())
    }
}
impl From<Line> for P<'_> {
    fn from(v: Line) -> Self {
        P::Int(v.to_column())
    }
}
impl<'a, T: Into<P<'a>>> From<Option<T>> for P<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(P::Null, Into::into)
    }
}

/// `args![a, b, c]`: a parameter list. (In scope in every module declared after `sql` in
/// `lib.rs`, which holds it `#[macro_use]`.)
macro_rules! args {
    ($($x:expr),* $(,)?) => { &[$($crate::sql::P::from($x)),*] };
}

/// A result value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Val {
    #[default]
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row; getters move values out (a column is read once).
#[derive(Debug)]
pub(crate) struct SqlRow(Vec<Val>);

impl SqlRow {
    fn take(&mut self, i: usize) -> Val {
        self.0.get_mut(i).map_or(Val::Null, std::mem::take)
    }

    fn wrong(i: usize, want: &'static str) -> DbError {
        DbError::Column { column: i, want }
    }

    pub(crate) fn i64(&mut self, i: usize) -> Result<i64, DbError> {
        self.opt_i64(i)?.ok_or(Self::wrong(i, "integer"))
    }

    pub(crate) fn opt_i64(&mut self, i: usize) -> Result<Option<i64>, DbError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "integer")),
        }
    }

    pub(crate) fn bool(&mut self, i: usize) -> Result<bool, DbError> {
        Ok(self.i64(i)? != 0)
    }

    pub(crate) fn text(&mut self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or(Self::wrong(i, "text"))
    }

    pub(crate) fn opt_text(&mut self, i: usize) -> Result<Option<String>, DbError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "text")),
        }
    }

    pub(crate) fn blob(&mut self, i: usize) -> Result<Vec<u8>, DbError> {
        self.opt_blob(i)?.ok_or(Self::wrong(i, "bytes"))
    }

    pub(crate) fn opt_blob(&mut self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Blob(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "bytes")),
        }
    }

    pub(crate) fn hash(&mut self, i: usize) -> Result<Hash32, DbError> {
        Ok(hash_of(&self.blob(i)?))
    }

    /// A `status` column: the SQL edge of [`SigStatus`].
    pub(crate) fn status(&mut self, i: usize) -> Result<SigStatus, DbError> {
        let s = self.text(i)?;
        s.parse().map_err(|_| DbError::Status(s))
    }

    /// A `branch` column: the SQL edge of [`Line`] (`None`: waiting).
    pub(crate) fn line(&mut self, i: usize) -> Result<Option<Line>, DbError> {
        Ok(Line::from_column(self.opt_i64(i)?))
    }
}

/// Which engine a connection speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sqlite,
    Postgres,
}

/// A connection to either engine.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Sqlite(_) => "Conn::Sqlite",
            Conn::Postgres(_) => "Conn::Postgres",
        })
    }
}

/// A PostgreSQL client and its prepared statements (one round trip each to prepare, so each
/// query is prepared once per connection).
pub(crate) struct Pg {
    // Always `Some` but while dropping: the client's own drop blocks on its runtime, so it is
    // taken out and dropped through [`blocking`].
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
    url: String,
    read_only: bool,
    in_transaction: bool,
}

impl Pg {
    /// Connects to PostgreSQL; `read_only`: every transaction of the session is read-only.
    fn connect(url: &str, read_only: bool) -> Result<Self, DbError> {
        Ok(Self {
            client: Some(open_client(url, read_only)?),
            statements: HashMap::new(),
            url: url.to_owned(),
            read_only,
            in_transaction: false,
        })
    }

    /// The client. A connection the server closed (a restart, a failover) is opened again
    /// between transactions, never inside one: a transaction that lost its connection fails
    /// whole, and its caller (an exporter's retry) sends it again.
    pub(crate) fn client(&mut self) -> Result<&mut postgres::Client, DbError> {
        let closed = self.client.as_ref().is_none_or(postgres::Client::is_closed);
        if closed && !self.in_transaction {
            let fresh = open_client(&self.url, self.read_only)?;
            if let Some(old) = self.client.replace(fresh) {
                blocking(move || drop(old));
            }
            self.statements.clear();
        }
        self.client
            .as_mut()
            .ok_or(DbError::Lost("the connection is closed"))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = dollars(sql);
        let client = self.client()?;
        let st = blocking(|| client.prepare(&text))?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            blocking(move || drop(c));
        }
    }
}

/// Statements this process has sent to PostgreSQL (every store), for the cost per envelope
/// the benchmark reports.
static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Statements this process has sent to PostgreSQL so far, every store together (0 on SQLite):
/// what a receiver costs the database, per envelope (`zt_ingest_store_statements_total`).
pub fn postgres_statements() -> u64 {
    STATEMENTS.load(std::sync::atomic::Ordering::Relaxed)
}

fn counted() {
    STATEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// `?N` to `$N` (no query of the store has a `?` in a literal).
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

/// Runs a blocking PostgreSQL call. The synchronous client drives its own runtime, which may
/// not be started inside another: on a multi-threaded runtime the call leaves it for the
/// duration (`block_in_place`); on a single-threaded one it runs on a scoped thread.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| {
            s.spawn(f)
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        }),
    }
}

impl Conn {
    /// Opens a connection to the store at `location`. SQLite: the file (created when
    /// missing), in WAL mode with `synchronous=FULL`; PostgreSQL: a session, read-only when
    /// asked (a streaming replica serves it).
    pub(crate) fn open(location: &Location, read_only: bool) -> Result<Self, DbError> {
        Ok(match location {
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
            Location::Postgres(url) => Conn::Postgres(Box::new(Pg::connect(url, read_only)?)),
        })
    }

    /// How long a write waits for another connection's lock before failing (PostgreSQL:
    /// `lock_timeout`).
    pub(crate) fn set_busy_timeout(&mut self, timeout: std::time::Duration) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(c) => Ok(c.busy_timeout(timeout)?),
            c @ Conn::Postgres(_) => {
                c.batch(&format!("SET lock_timeout = {}", timeout.as_millis()))
            }
        }
    }

    /// `PRAGMA synchronous` `FULL` or `NORMAL`; PostgreSQL: `synchronous_commit` `on` / `off`.
    pub(crate) fn set_synchronous(&mut self, full: bool) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(c) => {
                Ok(c.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?)
            }
            c @ Conn::Postgres(_) => c.batch(if full {
                "SET synchronous_commit = on"
            } else {
                "SET synchronous_commit = off"
            }),
        }
    }

    /// SQLite's `PRAGMA user_version` (`None` on PostgreSQL, whose schema version is a table:
    /// `pgschema.rs`).
    pub(crate) fn user_version(&mut self) -> Result<Option<i64>, DbError> {
        match self {
            Conn::Sqlite(c) => Ok(Some(
                c.pragma_query_value(None, "user_version", |r| r.get(0))?,
            )),
            Conn::Postgres(_) => Ok(None),
        }
    }

    /// SQLite's query plan of `sql` (`EXPLAIN QUERY PLAN`, every parameter bound to 1), one
    /// line a step.
    #[cfg(test)]
    pub(crate) fn sqlite_plan(&mut self, sql: &str) -> Result<Vec<String>, DbError> {
        let Conn::Sqlite(conn) = self else {
            return Err(DbError::Column {
                column: 0,
                want: "a SQLite connection",
            });
        };
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let n = st.parameter_count();
        let args: Vec<rusqlite::types::Value> =
            (0..n).map(|_| rusqlite::types::Value::Integer(1)).collect();
        let plan = st
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))?
            .collect::<Result<_, _>>()?;
        Ok(plan)
    }

    pub(crate) fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
        }
    }

    /// Every row of a query.
    pub(crate) fn query(&mut self, sql: &str, args: &[P<'_>]) -> Result<Vec<SqlRow>, DbError> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(match r.get_ref(i)? {
                            rusqlite::types::ValueRef::Null => Val::Null,
                            rusqlite::types::ValueRef::Integer(v) => Val::Int(v),
                            rusqlite::types::ValueRef::Real(v) => Val::Int(v as i64),
                            rusqlite::types::ValueRef::Text(t) => {
                                Val::Text(String::from_utf8_lossy(t).into_owned())
                            }
                            rusqlite::types::ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                        });
                    }
                    out.push(SqlRow(vals));
                }
                Ok(out)
            }
            Conn::Postgres(pg) => {
                let st = pg.statement(sql)?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
                let client = pg.client()?;
                counted();
                let rows = blocking(|| client.query(&st, &refs))?;
                rows.into_iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| r.try_get::<_, Val>(i))
                            .collect::<Result<Vec<_>, _>>()
                            .map(SqlRow)
                            .map_err(DbError::from)
                    })
                    .collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        args: &[P<'_>],
    ) -> Result<Option<SqlRow>, DbError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The one row a query must return (an aggregate).
    pub(crate) fn query_one(&mut self, sql: &str, args: &[P<'_>]) -> Result<SqlRow, DbError> {
        self.query_opt(sql, args)?.ok_or(DbError::Column {
            column: 0,
            want: "a row",
        })
    }

    /// Runs a statement; the rows it changed.
    pub(crate) fn exec(&mut self, sql: &str, args: &[P<'_>]) -> Result<u64, DbError> {
        match self {
            Conn::Sqlite(c) => {
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args.iter()))?;
                Ok(n as u64)
            }
            Conn::Postgres(pg) => {
                let st = pg.statement(sql)?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
                let client = pg.client()?;
                counted();
                Ok(blocking(|| client.execute(&st, &refs))?)
            }
        }
    }

    /// Runs statements without parameters (DDL, transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => {
                if matches!(sql, "COMMIT" | "ROLLBACK") {
                    // On the transaction's own connection: a COMMIT sent on a new one would
                    // "succeed" with nothing to commit.
                    pg.in_transaction = false;
                    let client =
                        pg.client
                            .as_mut()
                            .filter(|c| !c.is_closed())
                            .ok_or(DbError::Lost(
                            "the connection was lost during the transaction: nothing was committed",
                        ))?;
                    counted();
                    return Ok(blocking(|| client.batch_execute(sql))?);
                }
                let client = pg.client()?;
                counted();
                blocking(|| client.batch_execute(sql))?;
                if sql.starts_with("BEGIN") {
                    pg.in_transaction = true;
                }
                Ok(())
            }
        }
    }

    /// Starts a write transaction. SQLite takes its write lock now (`IMMEDIATE`), so a
    /// transaction that reads before it writes never fails to upgrade; PostgreSQL's writers
    /// take the locks [`Tx::lock`] names.
    pub(crate) fn begin(&mut self) -> Result<Tx<'_>, DbError> {
        self.batch(match self.engine() {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        })?;
        Ok(Tx {
            conn: self,
            open: true,
        })
    }

    /// `LIKE` that ignores ASCII case, as SQLite's does.
    pub(crate) fn like(&self) -> &'static str {
        match self.engine() {
            Engine::Sqlite => "LIKE",
            Engine::Postgres => "ILIKE",
        }
    }
}

/// An open transaction; rolled back when dropped uncommitted.
pub(crate) struct Tx<'c> {
    conn: &'c mut Conn,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), DbError> {
        self.open = false;
        self.conn.batch("COMMIT")
    }

    /// A transaction-scoped advisory lock (PostgreSQL; SQLite has one writer at a time
    /// already). Shared or exclusive; released at commit or rollback.
    pub(crate) fn lock(&mut self, key: i64, shared: bool) -> Result<(), DbError> {
        if self.conn.engine() == Engine::Postgres {
            let sql = if shared {
                "SELECT pg_advisory_xact_lock_shared(?1)::text"
            } else {
                "SELECT pg_advisory_xact_lock(?1)::text"
            };
            self.conn.query(sql, args![key])?;
        }
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // The error that made us leave is the one worth reporting.
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

/// An advisory lock key for a name: the first 8 bytes of its SHA-256, in a namespace.
pub(crate) fn lock_key(namespace: &str, name: &str) -> i64 {
    let h = Hash32::digest(format!("zt-audit/{namespace}/{name}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_be_bytes(b)
}

/// A new PostgreSQL session: connected, named, read-only when asked.
fn open_client(url: &str, read_only: bool) -> Result<postgres::Client, DbError> {
    use postgres::config::SslMode;
    let config: postgres::Config = url.parse().map_err(|source| DbError::Url {
        url: redact(url),
        source,
    })?;
    let client = match config.get_ssl_mode() {
        SslMode::Disable | SslMode::Prefer => blocking(|| config.connect(postgres::NoTls))?,
        _ => {
            let tls = tls()?;
            blocking(|| config.connect(tls))?
        }
    };
    let mut client = client;
    // Plans per execution, with the parameters and the table as they are now: a generic plan
    // cached while `records` was empty stays a sequential scan as it grows (seen: 64-key reads
    // taking 50 ms on 40,000 records).
    let mut session =
        String::from("SET application_name = 'zt-audit'; SET plan_cache_mode = force_custom_plan");
    if read_only {
        session.push_str("; SET default_transaction_read_only = on");
    }
    let c = &mut client;
    blocking(|| c.batch_execute(&session))?;
    Ok(client)
}

/// The connector for `sslmode=require` and stricter: `zt-tls`'s client configuration with
/// the system's roots and `PGSSLROOTCERT`'s CAs (when set); the server's certificate is always
/// verified.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, DbError> {
    let extra = std::env::var_os("PGSSLROOTCERT").map(std::path::PathBuf::from);
    let config = zt_tls::client::system_roots_and("PGSSLROOTCERT", extra.as_deref())?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Creates the database `name` on the server of `server_url`.
pub(crate) fn create_database(server_url: &str, name: &str) -> Result<(), DbError> {
    let mut pg = Pg::connect(server_url, false)?;
    let c = pg.client()?;
    blocking(|| c.batch_execute(&format!("CREATE DATABASE \"{name}\"")))?;
    Ok(())
}

/// Drops the database `name` on the server of `server_url`, sessions and all; best effort.
pub(crate) fn drop_database(server_url: &str, name: &str) {
    if let Ok(mut pg) = Pg::connect(server_url, false) {
        let Ok(c) = pg.client() else { return };
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = blocking(|| c.batch_execute(&sql));
    }
}

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            P::Null => ValueRef::Null,
            P::Int(v) => ValueRef::Integer(v),
            P::Bool(v) => ValueRef::Integer(i64::from(v)),
            P::Text(v) => ValueRef::Text(v.as_bytes()),
            P::Blob(v) => ValueRef::Blob(v),
            P::Hashes(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "arrays are PostgreSQL parameters".into(),
                ))
            }
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

fn mismatch(p: &P<'_>, ty: &Type) -> BoxError {
    format!("cannot send {p:?} as {ty}").into()
}

impl ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, BoxError> {
        let int =
            |v: i64, out: &mut postgres::types::private::BytesMut| -> Result<IsNull, BoxError> {
                match *ty {
                    Type::INT8 => v.to_sql(ty, out),
                    Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                    Type::BOOL => (v != 0).to_sql(ty, out),
                    _ => Err(mismatch(self, ty)),
                }
            };
        match *self {
            P::Null => Ok(IsNull::Yes),
            P::Int(v) => int(v, out),
            P::Bool(v) if *ty == Type::BOOL => v.to_sql(ty, out),
            P::Bool(v) => int(i64::from(v), out),
            P::Text(v) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    v.to_sql(ty, out)
                }
                _ => Err(mismatch(self, ty)),
            },
            P::Blob(v) if *ty == Type::BYTEA => v.to_sql(ty, out),
            P::Blob(_) => Err(mismatch(self, ty)),
            P::Hashes(h) if *ty == Type::BYTEA_ARRAY => h
                .iter()
                .map(|h| h.as_bytes().as_slice())
                .collect::<Vec<&[u8]>>()
                .to_sql(ty, out),
            P::Hashes(_) => Err(mismatch(self, ty)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Val {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Val::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Val::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Val::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Val::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::BYTEA => Val::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                Val::Text(String::from_sql(ty, raw)?)
            }
            _ => return Err(format!("unexpected column type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Val::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
