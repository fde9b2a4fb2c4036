//! Where a store is: a SQLite file, or a PostgreSQL database (`postgres://USER@HOST:PORT/DB`).

use std::path::PathBuf;

use crate::sql::Pg;
use crate::StoreError;

/// Where a store is. Parsed from a command line's `--db`: a `postgres://` or `postgresql://`
/// URL is a PostgreSQL database, anything else a SQLite file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (libpq's URL form; `sslmode=require` or stricter: TLS,
    /// server certificate verified against the system's roots, or `PGSSLROOTCERT`).
    Postgres(String),
}

impl Location {
    /// The location `--db` names.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Location::Postgres(s.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    /// The SQLite file, if it is one.
    pub fn as_path(&self) -> Option<&std::path::Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Location::parse(s))
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Sqlite(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Sqlite(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Self {
        l.clone()
    }
}

impl From<&std::path::Path> for Location {
    fn from(p: &std::path::Path) -> Self {
        Location::Sqlite(p.to_path_buf())
    }
}

/// Shown without the password (logs and messages name the store, never its secret).
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`; a `password=` query
/// parameter likewise.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let path: Vec<String> = path
        .split('&')
        .map(|kv| match kv.split_once("password=") {
            Some((before, _)) => format!("{before}password=***"),
            None => kv.to_owned(),
        })
        .collect();
    format!("{scheme}://{authority}{}", path.join("&"))
}

/// Connects to PostgreSQL; `read_only`: every transaction of the session is read-only.
pub(crate) fn connect_postgres(url: &str, read_only: bool) -> Result<Pg, StoreError> {
    Ok(Pg::new(url, read_only, open_client(url, read_only)?))
}

/// A new session: connected, named, read-only when asked.
pub(crate) fn open_client(url: &str, read_only: bool) -> Result<postgres::Client, StoreError> {
    use postgres::config::SslMode;
    let config: postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Config(format!("{}: {e}", redact(url))))?;
    let client = match config.get_ssl_mode() {
        SslMode::Disable | SslMode::Prefer => {
            crate::sql::blocking(|| config.connect(postgres::NoTls))?
        }
        _ => {
            let tls = tls()?;
            crate::sql::blocking(|| config.connect(tls))?
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
    crate::sql::blocking(|| c.batch_execute(&session))?;
    Ok(client)
}

/// rustls with the system's roots (and `PGSSLROOTCERT`, when set); the server's certificate
/// is always verified.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if let Some(path) = std::env::var_os("PGSSLROOTCERT") {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(&path).map_err(|e| {
            StoreError::Config(format!("PGSSLROOTCERT {}: {e}", path.to_string_lossy()))
        })?;
        for c in certs.flatten() {
            let _ = roots.add(c);
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_passwords_never_shown() {
        assert!(Location::parse("postgres://zt@127.0.0.1:5432/audit").is_postgres());
        assert!(Location::parse("postgresql://zt@h/db").is_postgres());
        assert_eq!(
            Location::parse("audit.db"),
            Location::Sqlite(PathBuf::from("audit.db"))
        );
        let l = Location::parse("postgres://zt:s3cret@db.example:5432/audit?sslmode=require");
        assert_eq!(
            l.to_string(),
            "postgres://zt:***@db.example:5432/audit?sslmode=require"
        );
        let l = Location::parse("postgres://zt@h/audit?password=s3cret&sslmode=disable");
        assert!(!l.to_string().contains("s3cret"), "{l}");
    }
}

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
        let mut pg = connect_postgres(server_url, false)?;
        let c = pg.client()?;
        crate::sql::blocking(|| c.batch_execute(&format!("CREATE DATABASE \"{name}\"")))?;
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
        if let Ok(mut pg) = connect_postgres(&self.server_url, false) {
            let Ok(c) = pg.client() else { return };
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            let _ = crate::sql::blocking(|| c.batch_execute(&sql));
        }
    }
}
