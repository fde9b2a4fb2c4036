//! The store itself: where it is, opening it (created and migrated as needed, or read-only
//! for the readers), session settings, leadership, snapshots. Writing is `write.rs`, reading
//! `read.rs`, the browser's queries `browse.rs`, anchoring's `anchor.rs`.

use std::cell::RefCell;
use std::path::Path;

use zt_core::chain::TrustPolicy;

use crate::error::StoreError;
use crate::location::Location;
use crate::sql::{self, Conn, Engine};
use crate::types::PostgresStats;
use crate::{pgschema, schema};

/// The store.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: RefCell<Conn>,
    pub(crate) trust: TrustPolicy,
    location: Location,
}

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
                    return Err(StoreError::NotMigrated {
                        location: location.clone(),
                        found,
                        supported,
                    });
                }
                Ok(store)
            }
        }
    }

    fn raw(location: &Location, read_only: bool) -> Result<Self, StoreError> {
        Ok(Self {
            conn: RefCell::new(Conn::open(location, read_only)?),
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
        Ok(self.conn.borrow_mut().set_busy_timeout(timeout)?)
    }

    /// Sets `PRAGMA synchronous` (`FULL` by default; `NORMAL` trades the last commits on power
    /// loss for speed). PostgreSQL: `synchronous_commit` `on` / `off`.
    pub fn set_synchronous(&self, full: bool) -> Result<(), StoreError> {
        Ok(self.conn.borrow_mut().set_synchronous(full)?)
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
        Ok(c.query_one(
            "SELECT pg_try_advisory_lock(?1)::int",
            args![sql::lock_key("leader", role)],
        )?
        .bool(0)?)
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

    /// The schema version of the store (SQLite's `user_version`, PostgreSQL's `zt_schema`).
    pub(crate) fn schema_version(&self) -> Result<i64, StoreError> {
        let mut c = self.conn.borrow_mut();
        match c.user_version()? {
            Some(v) => Ok(v),
            None => pgschema::version(&mut c),
        }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let conn = self.conn.get_mut();
        match conn.engine() {
            Engine::Postgres => pgschema::migrate(conn),
            Engine::Sqlite => schema::migrate(conn, &self.trust),
        }
    }
}

/// A SQLite store must be an existing file for the commands that read one.
fn exists(location: &Location) -> Result<(), StoreError> {
    match location {
        Location::Sqlite(p) if !p.is_file() => Err(StoreError::NoStore { path: p.clone() }),
        _ => Ok(()),
    }
}
