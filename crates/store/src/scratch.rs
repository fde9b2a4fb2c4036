//! Throwaway PostgreSQL databases for tests and benchmarks: each gets a store of its own on
//! one server.

use crate::error::StoreError;
use crate::location::Location;
use crate::sql;

/// A new, empty PostgreSQL database on the server of `server_url`, dropped when this is
/// dropped: for tests and benchmarks (each gets a store of its own on one server).
#[derive(Debug)]
pub struct ScratchDatabase {
    server_url: String,
    name: String,
    location: Location,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<pid>_<n>` on the server of `server_url` (a URL of any database there
    /// that the user may create databases from).
    pub fn create(server_url: &str, prefix: &str) -> Result<Self, StoreError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sql::create_database(server_url, &name)?;
        let (base, query) = match server_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (server_url, String::new()),
        };
        let (host, _db) = base.rsplit_once('/').unwrap_or((base, ""));
        let location = Location::Postgres(format!("{host}/{name}{query}"));
        Ok(Self {
            server_url: server_url.to_owned(),
            name,
            location,
        })
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Its URL.
    pub fn url(&self) -> String {
        match &self.location {
            Location::Postgres(u) => u.clone(),
            Location::Sqlite(p) => p.display().to_string(),
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        sql::drop_database(&self.server_url, &self.name);
    }
}
