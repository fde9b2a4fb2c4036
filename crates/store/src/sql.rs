//! The SQL edge: one connection type over the two engines the store runs on, SQLite
//! (embedded, the default) and PostgreSQL (many writers on many hosts).
//!
//! Every query of the store is written once, in the SQL both engines speak, with `?N`
//! parameters (rewritten to `$N` for PostgreSQL). Values cross this edge as [`P`] (parameters)
//! and [`SqlRow`] (results), so no other module names an engine's types; what differs between
//! the engines (schema DDL, locks, case-insensitive matching) is asked of [`Conn`] here.

use std::collections::HashMap;

use postgres::types::{FromSql, IsNull, ToSql, Type};
use zt_core::Hash32;

use crate::{hash_of, StoreError};

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
impl<'a, T: Into<P<'a>>> From<Option<T>> for P<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(P::Null, Into::into)
    }
}

/// `args![a, b, c]`: a parameter list.
macro_rules! args {
    ($($x:expr),* $(,)?) => { &[$($crate::sql::P::from($x)),*] };
}
pub(crate) use args;

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

    fn wrong(i: usize, want: &'static str) -> StoreError {
        StoreError::Column { column: i, want }
    }

    pub(crate) fn i64(&mut self, i: usize) -> Result<i64, StoreError> {
        self.opt_i64(i)?.ok_or(Self::wrong(i, "integer"))
    }

    pub(crate) fn opt_i64(&mut self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Int(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "integer")),
        }
    }

    pub(crate) fn bool(&mut self, i: usize) -> Result<bool, StoreError> {
        Ok(self.i64(i)? != 0)
    }

    pub(crate) fn text(&mut self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or(Self::wrong(i, "text"))
    }

    pub(crate) fn opt_text(&mut self, i: usize) -> Result<Option<String>, StoreError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Text(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "text")),
        }
    }

    pub(crate) fn blob(&mut self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(i)?.ok_or(Self::wrong(i, "bytes"))
    }

    pub(crate) fn opt_blob(&mut self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.take(i) {
            Val::Null => Ok(None),
            Val::Blob(v) => Ok(Some(v)),
            _ => Err(Self::wrong(i, "bytes")),
        }
    }

    pub(crate) fn hash(&mut self, i: usize) -> Result<Hash32, StoreError> {
        Ok(hash_of(&self.blob(i)?))
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
    pub(crate) fn new(url: &str, read_only: bool, client: postgres::Client) -> Self {
        Self {
            client: Some(client),
            statements: HashMap::new(),
            url: url.to_owned(),
            read_only,
            in_transaction: false,
        }
    }

    /// The client. A connection the server closed (a restart, a failover) is opened again
    /// between transactions, never inside one: a transaction that lost its connection fails
    /// whole, and its caller (an exporter's retry) sends it again.
    pub(crate) fn client(&mut self) -> Result<&mut postgres::Client, StoreError> {
        let closed = self.client.as_ref().is_none_or(postgres::Client::is_closed);
        if closed && !self.in_transaction {
            let fresh = crate::location::open_client(&self.url, self.read_only)?;
            if let Some(old) = self.client.replace(fresh) {
                blocking(move || drop(old));
            }
            self.statements.clear();
        }
        self.client
            .as_mut()
            .ok_or(StoreError::Lost("the connection is closed"))
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
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
pub(crate) static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
pub(crate) fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
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
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Postgres(_) => Engine::Postgres,
        }
    }

    /// Every row of a query.
    pub(crate) fn query(&mut self, sql: &str, args: &[P<'_>]) -> Result<Vec<SqlRow>, StoreError> {
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
                            .map_err(StoreError::from)
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
    ) -> Result<Option<SqlRow>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }

    /// The one row a query must return (an aggregate).
    pub(crate) fn query_one(&mut self, sql: &str, args: &[P<'_>]) -> Result<SqlRow, StoreError> {
        self.query_opt(sql, args)?.ok_or(StoreError::Column {
            column: 0,
            want: "a row",
        })
    }

    /// Runs a statement; the rows it changed.
    pub(crate) fn exec(&mut self, sql: &str, args: &[P<'_>]) -> Result<u64, StoreError> {
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
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
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
                            .ok_or(StoreError::Lost(
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
    /// take the locks [`Conn::lock`] names.
    pub(crate) fn begin(&mut self) -> Result<Tx<'_>, StoreError> {
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
    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        self.conn.batch("COMMIT")
    }

    /// A transaction-scoped advisory lock (PostgreSQL; SQLite has one writer at a time
    /// already). Shared or exclusive; released at commit or rollback.
    pub(crate) fn lock(&mut self, key: i64, shared: bool) -> Result<(), StoreError> {
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
