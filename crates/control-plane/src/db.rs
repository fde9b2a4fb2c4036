//! The control plane's own state in `state.db` (SQLite); the one module of the control plane
//! that speaks SQL (the only one naming `rusqlite`). It holds registered agents (tokens kept as
//! SHA-256 only, with their expiry, and the SPIFFE ID each may be bound to; revoked agents
//! stay, marked), every token retired by a rotation or a revocation (so a request with one is
//! refused naming why), the applied policies, every policy-set version ever used (so an
//! envelope's `policy_version` can be resolved to its text), the chain id, and the export
//! cursor. Decisions themselves live in the evidence store (`decisions.db`, `zt-store`).
//!
//! Schema versions follow `PRAGMA user_version`; [`State::open`] migrates older files in one
//! transaction each step. 0: the first release. 1: token expiry, revocation, retired tokens.
//! 2: an agent's SPIFFE ID (mTLS with X.509-SVIDs), one agent per ID. 3: capabilities (issued,
//! revoked) and the allow decisions made under them (what an execution report must name).
//! 4: execution brokers (their keys and tokens), and, per allow made under a capability, the
//! grants it sealed and the attested execution record that used it up.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use zt_core::Hash32;

use crate::error::ControlPlaneError;
use crate::policy::{self, PolicyEntry};

/// SQLite's errors cross out of this module as [`ControlPlaneError::State`], their source kept:
/// no other module names `rusqlite`.
impl From<rusqlite::Error> for ControlPlaneError {
    fn from(e: rusqlite::Error) -> Self {
        Self::State(Box::new(e))
    }
}

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

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Each step from version `i` to `i + 1`, in order.
const MIGRATIONS: [&str; 4] = [
    r#"
ALTER TABLE agents ADD COLUMN token_expires_at_ms INTEGER;   -- NULL: never
ALTER TABLE agents ADD COLUMN revoked_at TEXT;               -- NULL: active
CREATE TABLE IF NOT EXISTS retired_tokens (
    token_sha256   BLOB PRIMARY KEY,
    actor          TEXT NOT NULL,
    why            TEXT NOT NULL CHECK (why IN ('rotated', 'revoked')),
    retired_at     TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE agents ADD COLUMN spiffe_id TEXT;
CREATE UNIQUE INDEX agents_spiffe_id ON agents(spiffe_id) WHERE spiffe_id IS NOT NULL;
"#,
    r#"
CREATE TABLE IF NOT EXISTS capabilities (
    id            TEXT PRIMARY KEY,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource      TEXT NOT NULL,
    grants        TEXT NOT NULL,      -- JSON, as issued
    issued_at     TEXT NOT NULL,
    not_after_ms  INTEGER NOT NULL,
    revoked_at    TEXT                -- NULL: not revoked
);
CREATE TABLE IF NOT EXISTS capability_uses (
    decision      BLOB PRIMARY KEY,   -- the allow's current_hash
    capability    TEXT NOT NULL REFERENCES capabilities(id),
    actor         TEXT NOT NULL,
    resource      TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE IF NOT EXISTS brokers (
    name           TEXT PRIMARY KEY,
    key_id         TEXT NOT NULL,
    public_key     TEXT NOT NULL,      -- hex SEC1 uncompressed P-256
    token_sha256   BLOB NOT NULL UNIQUE,
    spiffe_id      TEXT,
    registered_at  TEXT NOT NULL,
    revoked_at     TEXT                -- NULL: active
);
CREATE UNIQUE INDEX brokers_spiffe_id ON brokers(spiffe_id) WHERE spiffe_id IS NOT NULL AND revoked_at IS NULL;
ALTER TABLE capability_uses ADD COLUMN grants TEXT;     -- JSON, as sealed in the allow (NULL: made before version 4)
ALTER TABLE capability_uses ADD COLUMN executed BLOB;   -- the attested execution record's hash
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
    /// When its token stops authenticating (Unix milliseconds); `None`: never.
    pub token_expires_at_ms: Option<i64>,
    /// When it was revoked (RFC 3339); `None`: active.
    pub revoked_at: Option<String>,
}

/// Why a token no longer authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// A rotation replaced it.
    Rotated,
    /// Its agent was revoked.
    Revoked,
}

impl Retired {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Revoked => "revoked",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "rotated" => Some(Self::Rotated),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A token that no longer authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredToken {
    /// SHA-256 of the token.
    pub token_sha256: Hash32,
    /// The agent it spoke for.
    pub actor: String,
    /// Why it was retired.
    pub why: Retired,
    /// When (RFC 3339).
    pub retired_at: String,
}

use zt_core::capability::report::BrokerKey;
use zt_core::capability::standing::Held;
use zt_core::capability::Grants;
use zt_core::time::Timestamp;
use zt_store::hash_of;

fn grants_json(g: &Grants) -> String {
    String::from_utf8_lossy(&zt_core::json::canonicalize(&g.to_value())).into_owned()
}

fn grants_of(text: Option<String>) -> Option<Grants> {
    let v = zt_core::json::parse(text?.as_bytes()).ok()?;
    Grants::from_value(&v).ok()
}

fn time_of(text: Option<String>) -> Option<Timestamp> {
    text.as_deref().and_then(Timestamp::parse_rfc3339)
}

/// An allow decision made under a capability: what an execution report names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityUse {
    /// The capability.
    pub capability: String,
    /// The agent.
    pub actor: String,
    /// The decision's resource.
    pub resource: String,
    /// The grants sealed in the allow (`None` for an allow made before schema version 4).
    pub grants: Option<Grants>,
}

/// A registered execution broker.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBroker {
    /// Its name and key.
    pub key: BrokerKey,
    /// SHA-256 of its bearer token.
    pub token_sha256: Hash32,
    /// The SPIFFE ID whose X.509-SVID speaks for it.
    pub spiffe_id: Option<String>,
    /// When it was revoked (RFC 3339); `None`: active.
    pub revoked_at: Option<String>,
}

/// Whether an allow may still take an attested execution record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed now: seal the record, then [`State::executed`] (or [`State::unclaim`]).
    Claimed,
    /// Another record was (or is being) sealed for it: its hash, zero while in flight.
    Taken(Hash32),
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
        let state = Self { conn };
        state.migrate()?;
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

    fn migrate(&self) -> Result<(), ControlPlaneError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(ControlPlaneError::SchemaTooNew {
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (from, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            // IMMEDIATE: two processes opening an old file at once migrate it once.
            let tx = rusqlite::Transaction::new_unchecked(
                &self.conn,
                rusqlite::TransactionBehavior::Immediate,
            )?;
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if usize::try_from(now).ok() == Some(from) {
                tx.execute_batch(step)?;
                tx.execute_batch(&format!("PRAGMA user_version = {}", from + 1))?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// A transaction that takes the write lock at once (IMMEDIATE). These read, then write: a
    /// deferred one would fail with "database is locked" instead of waiting whenever the
    /// exporter's connection wrote in between (a busy timeout cannot help a read lock that
    /// must be upgraded).
    fn write_tx(&self) -> Result<rusqlite::Transaction<'_>, ControlPlaneError> {
        Ok(rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, ControlPlaneError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
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

    /// Every registered agent, revoked ones included.
    pub fn agents(&self) -> Result<Vec<Agent>, ControlPlaneError> {
        let mut st = self.conn.prepare(
            "SELECT actor, token_sha256, token_expires_at_ms, revoked_at, spiffe_id FROM agents ORDER BY actor",
        )?;
        let rows = st
            .query_map([], |r| {
                let h: Vec<u8> = r.get(1)?;
                Ok(Agent {
                    actor: r.get(0)?,
                    token_sha256: hash_of(&h),
                    token_expires_at_ms: r.get(2)?,
                    revoked_at: r.get(3)?,
                    spiffe_id: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every retired token.
    pub fn retired_tokens(&self) -> Result<Vec<RetiredToken>, ControlPlaneError> {
        let mut st = self
            .conn
            .prepare("SELECT token_sha256, actor, why, retired_at FROM retired_tokens")?;
        let rows = st
            .query_map([], |r| {
                let h: Vec<u8> = r.get(0)?;
                let why: String = r.get(2)?;
                Ok((
                    hash_of(&h),
                    r.get::<_, String>(1)?,
                    why,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            // The CHECK constraint keeps other values out.
            .filter_map(|(token_sha256, actor, why, retired_at)| {
                Retired::from_name(&why).map(|why| RetiredToken {
                    token_sha256,
                    actor,
                    why,
                    retired_at,
                })
            })
            .collect())
    }

    /// Registers `actor` with the hash of its token, bound to `spiffe_id` when given, or
    /// registers a revoked actor again. `AgentExists` when it is registered and not revoked;
    /// `SpiffeIdBound` when another agent holds that SPIFFE ID.
    pub fn add_agent(
        &self,
        actor: &str,
        token_sha256: &Hash32,
        expires_at_ms: Option<i64>,
        spiffe_id: Option<&str>,
    ) -> Result<(), ControlPlaneError> {
        let tx = self.write_tx()?;
        if let Some(id) = spiffe_id {
            let bound: Option<String> = tx
                .query_row(
                    "SELECT actor FROM agents WHERE spiffe_id = ?1 AND actor != ?2",
                    params![id, actor],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = bound {
                return Err(ControlPlaneError::SpiffeIdBound {
                    spiffe_id: id.to_owned(),
                    actor: other,
                });
            }
        }
        let revoked: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked_at FROM agents WHERE actor = ?1",
                [actor],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            Some(None) => return Err(ControlPlaneError::AgentExists(actor.to_owned())),
            Some(Some(_)) => {
                tx.execute(
                    "UPDATE agents SET token_sha256 = ?2, registered_at = ?3, token_expires_at_ms = ?4, revoked_at = NULL, spiffe_id = ?5 WHERE actor = ?1",
                    params![actor, token_sha256.as_bytes().as_slice(), now(), expires_at_ms, spiffe_id],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO agents (actor, token_sha256, registered_at, token_expires_at_ms, spiffe_id) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![actor, token_sha256.as_bytes().as_slice(), now(), expires_at_ms, spiffe_id],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The active agent `actor`'s token hash; `NoSuchAgent` when it is not registered or
    /// revoked.
    fn active_token(tx: &Connection, actor: &str) -> Result<Hash32, ControlPlaneError> {
        let row: Option<(Vec<u8>, Option<String>)> = tx
            .query_row(
                "SELECT token_sha256, revoked_at FROM agents WHERE actor = ?1",
                [actor],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            Some((h, None)) => Ok(hash_of(&h)),
            _ => Err(ControlPlaneError::NoSuchAgent(actor.to_owned())),
        }
    }

    fn retire(
        tx: &Connection,
        token: &Hash32,
        actor: &str,
        why: Retired,
        at: &str,
    ) -> Result<(), ControlPlaneError> {
        tx.execute(
            "INSERT OR REPLACE INTO retired_tokens (token_sha256, actor, why, retired_at) VALUES (?1, ?2, ?3, ?4)",
            params![token.as_bytes().as_slice(), actor, why.as_str(), at],
        )?;
        Ok(())
    }

    /// Gives `actor` a new token (one transaction): the old one is retired as rotated.
    /// Returns the old token's hash.
    pub fn rotate_token(
        &self,
        actor: &str,
        token_sha256: &Hash32,
        expires_at_ms: Option<i64>,
        at: &str,
    ) -> Result<Hash32, ControlPlaneError> {
        let tx = self.write_tx()?;
        let old = Self::active_token(&tx, actor)?;
        Self::retire(&tx, &old, actor, Retired::Rotated, at)?;
        tx.execute(
            "UPDATE agents SET token_sha256 = ?2, token_expires_at_ms = ?3 WHERE actor = ?1",
            params![actor, token_sha256.as_bytes().as_slice(), expires_at_ms],
        )?;
        tx.commit()?;
        Ok(old)
    }

    /// Revokes `actor` (one transaction): its token is retired as revoked. Returns the
    /// token's hash.
    pub fn revoke_agent(&self, actor: &str, at: &str) -> Result<Hash32, ControlPlaneError> {
        let tx = self.write_tx()?;
        let old = Self::active_token(&tx, actor)?;
        Self::retire(&tx, &old, actor, Retired::Revoked, at)?;
        tx.execute(
            // Its SPIFFE ID is freed with it: the SVID speaks for nobody now, and another
            // agent may be bound to it.
            "UPDATE agents SET revoked_at = ?2, spiffe_id = NULL WHERE actor = ?1",
            params![actor, at],
        )?;
        tx.commit()?;
        Ok(old)
    }

    /// Every issued capability: its id and what is held of it. A revocation time that does
    /// not read back is taken as the epoch (revoked, not active).
    pub fn capabilities(&self) -> Result<Vec<(String, Held)>, ControlPlaneError> {
        let mut st = self
            .conn
            .prepare("SELECT id, actor, not_after_ms, revoked_at FROM capabilities")?;
        let rows = st
            .query_map([], |r| {
                let revoked: Option<String> = r.get(3)?;
                Ok((
                    r.get(0)?,
                    Held {
                        actor: r.get(1)?,
                        not_after: Timestamp::from_unix_millis(r.get(2)?),
                        revoked_at: revoked
                            .map(|t| time_of(Some(t)).unwrap_or(Timestamp::from_unix_millis(0))),
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Keeps an issued capability.
    pub fn add_capability(
        &self,
        cap: &zt_core::capability::Capability,
        not_after_ms: i64,
    ) -> Result<(), ControlPlaneError> {
        let grants = grants_json(&cap.grants);
        self.conn.execute(
            "INSERT INTO capabilities (id, actor, action, resource, grants, issued_at, not_after_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![cap.id, cap.actor, cap.action, cap.resource, grants, cap.issued_at.to_rfc3339_millis(), not_after_ms],
        )?;
        Ok(())
    }

    /// Marks a capability revoked.
    pub fn revoke_capability(&self, id: &str, at: &str) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "UPDATE capabilities SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at],
        )?;
        Ok(())
    }

    /// Keeps an allow decision made under a capability.
    pub fn add_capability_use(
        &self,
        decision: &Hash32,
        used: &CapabilityUse,
    ) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO capability_uses (decision, capability, actor, resource, grants) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![decision.as_bytes().as_slice(), used.capability, used.actor, used.resource, used.grants.as_ref().map(grants_json)],
        )?;
        Ok(())
    }

    /// Claims the allow `decision` for one attested execution record: exactly one claim
    /// succeeds, whatever runs concurrently (the row changes only while `executed` is NULL).
    pub fn claim_execution(&self, decision: &Hash32) -> Result<Claim, ControlPlaneError> {
        let tx = self.write_tx()?;
        let changed = tx.execute(
            "UPDATE capability_uses SET executed = ?2 WHERE decision = ?1 AND executed IS NULL",
            params![decision.as_bytes().as_slice(), [0u8; 32].as_slice()],
        )?;
        let claim = if changed == 1 {
            Claim::Claimed
        } else {
            let taken: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT executed FROM capability_uses WHERE decision = ?1",
                    [decision.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            Claim::Taken(taken.map(|b| hash_of(&b)).unwrap_or(Hash32([0; 32])))
        };
        tx.commit()?;
        Ok(claim)
    }

    /// The attested execution record of `decision` is sealed: its hash.
    pub fn executed(&self, decision: &Hash32, record: &Hash32) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "UPDATE capability_uses SET executed = ?2 WHERE decision = ?1",
            params![decision.as_bytes().as_slice(), record.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    /// A claim whose record could not be sealed is given back.
    pub fn unclaim(&self, decision: &Hash32) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "UPDATE capability_uses SET executed = NULL WHERE decision = ?1 AND executed = ?2",
            params![decision.as_bytes().as_slice(), [0u8; 32].as_slice()],
        )?;
        Ok(())
    }

    /// Every registered broker, revoked ones too.
    pub fn brokers(&self) -> Result<Vec<StoredBroker>, ControlPlaneError> {
        let mut st = self.conn.prepare(
            "SELECT name, key_id, public_key, token_sha256, spiffe_id, revoked_at FROM brokers",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(name, key_id, public_key, token, spiffe_id, revoked_at)| {
                let public_key = hex::decode(&public_key)
                    .ok()
                    .and_then(|b| zt_core::crypto::PublicKey::from_sec1(&b).ok())
                    .ok_or_else(|| ControlPlaneError::StoredBrokerKey { name: name.clone() })?;
                Ok(StoredBroker {
                    key: BrokerKey {
                        broker: name.clone(),
                        key_id,
                        public_key,
                    },
                    token_sha256: hash_of(&token),
                    spiffe_id,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Keeps a newly registered broker (a name used before by a revoked broker is taken over).
    pub fn add_broker(&self, b: &StoredBroker) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO brokers (name, key_id, public_key, token_sha256, spiffe_id, registered_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                b.key.broker,
                b.key.key_id,
                hex::encode(b.key.public_key.sec1_uncompressed()),
                b.token_sha256.as_bytes().as_slice(),
                b.spiffe_id,
                now()
            ],
        )?;
        Ok(())
    }

    /// Marks a broker revoked.
    pub fn revoke_broker(&self, name: &str, at: &str) -> Result<(), ControlPlaneError> {
        self.conn.execute(
            "UPDATE brokers SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, at],
        )?;
        Ok(())
    }

    /// The allow decision `decision` made under a capability, if there is one.
    pub fn capability_use(
        &self,
        decision: &Hash32,
    ) -> Result<Option<CapabilityUse>, ControlPlaneError> {
        Ok(self
            .conn
            .query_row(
                "SELECT capability, actor, resource, grants FROM capability_uses WHERE decision = ?1",
                [decision.as_bytes().as_slice()],
                |r| {
                    Ok(CapabilityUse {
                        capability: r.get(0)?,
                        actor: r.get(1)?,
                        resource: r.get(2)?,
                        grants: grants_of(r.get(3)?),
                    })
                },
            )
            .optional()?)
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
        let tx = self.write_tx()?;
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
        // `[{id, text}]` in application order, in RFC 8785 form (the bytes serde_json wrote
        // here before, for these two string members).
        let doc = String::from_utf8_lossy(&policy::set_document(entries)).into_owned();
        conn.execute(
            "INSERT OR IGNORE INTO policy_versions (version, policies, first_at) VALUES (?1, ?2, ?3)",
            params![version, doc, now()],
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One agent per SPIFFE ID; revoking an agent frees its ID for another.
    #[test]
    fn a_spiffe_id_speaks_for_one_agent_and_is_freed_by_revocation() {
        let tmp = tempfile::tempdir().unwrap();
        let st = State::open(&tmp.path().join("state.db")).unwrap();
        let id = "spiffe://example.org/agent/a";
        st.add_agent("a", &Hash32::digest(b"t1"), None, Some(id))
            .unwrap();
        assert!(matches!(
            st.add_agent("b", &Hash32::digest(b"t2"), None, Some(id)),
            Err(ControlPlaneError::SpiffeIdBound { ref actor, .. }) if actor == "a"
        ));
        st.revoke_agent("a", "t3").unwrap();
        st.add_agent("b", &Hash32::digest(b"t2"), None, Some(id))
            .unwrap();
        let bound: Vec<(String, Option<String>)> = st
            .agents()
            .unwrap()
            .into_iter()
            .map(|a| (a.actor, a.spiffe_id))
            .collect();
        assert_eq!(
            bound,
            [
                ("a".to_owned(), None),
                ("b".to_owned(), Some(id.to_owned()))
            ]
        );
    }

    /// A `state.db` written by the first release (schema 0) opens, migrates, and keeps its
    /// agents, their tokens never expiring and not revoked.
    #[test]
    fn a_version_0_state_is_migrated_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.execute(
                "INSERT INTO agents (actor, token_sha256, registered_at) VALUES ('agent-old', ?1, '2026-10-01T00:00:00.000Z')",
                [Hash32::digest(b"ztcp_old").as_bytes().as_slice()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('initialised', 'x')",
                [],
            )
            .unwrap();
        }
        let st = State::open(&path).unwrap();
        assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
        let agents = st.agents().unwrap();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0].token_sha256, Hash32::digest(b"ztcp_old"));
        assert_eq!(
            (
                agents[0].token_expires_at_ms,
                agents[0].revoked_at.as_deref()
            ),
            (None, None)
        );
        // and the new operations work on it
        let old = st
            .rotate_token("agent-old", &Hash32::digest(b"ztcp_new"), Some(1), "t1")
            .unwrap();
        assert_eq!(old, Hash32::digest(b"ztcp_old"));
        st.revoke_agent("agent-old", "t2").unwrap();
        assert!(matches!(
            st.revoke_agent("agent-old", "t3"),
            Err(ControlPlaneError::NoSuchAgent(_))
        ));
        let retired = st.retired_tokens().unwrap();
        assert_eq!(retired.len(), 2);
        drop(st);
        // opening again is a no-op
        let st = State::open(&path).unwrap();
        assert_eq!(st.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(st.agents().unwrap()[0].revoked_at.is_some());
        // registering a revoked agent again gives it a new token
        st.add_agent("agent-old", &Hash32::digest(b"ztcp_again"), None, None)
            .unwrap();
        assert!(matches!(
            st.add_agent("agent-old", &Hash32::digest(b"ztcp_x"), None, None),
            Err(ControlPlaneError::AgentExists(_))
        ));
    }

    /// A version's text reads back as the JSON array of `{id, text}` it was written as.
    #[test]
    fn a_policy_versions_text_is_its_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let st = State::open(&tmp.path().join("state.db")).unwrap();
        let entries = [PolicyEntry {
            id: "p\"1".into(),
            text: "permit (principal, action, resource);\n// é".into(),
        }];
        st.record_version(&entries, "sha256:v").unwrap();
        assert_eq!(
            st.version_text("sha256:v").unwrap().unwrap(),
            r#"[{"id":"p\"1","text":"permit (principal, action, resource);\n// é"}]"#
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.db");
        drop(State::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let e = State::open(&path).unwrap_err();
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}
