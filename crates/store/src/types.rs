//! What crosses the store's boundary: records going in ([`NewRecord`], [`Rejected`]), what a
//! batch did ([`BatchOutcome`]), rows coming out ([`ChainRow`], [`RawRow`]), and where a
//! stored record sits in its chain ([`Line`]), typed so no reader compares the `branch`
//! column's integers itself.

use zt_core::chain::SigStatus;
use zt_core::{Envelope, Profile};

/// An accepted envelope, ready to store.
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// The bytes as received.
    pub raw: &'a [u8],
    /// The parsed envelope.
    pub envelope: &'a Envelope,
    /// The profile its hash recomputes under.
    pub profile: Profile,
    /// Its signature status under the receiver's keyring.
    pub status: SigStatus,
    /// Where it came from (`import:FILE`, `otlp:ADDR`, ...).
    pub source: &'a str,
    /// Who sent it: the sender's authenticated identity (an SVID's SPIFFE ID), if any.
    pub sender: Option<&'a str>,
    /// When it arrived, ms since the Unix epoch.
    pub received_at_ms: i64,
}

/// A rejected envelope, kept with its reason.
#[derive(Debug, Clone, Copy)]
pub struct Rejected<'a> {
    /// The bytes as received.
    pub raw: &'a [u8],
    /// Why it was not accepted.
    pub reason: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// Who sent it: the sender's authenticated identity (an SVID's SPIFFE ID), if any.
    pub sender: Option<&'a str>,
    /// When it arrived, ms since the Unix epoch.
    pub received_at_ms: i64,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New records stored.
    pub inserted: u64,
    /// Records already stored (no-op).
    pub duplicates: u64,
    /// New records flagged as forks.
    pub forks: u64,
    /// New records still waiting for their predecessor after the batch.
    pub waiting: u64,
    /// Earlier waiting records linked into a chain by this batch.
    pub linked: u64,
    /// Rejected envelopes quarantined.
    pub quarantined: u64,
    /// Copies of stored records with other bytes (kept in `record_copies`).
    pub copies: u64,
    /// Records whose stored copy was superseded by a verified one.
    pub superseded: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: BatchOutcome) {
        self.inserted += o.inserted;
        self.duplicates += o.duplicates;
        self.forks += o.forks;
        self.waiting += o.waiting;
        self.linked += o.linked;
        self.quarantined += o.quarantined;
        self.copies += o.copies;
        self.superseded += o.superseded;
    }
}

/// Where a placed record sits in its chain, as the chain model put it (a record still waiting
/// for its predecessor has none: `Option<Line>` is `None`). Only [`Line::Main`] records count:
/// heads, anchors and links in a proof are main-line records.
///
/// In the store this is the `branch` column (`0`: the main line, `NULL`: waiting); that
/// encoding is this type's alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Line {
    /// The chain's main line: its trusted, unbroken prefix.
    Main,
    /// Off the main line: a fork's later claimant, an unverified record, a record with a
    /// break, or what follows one of those. The records of one branch read as a line.
    Branch(BranchId),
}

/// A branch off a chain's main line: the row id of the record that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchId(pub(crate) i64);

impl Line {
    /// Whether this is the main line.
    pub fn is_main(self) -> bool {
        self == Line::Main
    }

    /// The `branch` column of a record on this line.
    pub(crate) fn to_column(self) -> i64 {
        match self {
            Line::Main => 0,
            Line::Branch(BranchId(b)) => b,
        }
    }

    /// The line a `branch` column names (`NULL`: waiting, no line).
    pub(crate) fn from_column(branch: Option<i64>) -> Option<Line> {
        branch.map(|b| match b {
            0 => Line::Main,
            b => Line::Branch(BranchId(b)),
        })
    }
}

/// As the store numbers branches: `0` for the main line, a branch by its first record's row
/// id (what `verify --db` pages by and the browser shows).
impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_column())
    }
}

/// One chain in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    /// Chain name.
    pub chain: String,
    /// Records in it.
    pub records: u64,
    /// Highest position.
    pub last_position: i64,
}

/// A stored record's bytes and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Its line in its chain (`None` while waiting, and in quarantine).
    pub line: Option<Line>,
    /// Position in its chain (`None` while waiting, and in quarantine).
    pub position: Option<i64>,
    /// Row id (arrival order).
    pub id: i64,
    /// The bytes as received.
    pub raw: Vec<u8>,
}

impl RawRow {
    /// Whether it is on its chain's main line.
    pub fn is_main(&self) -> bool {
        self.line.is_some_and(Line::is_main)
    }

    /// Where a page of [`Store::page_chain`](crate::Store::page_chain) that ends with this
    /// row ends: the next page starts after it.
    pub fn cursor(&self) -> ChainCursor {
        ChainCursor {
            branch: self.line.map_or(-1, Line::to_column),
            position: self.position.unwrap_or(-1),
            id: self.id,
        }
    }
}

/// A place in a chain's paging order (branch by branch, the main line first; then position,
/// then arrival): [`Store::page_chain`](crate::Store::page_chain) returns the rows after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainCursor {
    pub(crate) branch: i64,
    pub(crate) position: i64,
    pub(crate) id: i64,
}

impl ChainCursor {
    /// Before every record of the chain.
    pub(crate) const START: ChainCursor = ChainCursor {
        branch: -1,
        position: -1,
        id: -1,
    };

    /// After every main-line record at `position` or before it: the next page starts with
    /// the main line's next position.
    pub fn main_line_after(position: i64) -> Self {
        ChainCursor {
            branch: Line::Main.to_column(),
            position,
            id: i64::MAX,
        }
    }
}

/// What a PostgreSQL server has written and which process it is, for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresStats {
    /// Bytes of WAL written since the cluster began (`pg_current_wal_lsn`).
    pub wal_bytes: i64,
    /// Size of this database on disk (tables, indexes).
    pub database_bytes: i64,
    /// The server process serving this connection (its parent is the postmaster).
    pub backend_pid: i64,
}

/// Current time in ms since the Unix epoch (receipt times, anchoring and migration times).
pub fn now_ms() -> i64 {
    zt_core::time::Timestamp::now().unix_millis()
}
