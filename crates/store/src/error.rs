//! The store's errors: the database failed (or answered what this build cannot read), or it
//! is not a store this version can use. What an engine said is kept as the source
//! ([`DbError`], from `sql.rs`, the only module that names an engine's types).

use std::path::PathBuf;

use crate::location::Location;
use crate::sql::DbError;

/// Store errors: the database said no, or it is not a store this version can use.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed, or answered something this build never writes.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database was written by a newer zt-audit.
    #[error("store schema version {found} is newer than this zt-audit supports ({supported})")]
    NewerSchema {
        /// Schema version found.
        found: i64,
        /// Highest this build knows.
        supported: i64,
    },
    /// There is no SQLite store at the path (a command that reads a store never creates one).
    #[error("no store at {}", zt_core::text::escape(&.path.display().to_string()))]
    NoStore {
        /// Where one was expected.
        path: PathBuf,
    },
    /// A read-only connection (a replica) found no store, or an older one it cannot migrate.
    #[error(
        "{location} holds no zt-audit store of schema {supported} (found {found}): \
         open it once read-write (serve, import) on the primary"
    )]
    NotMigrated {
        /// The database (shown without its password).
        location: Location,
        /// Schema version found (0: none).
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
}
