//! The store's schema on SQLite: migrations applied in order, `PRAGMA user_version` counting
//! how many ran (PostgreSQL's, at the same version numbers, is `pgschema.rs`). Migration 3
//! hands placement to the chain model: stores older than it are relinked (`link.rs`) as it
//! runs.

use zt_core::chain::TrustPolicy;
use zt_core::{Envelope, Profile};

use crate::error::StoreError;
use crate::graph::{self, Graph};
use crate::link;
use crate::pgschema;
use crate::sql::Conn;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE records (
    id              INTEGER PRIMARY KEY,
    current_hash    BLOB NOT NULL UNIQUE,
    previous_hash   BLOB NOT NULL,
    chain           TEXT,            -- NULL while waiting for the predecessor
    position        INTEGER,         -- 0-based within the chain; NULL while waiting
    branch          INTEGER,         -- 0 on the main line; a fork's later claimant starts its own (its id)
    profile         TEXT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT,
    decision        TEXT NOT NULL,
    reason          TEXT NOT NULL,
    timestamp       TEXT NOT NULL,
    ts_ms           INTEGER NOT NULL,
    key_id          TEXT NOT NULL,
    status          TEXT NOT NULL,   -- signature check: verified, unsigned, mock, unknown_key, key_not_valid, bad_signature, unauthorized_signer
    fork            INTEGER NOT NULL DEFAULT 0,
    raw             BLOB NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
CREATE INDEX records_ts       ON records(ts_ms DESC, id DESC);
CREATE INDEX records_actor    ON records(actor, ts_ms DESC);
CREATE INDEX records_action   ON records(action, ts_ms DESC);
CREATE INDEX records_decision ON records(decision, ts_ms DESC);
CREATE INDEX records_prev     ON records(previous_hash, chain);
CREATE INDEX records_chain    ON records(chain, branch, position, id);
CREATE INDEX records_position ON records(chain, position);
CREATE TABLE quarantine (
    id              INTEGER PRIMARY KEY,
    raw_sha256      BLOB NOT NULL UNIQUE,   -- retries of the same bytes are one row
    raw             BLOB NOT NULL,
    reason          TEXT NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
"#,
    ANCHORING,
    // 3: the chain model decides placement (relinked in Rust after this runs), and every copy
    // of a record is kept.
    r#"
ALTER TABLE records ADD COLUMN uncovered TEXT;   -- members the hash does not cover, newline-separated
CREATE INDEX records_detached ON records(id) WHERE branch IS NULL;
CREATE TABLE record_copies (
    id              INTEGER PRIMARY KEY,
    current_hash    BLOB NOT NULL,
    content_sha256  BLOB NOT NULL UNIQUE,   -- SHA-256 of the RFC 8785 form: the same content again is one row
    raw             BLOB NOT NULL,
    status          TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    superseded      INTEGER NOT NULL,       -- 1: was the record until a better copy came
    received_at_ms  INTEGER NOT NULL,
    source          TEXT NOT NULL
);
CREATE INDEX record_copies_hash ON record_copies(current_hash);
"#,
    // 4
    ANCHOR_OWNER,
    // 5: who sent each envelope: the SPIFFE ID of the X.509-SVID the receiver verified over
    // mTLS (NULL when none). Receipt metadata, like `source`: not part of the envelope.
    r#"
ALTER TABLE records ADD COLUMN sender TEXT;
ALTER TABLE quarantine ADD COLUMN sender TEXT;
ALTER TABLE record_copies ADD COLUMN sender TEXT;
"#,
    // 6: one fork rule, the chain model's (a later claimant of a place the main line holds).
    pgschema::ONE_FORK_RULE,
];

/// The migration after which placement is the chain model's: stores older than this are
/// relinked when it runs.
const RELINK_AT: usize = 3;

/// Migration 2: anchoring state (`anchor.rs`).
const ANCHORING: &str = r#"
CREATE TABLE anchor_epochs (
    log             TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    root            BLOB NOT NULL,
    leaf_count      INTEGER NOT NULL,
    state           TEXT NOT NULL,    -- pending, submitted, included, safe, finalized, failed, dropped, reorged
    network_chain_id INTEGER,         -- EVM chain id (84532 Base Sepolia)
    contract        TEXT,             -- 0x address
    tx_hash         TEXT,             -- 0x hash of the latest transaction sent for this epoch
    raw_tx          BLOB,             -- that transaction, signed: a retry rebroadcasts it
    nonce           INTEGER,
    block_number    INTEGER,
    block_hash      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    note            TEXT,             -- last error or revert reason
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (log, epoch)
);
CREATE TABLE anchor_leaves (
    log             TEXT NOT NULL,
    epoch           INTEGER NOT NULL,
    idx             INTEGER NOT NULL,
    chain           TEXT NOT NULL,
    position        INTEGER NOT NULL,
    head            BLOB NOT NULL,
    PRIMARY KEY (log, epoch, idx)
);
CREATE INDEX anchor_leaves_chain ON anchor_leaves(chain, position);
"#;

/// Migration 4: a log on the contract is its owner's (the log id binds the owner's address).
const ANCHOR_OWNER: &str = r#"
ALTER TABLE anchor_epochs ADD COLUMN owner TEXT;  -- 0x address whose log this is (NULL: anchored before logs had owners)
"#;

/// Brings the SQLite store on `conn` to the latest migration; records placed while relinking
/// an old store are placed under `trust`.
pub(crate) fn migrate(conn: &mut Conn, trust: &TrustPolicy) -> Result<(), StoreError> {
    let version = conn.user_version()?.unwrap_or(0);
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::NewerSchema {
            found: version,
            supported,
        });
    }
    for (i, ddl) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        let mut tx = conn.begin()?;
        tx.batch(ddl)?;
        if i + 1 == RELINK_AT && version > 0 {
            fill_uncovered(&mut tx)?;
            let mut g = Graph::new(&mut tx, 1024);
            link::relink_all(&mut g, trust)?;
        }
        tx.batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// Migration 3: the members each stored lineage record has outside its profile's hash.
fn fill_uncovered(conn: &mut Conn) -> Result<(), StoreError> {
    let rows = conn.query(
        "SELECT id, raw, profile FROM records WHERE profile != 'v1'",
        &[],
    )?;
    for mut r in rows {
        let (id, raw, profile) = (r.i64(0)?, r.blob(1)?, r.text(2)?);
        let (Ok(env), Some(p)) = (Envelope::from_json(&raw), Profile::from_name(&profile)) else {
            continue;
        };
        if let Some(u) = graph::encode_uncovered(&env.uncovered_members(p)) {
            conn.exec(
                "UPDATE records SET uncovered = ?1 WHERE id = ?2",
                args![&u, id],
            )?;
        }
    }
    Ok(())
}
