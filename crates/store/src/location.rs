//! Where a store is: a SQLite file, or a PostgreSQL database (`postgres://USER@HOST:PORT/DB`).

use std::path::PathBuf;

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
pub(crate) fn redact(url: &str) -> String {
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
