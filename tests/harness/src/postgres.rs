//! PostgreSQL for tests: the server `ZT_TEST_POSTGRES` names (scripts/test.sh starts one with
//! `scripts/postgres.sh`), scratch databases on it, and servers of a test's own.

use std::path::PathBuf;
use std::process::Command;

use zt_store::ScratchDatabase;

/// The server's URL from `ZT_TEST_POSTGRES`; `None` when it is unset (said on stderr), and a
/// failure then when `ZT_REQUIRE_POSTGRES=1` (the suite sets it).
pub fn server_url() -> Option<String> {
    match std::env::var("ZT_TEST_POSTGRES") {
        Ok(s) if !s.is_empty() => Some(s),
        _ => {
            assert!(
                std::env::var("ZT_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ZT_REQUIRE_POSTGRES=1 but ZT_TEST_POSTGRES names no server"
            );
            eprintln!("ZT_TEST_POSTGRES is not set: PostgreSQL not tested");
            None
        }
    }
}

/// The server's URL from `ZT_TEST_POSTGRES`, which these tests need.
pub fn required_server_url() -> String {
    std::env::var("ZT_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "ZT_TEST_POSTGRES: the URL of a PostgreSQL server these tests may create \
                 databases on (scripts/test.sh starts one: scripts/postgres.sh start DIR)"
            )
        })
}

/// A new empty database `PREFIX_<pid>_<n>` on the `ZT_TEST_POSTGRES` server; dropped with it.
pub fn scratch(prefix: &str) -> ScratchDatabase {
    ScratchDatabase::create(&required_server_url(), prefix).unwrap()
}

/// A PostgreSQL server of the test's own (`scripts/postgres.sh`), stopped when dropped.
#[derive(Debug)]
pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let url = postgres_sh(&["start", crate::s(dir.path())]);
        PgServer { dir, url }
    }

    /// A streaming replica of the server in `primary_dir`.
    pub fn replica(primary_dir: &str) -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let url = postgres_sh(&["replica", crate::s(dir.path()), primary_dir]);
        PgServer { dir, url }
    }

    pub fn restart(&self) {
        postgres_sh(&["restart", crate::s(self.dir.path())]);
    }

    /// The URL of `other_url`'s database on this server.
    pub fn database(&self, other_url: &str) -> String {
        let name = other_url.rsplit('/').next().unwrap();
        let (host, _) = self.url.rsplit_once('/').unwrap();
        format!("{host}/{name}")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(crate::repo().join("scripts/postgres.sh"))
            .args(["stop", crate::s(self.dir.path())])
            .status();
    }
}

/// `scripts/postgres.sh ARGS`: what it printed (a URL), trimmed.
pub fn postgres_sh(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(crate::repo().join("scripts/postgres.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "postgres.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The folder of the PostgreSQL client programs (`pg_dump`, `psql`) of the newest version
/// installed.
pub fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_dump").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("PostgreSQL client programs (scripts/postgres.sh installs them)")
}
