//! The control plane's own state in `state.db` (SQLite): registered agents (tokens kept as
//! SHA-256 only, and the SPIFFE ID each may be bound to), the applied policies, every policy-set version ever used (so an envelope's
//! `policy_version` can be resolved to its text), the chain id, and the export cursor.
//! Decisions themselves live in the evidence store (`decisions.db`, `zt-store`).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use zt_core::Hash32;

use crate::error::ControlPlaneError;
use crate::policy::{self, PolicyEntry};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    actor          TEXT PRIMARY KEY,
    token_sha256   BLOB NOT NULL UNIQUE,
    registered_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policies (
    ord         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    text        TEXT NOT NULL,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
    version     TEXT PRIMARY KEY,
    policies    TEXT NOT NULL,   -- JSON array of {id, text}
    first_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS export_cursor (
    endpoint    TEXT PRIMARY KEY,
    position    INTEGER NOT NULL
);
"#;

/// Changes after [`SCHEMA`], applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: an agent may be bound to a SPIFFE ID (mTLS with X.509-SVIDs); one agent per ID.
    r#"
ALTER TABLE agents ADD COLUMN spiffe_id TEXT;
CREATE UNIQUE INDEX agents_spiffe_id ON agents(spiffe_id) WHERE spiffe_id IS NOT NULL;
"#,
];

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its name, the envelope's `actor`.
    pub actor: String,
    /// SHA-256 of its bearer token.
    pub token_sha256: Hash32,
    /// The SPIFFE ID whose X.509-SVID speaks for it.
    pub spiffe_id: Option<String>,
}

/// `state.db`.
#[derive(Debug)]
pub struct State {
    conn: Connection,
}

fn now() -> String {
    zt_core::time::Timestamp::now().to_rfc3339_millis()
}

impl State {
    /// Opens or creates the state; a new state starts with the baseline policies.
    pub fn open(path: &Path) -> Result<Self, ControlPlaneError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(ControlPlaneError::Invalid(format!(
                "{} was written by a newer zt-audit (state schema {version}, this one knows {known})",
                path.display()
            )));
        }
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        let state = Self { conn };
        if state.meta("initialised")?.is_none() {
            let tx = state.conn.unchecked_transaction()?;
            for e in policy::baseline() {
                tx.execute(
                    "INSERT INTO policies (id, text, applied_at) VALUES (?1, ?2, ?3)",
                    params![e.id, e.text, now()],
                )?;
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('initialised', ?1)",
                [now()],
            )?;
            tx.commit()?;
        }
        Ok(state)
    }

    /// A `meta` value.
    pub fn meta(&self, key: &str) -> Result<Option<String>, ControlPlaneError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a `meta` value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// Every registered agent.
    pub fn agents(&self) -> Result<Vec<Agent>, ControlPlaneError> {
        let mut st = self
            .conn
            .prepare("SELECT actor, token_sha256, spiffe_id FROM agents ORDER BY actor")?;
        let rows = st
            .query_map([], |r| {
                let h: Vec<u8> = r.get(1)?;
                let mut b = [0u8; 32];
                if h.len() == 32 {
                    b.copy_from_slice(&h);
                }
                Ok(Agent {
                    actor: r.get(0)?,
                    token_sha256: Hash32(b),
                    spiffe_id: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Registers `actor` with the hash of its token, bound to `spiffe_id` when given.
    pub fn add_agent(
        &self,
        actor: &str,
        token_sha256: &Hash32,
        spiffe_id: Option<&str>,
    ) -> Result<(), ControlPlaneError> {
        if let Some(id) = spiffe_id {
            let bound: Option<String> = self
                .conn
                .query_row("SELECT actor FROM agents WHERE spiffe_id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(other) = bound {
                return Err(ControlPlaneError::SpiffeIdBound {
                    spiffe_id: id.to_owned(),
                    actor: other,
                });
            }
        }
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO agents (actor, token_sha256, registered_at, spiffe_id) \
             VALUES (?1, ?2, ?3, ?4)",
            params![actor, token_sha256.as_bytes().as_slice(), now(), spiffe_id],
        )?;
        if n == 0 {
            return Err(ControlPlaneError::AgentExists(actor.to_owned()));
        }
        Ok(())
    }

    /// The applied policies, in application order.
    pub fn policies(&self) -> Result<Vec<PolicyEntry>, ControlPlaneError> {
        let mut st = self
            .conn
            .prepare("SELECT id, text FROM policies ORDER BY ord")?;
        let rows = st
            .query_map([], |r| {
                Ok(PolicyEntry {
                    id: r.get(0)?,
                    text: r.get(1)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Replaces the applied set (one transaction) and records its version's text.
    pub fn set_policies(
        &self,
        entries: &[PolicyEntry],
        version: &str,
    ) -> Result<(), ControlPlaneError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM policies", [])?;
        for e in entries {
            tx.execute(
                "INSERT INTO policies (id, text, applied_at) VALUES (?1, ?2, ?3)",
                params![e.id, e.text, now()],
            )?;
        }
        Self::record_version_in(&tx, entries, version)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a version's text (no-op when known).
    pub fn record_version(
        &self,
        entries: &[PolicyEntry],
        version: &str,
    ) -> Result<(), ControlPlaneError> {
        Self::record_version_in(&self.conn, entries, version)
    }

    fn record_version_in(
        conn: &Connection,
        entries: &[PolicyEntry],
        version: &str,
    ) -> Result<(), ControlPlaneError> {
        let doc = serde_json::Value::Array(
            entries
                .iter()
                .map(|e| serde_json::json!({"id": e.id, "text": e.text}))
                .collect(),
        );
        conn.execute(
            "INSERT OR IGNORE INTO policy_versions (version, policies, first_at) VALUES (?1, ?2, ?3)",
            params![version, doc.to_string(), now()],
        )?;
        Ok(())
    }

    /// The policies of a recorded version, as JSON text.
    pub fn version_text(&self, version: &str) -> Result<Option<String>, ControlPlaneError> {
        Ok(self
            .conn
            .query_row(
                "SELECT policies FROM policy_versions WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The last chain position exported to `endpoint` (-1: none).
    pub fn export_cursor(&self, endpoint: &str) -> Result<i64, ControlPlaneError> {
        Ok(self
            .conn
            .query_row(
                "SELECT position FROM export_cursor WHERE endpoint = ?1",
                [endpoint],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(-1))
    }

    /// Moves the export cursor.
    pub fn set_export_cursor(
        &self,
        endpoint: &str,
        position: i64,
    ) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "INSERT INTO export_cursor (endpoint, position) VALUES (?1, ?2) \
             ON CONFLICT(endpoint) DO UPDATE SET position = ?2",
            params![endpoint, position],
        )?;
        Ok(())
    }
}
