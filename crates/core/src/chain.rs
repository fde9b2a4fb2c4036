//! The chain model: the one home of the rules that decide what a chain's truth is.
//!
//! Every reader of evidence asks this module, never its own copy of the rules: the verifier
//! (files and stores), the store's linking of arriving records, reconciliation against anchors,
//! proofs, and the conformance suite; the browser shows what the store's placement (this
//! model's judgement) and [`SigStatus`] say, and decides nothing itself.
//!
//! - **Signatures** ([`check_signature`], [`SigCheck`], [`SigStatus`]): what a record's signature
//!   proves under a keyring the *person verifying* supplied, as a type. Statuses travel between
//!   crates as [`SigStatus`]; only the SQL edge turns them into text ([`SigStatus::as_str`],
//!   [`std::str::FromStr`]).
//! - **Trust** ([`TrustPolicy`]): a record counts (may be on a main line, be a head, be anchored,
//!   be a link in a proof) only when its signature verified, or when its chain was explicitly
//!   configured to accept unsigned records. Anything else is evidence of an attempt: kept and
//!   reported, never part of a chain's truth.
//! - **Records** ([`inspect`], [`Node`]): the per-record facts the rules use.
//! - **Placement** ([`place`] over a reader's [`ChainIndex`], which asks the rules (`judge`, private)): given a
//!   record and the lookups of the reader that holds its chain, what is known of its
//!   predecessor, the breaks it shows ([`Break`]: genesis, link, fork, sequence, profile,
//!   signature, members the hash does not cover) and whether it continues the main line
//!   ([`Line`]). The verifier and the store implement only the lookups.
//! - **Naming** ([`lineage_chain_name`]): v1 records name their chain; lineage chains are named
//!   after their genesis record.
//!
//! The rules, in one place:
//! 1. A chain's first record has `previous_hash` = 64 zeros; a v1 chain's first record has
//!    `seq` 0.
//! 2. A record links to the record whose `current_hash` its `previous_hash` names; a v1 record's
//!    `seq` is its predecessor's plus one, within the same `chain_id`.
//! 3. A chain has one profile, fixed by its first record.
//! 4. A second record claiming a predecessor that already has a main-line successor is a fork.
//! 5. A record continues the main line only if it is trusted, shows no break, and its
//!    predecessor is on the main line without a main-line successor yet. The main line is
//!    therefore exactly the trusted, unbroken prefix of the chain: no untrusted record can
//!    extend it or displace a record on it.
//!
//! ```
//! use zt_core::chain::{place, ChainIndex, Line, Node, Order, SigStatus, Tip};
//! use zt_core::{Hash32, Profile};
//! /// A reader that has read nothing yet.
//! struct Empty;
//! impl ChainIndex for Empty {
//!     type Error = std::convert::Infallible;
//!     fn by_current(&mut self, _: &Hash32) -> Result<Option<Tip>, Self::Error> { Ok(None) }
//!     fn first(&mut self) -> Result<Option<Tip>, Self::Error> { Ok(None) }
//!     fn order(&mut self) -> Result<Order, Self::Error> { Ok(Order::Start) }
//! }
//! let genesis = Node {
//!     current: Hash32::digest(b"r0"),
//!     previous: Hash32::ZERO,
//!     seq: Some(0),
//!     profile: Some(Profile::V1),
//!     trusted: true,
//!     uncovered: Vec::new(),
//!     recomputed: Vec::new(),
//!     repeated: false,
//! };
//! let Ok(j) = place(&genesis, None, &mut Empty);
//! assert_eq!(j.line, Line::Main);
//! assert!(j.breaks.is_empty());
//! assert_eq!(SigStatus::Verified.as_str(), "verified");
//! ```

use std::fmt;
use std::str::FromStr;

use crate::crypto;
use crate::envelope::{shorten, Envelope, RecordError, SignatureKind};
use crate::error::{SignatureError, Unhashable};
use crate::hash::Hash32;
use crate::keyring::{Keyring, WindowViolation};
use crate::Profile;

/// What a signature check concluded, without its evidence: the form stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigStatus {
    /// Verified under a keyring key valid at the record's time.
    Verified,
    /// Algorithm `none`, empty, or no signature.
    Unsigned,
    /// `MOCK_ECDSA_SHA_256`: a demo label.
    Mock,
    /// The key id is not in the keyring.
    UnknownKey,
    /// The signature verifies, but the key was not valid at the record's time.
    KeyNotValid,
    /// It does not verify (or cannot: not base64, not DER, unsupported algorithm, signer
    /// mismatch).
    BadSignature,
    /// It verifies under a key valid at the time, but the keyring binds that key to other
    /// chains: signed by a key that may not sign this chain.
    UnauthorizedSigner,
}

impl SigStatus {
    /// Every status.
    pub const ALL: [SigStatus; 7] = [
        SigStatus::Verified,
        SigStatus::Unsigned,
        SigStatus::Mock,
        SigStatus::UnknownKey,
        SigStatus::KeyNotValid,
        SigStatus::BadSignature,
        SigStatus::UnauthorizedSigner,
    ];

    /// The stored name (`verified`, `unsigned`, `mock`, `unknown_key`, `key_not_valid`,
    /// `bad_signature`, `unauthorized_signer`): a fixed surface, stores and scripts hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            SigStatus::Verified => "verified",
            SigStatus::Unsigned => "unsigned",
            SigStatus::Mock => "mock",
            SigStatus::UnknownKey => "unknown_key",
            SigStatus::KeyNotValid => "key_not_valid",
            SigStatus::BadSignature => "bad_signature",
            SigStatus::UnauthorizedSigner => "unauthorized_signer",
        }
    }

    /// Verified under the keyring.
    pub fn is_verified(self) -> bool {
        self == SigStatus::Verified
    }
}

impl fmt::Display for SigStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status name this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signature status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for SigStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownStatus(shorten(s)))
    }
}

/// Why a claimed signature is bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSignature {
    /// v1: the unhashed `kms_signature` names another signer than the hashed `signer`.
    #[error("kms_signature ({signed_algorithm} by {signed_key_id:?}) differs from the hashed signer ({hashed_algorithm} by {hashed_key_id:?})")]
    SignerMismatch {
        /// `kms_signature.algorithm` (shortened).
        signed_algorithm: String,
        /// `kms_signature.key_id` (shortened).
        signed_key_id: String,
        /// `signer.algorithm` (shortened).
        hashed_algorithm: String,
        /// `signer.key_id` (shortened).
        hashed_key_id: String,
    },
    /// An algorithm label this project does not verify.
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// Not base64, not DER, or not made by the key over this digest.
    #[error("{0}")]
    Invalid(#[from] SignatureError),
}

/// What a signature check concluded, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigCheck {
    /// Verified under a keyring key valid at the record's time.
    Verified,
    /// Algorithm `none` or no signature.
    Unsigned,
    /// `MOCK_ECDSA_SHA_256`.
    Mock,
    /// The key id is not in the keyring.
    UnknownKey,
    /// Verified, but the key was not valid at the record's time.
    KeyNotValid(WindowViolation),
    /// Does not verify.
    Bad(BadSignature),
    /// Verified, by a key the keyring binds to other chains.
    Unauthorized {
        /// The chains the key may sign.
        bound: Vec<String>,
    },
}

impl SigCheck {
    /// The status, without the evidence.
    pub fn status(&self) -> SigStatus {
        match self {
            SigCheck::Verified => SigStatus::Verified,
            SigCheck::Unsigned => SigStatus::Unsigned,
            SigCheck::Mock => SigStatus::Mock,
            SigCheck::UnknownKey => SigStatus::UnknownKey,
            SigCheck::KeyNotValid(_) => SigStatus::KeyNotValid,
            SigCheck::Bad(_) => SigStatus::BadSignature,
            SigCheck::Unauthorized { .. } => SigStatus::UnauthorizedSigner,
        }
    }
}

/// Checks a record's signature under `keyring`: the key named must be in the keyring, the
/// signature must verify over the 32 bytes of `current_hash`, the key must have been valid at
/// the record's own `timestamp`, and, when the keyring binds it to chains, the record must be
/// of one of them. For v1 the hashed `signer` must be the one that signed.
pub fn check_signature(env: &Envelope, keyring: &Keyring) -> SigCheck {
    let s = &env.signature;
    if let Some(v1) = &env.v1 {
        // The hashed signer must be the one that signed.
        if v1.signer_algorithm != s.algorithm || v1.signer_key_id != s.key_id {
            return SigCheck::Bad(BadSignature::SignerMismatch {
                signed_algorithm: shorten(&s.algorithm),
                signed_key_id: shorten(&s.key_id),
                hashed_algorithm: shorten(&v1.signer_algorithm),
                hashed_key_id: shorten(&v1.signer_key_id),
            });
        }
    }
    match s.kind() {
        SignatureKind::Unsigned => return SigCheck::Unsigned,
        SignatureKind::Mock => return SigCheck::Mock,
        SignatureKind::Unsupported => {
            return SigCheck::Bad(BadSignature::UnsupportedAlgorithm(shorten(&s.algorithm)))
        }
        SignatureKind::Ecdsa => {}
    }
    let Some(key) = keyring.get(&s.key_id) else {
        return SigCheck::UnknownKey;
    };
    let der = match crypto::decode_signature(&s.signature) {
        Ok(d) => d,
        Err(e) => return SigCheck::Bad(e.into()),
    };
    if let Err(e) = key.public_key.verify_digest(&env.current_hash, &der) {
        return SigCheck::Bad(e.into());
    }
    if let Err(v) = key.check_window(env.signed_at) {
        return SigCheck::KeyNotValid(v);
    }
    let chain = env.v1.as_ref().map(|v| v.chain_id.as_str());
    if !key.binds(chain) {
        return SigCheck::Unauthorized {
            bound: key.chains.clone().unwrap_or_default(),
        };
    }
    SigCheck::Verified
}

/// Which records count: the trust root's second half (the keyring is the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Accept unsigned and mock-signed records as part of a chain's truth: everywhere
    /// (`verify --allow-unsigned`), or only in the chains named.
    pub allow_unsigned: AllowUnsigned,
}

/// Where unsigned records may count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowUnsigned {
    /// Nowhere (the default).
    #[default]
    Nowhere,
    /// In every chain.
    Everywhere,
    /// In these chains only.
    Chains(Vec<String>),
}

impl TrustPolicy {
    /// Unsigned records count everywhere.
    pub fn allow_all_unsigned() -> Self {
        TrustPolicy {
            allow_unsigned: AllowUnsigned::Everywhere,
        }
    }

    /// Whether a record of `chain` (when known) with signature status `s` counts. A bad
    /// signature, an unknown key, a key outside its window or a key bound to other chains never
    /// counts.
    pub fn trusts(&self, chain: Option<&str>, s: SigStatus) -> bool {
        match s {
            SigStatus::Verified => true,
            SigStatus::Unsigned | SigStatus::Mock => match &self.allow_unsigned {
                AllowUnsigned::Nowhere => false,
                AllowUnsigned::Everywhere => true,
                AllowUnsigned::Chains(names) => chain.is_some_and(|c| names.iter().any(|n| n == c)),
            },
            SigStatus::UnknownKey
            | SigStatus::KeyNotValid
            | SigStatus::BadSignature
            | SigStatus::UnauthorizedSigner => false,
        }
    }
}

/// Everything the per-record check learns: parsing, the hash under each candidate profile,
/// the signature and its key's window. The one validation path of `verify`, `import`, the
/// receiver, proofs and the conformance suite.
#[derive(Debug)]
pub struct Inspection {
    /// The envelope.
    pub envelope: Envelope,
    /// The first candidate profile whose hash recomputes (`None`: the hash does not).
    pub matched: Option<Profile>,
    /// The signature check.
    pub signature: SigCheck,
}

impl Inspection {
    /// Members the matched profile's hash does not cover (empty when it does not match).
    pub fn uncovered(&self) -> Vec<String> {
        self.matched
            .map(|p| self.envelope.uncovered_members(p))
            .unwrap_or_default()
    }

    /// The record as the chain rules see it, counting or not as `trusted` says (the caller's
    /// trust policy over [`Inspection::signature`]).
    pub fn node(&self, trusted: bool) -> Node {
        Node {
            current: self.envelope.current_hash,
            previous: self.envelope.previous_hash,
            seq: self.envelope.v1.as_ref().map(|v| v.seq),
            profile: self.matched,
            trusted,
            uncovered: self.uncovered(),
            recomputed: Vec::new(),
            repeated: false,
        }
    }
}

/// Parses and checks one record on its own (hash under each candidate profile, or under
/// `forced`; signature; key window).
pub fn inspect(
    bytes: &[u8],
    keyring: &Keyring,
    forced: Option<Profile>,
) -> Result<Inspection, RecordError> {
    let env = Envelope::from_json(bytes)?;
    let matched = match forced {
        Some(p) => (env.compute_hash(p) == Ok(env.current_hash)).then_some(p),
        None => env.detect_profile(),
    };
    let signature = check_signature(&env, keyring);
    Ok(Inspection {
        envelope: env,
        matched,
        signature,
    })
}

/// The name of the lineage chain whose first record has hash `genesis`: `lineage-` and its
/// first 16 hex digits. (v1 records name their chain themselves: `chain_id`.)
pub fn lineage_chain_name(genesis: &Hash32) -> String {
    format!("lineage-{}", &genesis.to_hex()[..16])
}

/// A record as the chain rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its `current_hash`.
    pub current: Hash32,
    /// Its `previous_hash`.
    pub previous: Hash32,
    /// v1 `seq`.
    pub seq: Option<u64>,
    /// The profile its hash recomputes under (`None`: it does not recompute).
    pub profile: Option<Profile>,
    /// Whether it counts under the trust policy ([`TrustPolicy::trusts`]).
    pub trusted: bool,
    /// Members the hash does not cover ([`Envelope::uncovered_members`]).
    pub uncovered: Vec<String>,
    /// Its hash under the profiles tried, or why each cannot apply: explains a mismatch (may
    /// be empty).
    pub recomputed: Vec<(Profile, Result<Hash32, Unhashable>)>,
    /// The same record (its `current_hash`) was already judged in this chain: a fork it makes
    /// is a replay, not a new claimant (a reader of files sees this; a store keeps one row).
    pub repeated: bool,
}

/// A record already placed in its chain, as the rules need it when judging a successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Its `current_hash`.
    pub current: Hash32,
    /// Its position in the chain (0-based).
    pub position: u64,
    /// v1 `seq`.
    pub seq: Option<u64>,
    /// Whether it is on the main line.
    pub main: bool,
    /// What already continues from it.
    pub successor: Successor,
    /// Where the record that first continued it is, when the caller can name it (for the
    /// fork message).
    pub successor_at: Option<Position>,
    /// Where it is, when the caller can name it.
    pub at: Option<Position>,
}

/// What already continues from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Successor {
    /// Nothing yet.
    None,
    /// Only records off the main line (untrusted, broken, or on a branch).
    OffMain,
    /// A record on the main line.
    Main,
}

/// A position a person can find: input and record index (a store uses its chain position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Which input (0-based in the caller's order).
    pub input: u32,
    /// The record's index in that input.
    pub index: u64,
}

/// What is known about the record a new record names as its predecessor.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pred<'a> {
    /// `previous_hash` is zero: the record claims to start a chain. (A chain that already has
    /// records gives [`Pred::Restart`] instead.)
    Genesis,
    /// The named predecessor, which is also the record expected before it (the previous
    /// record of the same chain in the input, or for a store, the record found by hash).
    Linked(&'a Tip),
    /// The named predecessor is known, but it is not the record expected before this one
    /// (`expected`): the records were reordered, or (when it already has a successor) forked.
    Elsewhere {
        /// The named predecessor.
        named: &'a Tip,
        /// The record expected before this one.
        expected: &'a Tip,
    },
    /// The named predecessor is not known. `expected` is the record expected before this one,
    /// when the reader has an order (a file); a store has none and the record waits.
    Missing {
        /// The record expected before this one.
        expected: Option<&'a Tip>,
    },
    /// The reader has no earlier record of this chain, and `previous_hash` is not zero: the
    /// records before it are missing (a file that starts mid-chain).
    Unrooted,
    /// `previous_hash` is zero but the chain already has records: within one v1 chain a
    /// second genesis is a fork at the start when `first` (the chain's main-line first
    /// record, or its first record when none is on the main line) is on the main line.
    Restart {
        /// The chain's first record.
        first: &'a Tip,
    },
}

/// Where a judged record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// It continues the chain's main line.
    Main,
    /// It is linked into the chain but off the main line: a fork, an untrusted record, a
    /// record with a break, or a successor of one of those.
    Branch,
    /// Its predecessor is not known: it waits (a store) or is reported (a file).
    Detached,
}

/// A break in a chain: what the rules found wrong with one record. Each carries its evidence;
/// `Display` is the sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// `current_hash` does not recompute under the chain's profile.
    HashMismatch {
        /// The chain's profile (`None` when no profile applies).
        chain_profile: Option<Profile>,
        /// The profile the record does recompute under, when another one.
        matched: Option<Profile>,
        /// Its hash under the chain's profile, or why that profile cannot apply.
        recomputed: Option<Result<Hash32, Unhashable>>,
        /// The claimed hash.
        claimed: Hash32,
    },
    /// A chain's first record does not start at the zero hash.
    BadGenesis {
        /// Its `previous_hash`.
        found: Hash32,
    },
    /// A v1 chain's first record does not have seq 0.
    GenesisSeq {
        /// Its seq.
        found: u64,
    },
    /// `previous_hash` is not the `current_hash` of the record expected before it.
    BrokenLink {
        /// The expected predecessor's hash.
        expected: Hash32,
        /// The `previous_hash` found.
        found: Hash32,
        /// The record it does name, when known and elsewhere.
        names: Option<Position>,
        /// The reader's position, to phrase `names`.
        here: Option<u32>,
    },
    /// The named predecessor already has a main-line successor.
    Fork {
        /// The record expected before this one (the main line's).
        expected: Hash32,
        /// The named predecessor.
        found: Hash32,
        /// Where the predecessor is.
        predecessor: Option<Position>,
        /// Where its first successor is.
        successor: Option<Position>,
        /// The reader's input, to phrase the positions.
        here: Option<u32>,
        /// The record is one already seen (replayed), not a new claimant.
        replay: bool,
    },
    /// A v1 `seq` is not the predecessor's plus one.
    SeqGap {
        /// The predecessor's seq.
        previous: u64,
        /// This record's seq.
        found: u64,
    },
    /// Members the profile's hash does not cover: anyone could have added or changed them.
    Uncovered {
        /// The chain's profile.
        profile: Profile,
        /// The members.
        members: Vec<String>,
    },
}

fn pos_name(p: Position, here: Option<u32>) -> String {
    if Some(p.input) == here || here.is_none() {
        format!("{}", p.index)
    } else {
        format!("{} of an earlier input", p.index)
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::HashMismatch {
                chain_profile,
                matched,
                recomputed,
                ..
            } => {
                let pname = chain_profile.map_or("?", Profile::name);
                match matched {
                    Some(other) if Some(*other) != *chain_profile => write!(
                        f,
                        "current_hash matches profile {other}, but this chain is {pname}: profiles do not mix within a chain"
                    ),
                    _ => {
                        write!(f, "current_hash does not match the record's content under profile {pname}")?;
                        if let Some(Err(why)) = recomputed {
                            write!(f, " ({why})")?;
                        }
                        Ok(())
                    }
                }
            }
            Break::BadGenesis { .. } => f.write_str(
                "first record of the chain does not start at the zero hash (records missing before it?)",
            ),
            Break::GenesisSeq { .. } => f.write_str("first record of the chain must have seq 0"),
            Break::BrokenLink { names, here, .. } => match names {
                Some(p) => write!(
                    f,
                    "previous_hash names record {}, not the record before this one (reordered?)",
                    pos_name(*p, *here)
                ),
                None => f.write_str(
                    "previous_hash is not the preceding record's current_hash (records deleted or reordered?)",
                ),
            },
            Break::Fork {
                predecessor,
                successor,
                here,
                replay,
                ..
            } => {
                if *replay {
                    return f.write_str("record appears twice in the chain (replayed)");
                }
                match (predecessor, successor) {
                    (Some(p), Some(s)) => write!(
                        f,
                        "record {} already has a successor (record {}); this is a second one",
                        pos_name(*p, *here),
                        pos_name(*s, *here)
                    ),
                    _ => f.write_str(
                        "another record already continues the chain from the same predecessor; this is a second one",
                    ),
                }
            }
            Break::SeqGap { previous, found } => {
                write!(f, "seq jumps from {previous} to {found}")
            }
            Break::Uncovered { profile, members } => write!(
                f,
                "member(s) {} are not covered by the {profile} hash: anyone could have added or changed them",
                members
                    .iter()
                    .map(|m| format!("`{}`", shorten(m)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Break {
    /// What a sound record would have, for reports.
    pub fn expected(&self) -> String {
        match self {
            Break::HashMismatch { recomputed, .. } => match recomputed {
                Some(Ok(h)) => h.to_hex(),
                _ => String::new(),
            },
            Break::BadGenesis { .. } => Hash32::ZERO.to_hex(),
            Break::GenesisSeq { .. } => "0".into(),
            Break::BrokenLink { expected, .. } | Break::Fork { expected, .. } => expected.to_hex(),
            Break::SeqGap { previous, .. } => previous.saturating_add(1).to_string(),
            Break::Uncovered { profile, .. } => {
                format!("only the members the {profile} hash covers")
            }
        }
    }

    /// What this record has, for reports.
    pub fn found(&self) -> String {
        match self {
            Break::HashMismatch { claimed, .. } => claimed.to_hex(),
            Break::BadGenesis { found }
            | Break::BrokenLink { found, .. }
            | Break::Fork { found, .. } => found.to_hex(),
            Break::GenesisSeq { found } | Break::SeqGap { found, .. } => found.to_string(),
            Break::Uncovered { members, .. } => members
                .iter()
                .map(|m| shorten(m))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The judgement of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// What is wrong with it, in report order.
    pub breaks: Vec<Break>,
    /// Where it goes.
    pub line: Line,
    /// The chain's profile after this record (the first record fixes it).
    pub chain_profile: Option<Profile>,
}

/// What a reader knows of the order its records came in, for the record being placed.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    /// No order: records arrive in any order and wait for their predecessor (a store).
    Unordered,
    /// The reader has read no earlier record of this chain.
    Start,
    /// The record of this chain read just before this one.
    After(Tip),
}

/// The lookups placement needs. Each reader of records implements only these (the verifier
/// over what it has read, the store over its tables); [`place`] decides what they mean.
pub trait ChainIndex {
    /// Why a lookup failed (a store's database error; a reader in memory cannot fail).
    type Error;
    /// The chain's placed record whose `current_hash` is `hash`, with what already continues
    /// from it (the record being placed left out).
    fn by_current(&mut self, hash: &Hash32) -> Result<Option<Tip>, Self::Error>;
    /// The chain's first record: its main-line genesis, else its first record (the record
    /// being placed left out). A second genesis is judged against it.
    fn first(&mut self) -> Result<Option<Tip>, Self::Error>;
    /// Where the record being placed comes in the reader's order.
    fn order(&mut self) -> Result<Order, Self::Error>;

    /// The input the record being placed is read from, when the reader has several: the
    /// positions a break names are phrased from there ("record 5 of an earlier input").
    fn here(&self) -> Option<u32> {
        None
    }
}

/// Places `rec` in its chain: asks `index` what the rules need to know of its predecessor
/// (`Pred`) and judges it under the chain's profile so far. The one place that turns lookups
/// into a predecessor: a reader with an order (a file) judges a record against the one read
/// before it, a store against the record its `previous_hash` names; a zero `previous_hash` is a
/// genesis, or a second one when the chain has a first record.
pub fn place<I: ChainIndex + ?Sized>(
    rec: &Node,
    chain_profile: Option<Profile>,
    index: &mut I,
) -> Result<Judgement, I::Error> {
    if rec.previous == Hash32::ZERO {
        let first = index.first()?;
        let pred = match &first {
            Some(f) => Pred::Restart { first: f },
            None => Pred::Genesis,
        };
        return Ok(judge(rec, pred, chain_profile));
    }
    let order = index.order()?;
    let named = match order {
        Order::After(e) if e.current == rec.previous => None,
        Order::Start => None,
        _ => index.by_current(&rec.previous)?,
    };
    let pred = match (&order, &named) {
        (Order::Start, _) => Pred::Unrooted,
        (Order::After(e), _) if e.current == rec.previous => Pred::Linked(e),
        (Order::After(e), Some(n)) => Pred::Elsewhere {
            named: n,
            expected: e,
        },
        (Order::After(e), None) => Pred::Missing { expected: Some(e) },
        (Order::Unordered, Some(n)) => Pred::Linked(n),
        (Order::Unordered, None) => Pred::Missing { expected: None },
    };
    let mut judged = judge(rec, pred, chain_profile);
    if let Some(input) = index.here() {
        for b in &mut judged.breaks {
            if let Break::Fork { here, .. } | Break::BrokenLink { here, .. } = b {
                *here = Some(input);
            }
        }
    }
    Ok(judged)
}

/// Judges `rec` against what is known of its predecessor, under the chain's profile so far
/// (`None`: `rec` is the chain's first record and fixes it). The one place the chain rules
/// live; see the module docs.
pub(crate) fn judge(rec: &Node, pred: Pred<'_>, chain_profile: Option<Profile>) -> Judgement {
    let mut breaks = Vec::new();
    // Rule 3: one profile per chain, fixed by its first record.
    let profile = chain_profile.or(rec.profile);
    if rec.profile.is_none() || rec.profile != profile {
        breaks.push(Break::HashMismatch {
            chain_profile: profile,
            matched: rec.profile,
            recomputed: rec
                .recomputed
                .iter()
                .find(|(p, _)| Some(*p) == profile)
                .map(|(_, h)| *h),
            claimed: rec.current,
        });
    }
    // Rules 1, 2, 4.
    let (line_ok, line) = match pred {
        Pred::Genesis => {
            genesis_seq_rule(rec, &mut breaks);
            (true, Line::Main)
        }
        // Like a second successor of the chain's start: only a main-line first record holds
        // the place. An unverified genesis that came first is evidence, not the start.
        Pred::Restart { first } if first.main => {
            breaks.push(Break::Fork {
                expected: first.current,
                found: Hash32::ZERO,
                predecessor: None,
                successor: first.at,
                here: None,
                replay: rec.repeated || rec.current == first.current,
            });
            (false, Line::Branch)
        }
        Pred::Restart { .. } => {
            genesis_seq_rule(rec, &mut breaks);
            (true, Line::Main)
        }
        Pred::Linked(tip) => {
            // An untrusted or broken successor does not hold the place: a later trusted one
            // continues the main line. Off the main line any earlier successor makes a fork.
            let taken = match tip.successor {
                Successor::None => false,
                Successor::OffMain => !tip.main,
                Successor::Main => true,
            };
            let main = tip.main && !taken;
            if taken {
                breaks.push(Break::Fork {
                    expected: tip.current,
                    found: rec.previous,
                    predecessor: tip.at,
                    successor: tip.successor_at,
                    here: tip.at.map(|p| p.input),
                    replay: rec.repeated,
                });
            }
            seq_rule(tip, rec, &mut breaks);
            (main, if main { Line::Main } else { Line::Branch })
        }
        // The record names a predecessor other than the one read just before it. If that
        // predecessor is on the main line and only untrusted or broken records followed it so
        // far (read in between), they did not hold its place: this record continues the main
        // line, as it would had it been read first (and as the store places it).
        Pred::Elsewhere { named, .. } if named.main && named.successor == Successor::OffMain => {
            seq_rule(named, rec, &mut breaks);
            (true, Line::Main)
        }
        Pred::Elsewhere { named, expected } => {
            if named.successor != Successor::None {
                // A fork's own seq is explained by the fork.
                breaks.push(Break::Fork {
                    expected: expected.current,
                    found: rec.previous,
                    predecessor: named.at,
                    successor: named.successor_at,
                    here: expected.at.map(|p| p.input),
                    replay: rec.repeated,
                });
            } else {
                breaks.push(Break::BrokenLink {
                    expected: expected.current,
                    found: rec.previous,
                    names: named.at,
                    here: expected.at.map(|p| p.input),
                });
                // The sequence is read in the reader's order, as the link is.
                seq_rule(expected, rec, &mut breaks);
            }
            (false, Line::Branch)
        }
        Pred::Unrooted => {
            breaks.push(Break::BadGenesis {
                found: rec.previous,
            });
            (false, Line::Detached)
        }
        Pred::Missing { expected } => {
            if let Some(e) = expected {
                breaks.push(Break::BrokenLink {
                    expected: e.current,
                    found: rec.previous,
                    names: None,
                    here: None,
                });
                seq_rule(e, rec, &mut breaks);
            }
            (false, Line::Detached)
        }
    };
    if !rec.uncovered.is_empty() {
        if let Some(p) = rec.profile {
            breaks.push(Break::Uncovered {
                profile: p,
                members: rec.uncovered.clone(),
            });
        }
    }
    // Rule 5: the main line is the trusted, unbroken prefix.
    let line = match line {
        Line::Main if line_ok && rec.trusted && breaks.is_empty() => Line::Main,
        Line::Main => Line::Branch,
        other => other,
    };
    Judgement {
        breaks,
        line,
        chain_profile: profile,
    }
}

/// How good a copy of a record is, for a store holding several copies of one `current_hash`
/// (the hash does not cover the signature, nor a lineage record's extra members): first
/// whether the copy counts on `chain`'s main line (trusted under `trust`, every member
/// covered), then a verified signature, then no uncovered member. A copy ranked higher
/// supersedes; so a verified copy replaces an unverified one, but never a counting copy with
/// one that would not count.
pub fn copy_rank(
    trust: &TrustPolicy,
    chain: Option<&str>,
    status: SigStatus,
    covered: bool,
) -> (bool, bool, bool) {
    (
        trust.trusts(chain, status) && covered,
        status.is_verified(),
        covered,
    )
}

/// Rule 1 for v1: a chain's first record has seq 0.
fn genesis_seq_rule(rec: &Node, breaks: &mut Vec<Break>) {
    if let Some(seq) = rec.seq.filter(|s| *s != 0) {
        breaks.push(Break::GenesisSeq { found: seq });
    }
}

fn seq_rule(pred: &Tip, rec: &Node, breaks: &mut Vec<Break>) {
    if let (Some(prev), Some(seq)) = (pred.seq, rec.seq) {
        if seq != prev.saturating_add(1) {
            breaks.push(Break::SeqGap {
                previous: prev,
                found: seq,
            });
        }
    }
}

/// The judgement of a whole sequence of records read as one chain in order (a proof's
/// records, a main line from a store): `Ok(())` when every record links to the one before,
/// the first to `first_pred` (or starts the chain when `None`), and each is trusted and
/// unbroken; otherwise the index of the first record that is not, and why.
pub fn check_line(
    first_pred: Option<Tip>,
    chain_profile: Option<Profile>,
    nodes: impl IntoIterator<Item = Node>,
) -> Result<(), (usize, LineError)> {
    let mut tip = first_pred;
    let mut profile = chain_profile;
    for (i, n) in nodes.into_iter().enumerate() {
        let pred = match &tip {
            None if n.previous == Hash32::ZERO => Pred::Genesis,
            None => Pred::Unrooted,
            Some(t) if t.current == n.previous => Pred::Linked(t),
            Some(t) => Pred::Missing { expected: Some(t) },
        };
        let j = judge(&n, pred, profile);
        if let Some(b) = j.breaks.into_iter().next() {
            return Err((i, LineError::Break(Box::new(b))));
        }
        match j.line {
            Line::Main => {}
            Line::Detached => return Err((i, LineError::Unlinked)),
            Line::Branch => return Err((i, LineError::Untrusted)),
        }
        profile = j.chain_profile;
        tip = Some(Tip {
            current: n.current,
            position: tip.map_or(0, |t| t.position + 1),
            seq: n.seq,
            main: true,
            successor: Successor::None,
            successor_at: None,
            at: None,
        });
    }
    Ok(())
}

/// Why a record cannot be part of a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A break.
    #[error("{0}")]
    Break(Box<Break>),
    /// It names no record of the line as its predecessor.
    #[error("its previous_hash names no record before it")]
    Unlinked,
    /// Its signature did not verify under the keyring (and unsigned records are not allowed).
    #[error("its signature did not verify under the keyring given: unverified records are evidence of an attempt, never part of a chain")]
    Untrusted,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn node(n: u8, prev: Hash32, seq: u64, trusted: bool) -> Node {
        Node {
            current: Hash32::digest(&[n]),
            previous: prev,
            seq: Some(seq),
            profile: Some(Profile::V1),
            trusted,
            uncovered: Vec::new(),
            recomputed: Vec::new(),
            repeated: false,
        }
    }

    fn tip(n: &Node, position: u64, main: bool, taken: bool) -> Tip {
        Tip {
            current: n.current,
            position,
            seq: n.seq,
            main,
            successor: if taken {
                Successor::Main
            } else {
                Successor::None
            },
            successor_at: None,
            at: None,
        }
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in SigStatus::ALL {
            assert_eq!(s.as_str().parse::<SigStatus>().unwrap(), s);
        }
        assert!("VERIFIED".parse::<SigStatus>().is_err());
    }

    #[test]
    fn a_key_bound_to_chains_signs_only_those() {
        use crate::envelope::V1Draft;
        let key = crate::crypto::SigningKey::generate();
        let seal = |chain: &str| {
            let s = V1Draft {
                chain_id: chain.into(),
                seq: 0,
                actor: "a".into(),
                action: "b".into(),
                resource: "r".into(),
                decision: "allow".into(),
                reason: "r".into(),
                timestamp: "2026-11-01T00:00:00Z".into(),
                previous_hash: Hash32::ZERO,
                context: None,
            }
            .seal(Some((&key, "k")));
            Envelope::from_json(s.json.as_bytes()).unwrap()
        };
        let mut ring = Keyring::new();
        ring.insert(crate::keyring::KeyEntry::new("k", key.public_key()).bound_to(["cp-a"]))
            .unwrap();
        assert_eq!(check_signature(&seal("cp-a"), &ring), SigCheck::Verified);
        let other = check_signature(&seal("cp-b"), &ring);
        assert_eq!(
            other,
            SigCheck::Unauthorized {
                bound: vec!["cp-a".into()]
            }
        );
        assert!(!TrustPolicy::allow_all_unsigned().trusts(Some("cp-b"), other.status()));
    }

    #[test]
    fn only_verified_or_allowed_unsigned_counts() {
        let strict = TrustPolicy::default();
        let some = TrustPolicy {
            allow_unsigned: AllowUnsigned::Chains(vec!["dev".into()]),
        };
        for s in SigStatus::ALL {
            assert_eq!(strict.trusts(Some("x"), s), s == SigStatus::Verified, "{s}");
            assert_eq!(
                TrustPolicy::allow_all_unsigned().trusts(None, s),
                matches!(
                    s,
                    SigStatus::Verified | SigStatus::Unsigned | SigStatus::Mock
                ),
                "{s}"
            );
        }
        assert!(some.trusts(Some("dev"), SigStatus::Unsigned));
        assert!(!some.trusts(Some("prod"), SigStatus::Unsigned));
        assert!(!some.trusts(None, SigStatus::Unsigned));
        assert!(!some.trusts(Some("dev"), SigStatus::BadSignature));
    }

    #[test]
    fn an_untrusted_record_never_continues_the_main_line() {
        let g = node(0, Hash32::ZERO, 0, true);
        let gt = tip(&g, 0, true, false);
        let forged = node(1, g.current, 1, false);
        let j = judge(&forged, Pred::Linked(&gt), Some(Profile::V1));
        assert_eq!(j.line, Line::Branch);
        assert!(j.breaks.is_empty(), "its signature is the caller's finding");
        // The genuine successor still takes the main line.
        let genuine = node(2, g.current, 1, true);
        assert_eq!(
            judge(&genuine, Pred::Linked(&gt), Some(Profile::V1)).line,
            Line::Main
        );
        // A trusted record after an untrusted one stays off the main line.
        let after = node(3, forged.current, 2, true);
        let ft = tip(&forged, 1, false, false);
        assert_eq!(
            judge(&after, Pred::Linked(&ft), Some(Profile::V1)).line,
            Line::Branch
        );
    }

    #[test]
    fn forks_seq_gaps_and_profiles_are_breaks_off_the_main_line() {
        let g = node(0, Hash32::ZERO, 0, true);
        let taken = tip(&g, 0, true, true);
        let second = node(1, g.current, 1, true);
        let j = judge(&second, Pred::Linked(&taken), Some(Profile::V1));
        assert!(matches!(j.breaks[..], [Break::Fork { .. }]), "{j:?}");
        assert_eq!(j.line, Line::Branch);

        let free = tip(&g, 0, true, false);
        let jump = node(2, g.current, 7, true);
        let j = judge(&jump, Pred::Linked(&free), Some(Profile::V1));
        assert_eq!(
            j.breaks,
            [Break::SeqGap {
                previous: 0,
                found: 7
            }]
        );
        assert_eq!(j.line, Line::Branch);

        let mut other = node(3, g.current, 1, true);
        other.profile = Some(Profile::ZtInfraFull);
        let j = judge(&other, Pred::Linked(&free), Some(Profile::V1));
        assert!(matches!(j.breaks[0], Break::HashMismatch { .. }));
        assert_eq!(j.line, Line::Branch);

        let late_genesis = node(4, Hash32::ZERO, 3, true);
        let j = judge(&late_genesis, Pred::Genesis, None);
        assert_eq!(j.breaks, [Break::GenesisSeq { found: 3 }]);
        assert_eq!(j.line, Line::Branch);

        let detached = node(5, Hash32::digest(b"elsewhere"), 9, true);
        assert_eq!(
            judge(
                &detached,
                Pred::Missing { expected: None },
                Some(Profile::V1)
            )
            .line,
            Line::Detached
        );
    }

    #[test]
    fn uncovered_members_keep_a_record_off_the_main_line() {
        let mut g = node(0, Hash32::ZERO, 0, true);
        g.profile = Some(Profile::ZtInfraFull);
        g.seq = None;
        g.uncovered = vec!["approved_by".into()];
        let j = judge(&g, Pred::Genesis, None);
        assert_eq!(j.line, Line::Branch);
        assert!(j.breaks[0].to_string().contains("`approved_by`"));
    }

    #[test]
    fn check_line_names_the_first_record_that_cannot_count() {
        let a = node(0, Hash32::ZERO, 0, true);
        let b = node(1, a.current, 1, false);
        let c = node(2, b.current, 2, true);
        assert_eq!(check_line(None, None, [a.clone()]), Ok(()));
        assert_eq!(
            check_line(None, None, [a.clone(), b.clone(), c.clone()]),
            Err((1, LineError::Untrusted))
        );
        let bt = Node { trusted: true, ..b };
        assert_eq!(check_line(None, None, [a.clone(), bt, c]), Ok(()));
        let stray = node(9, Hash32::digest(b"x"), 1, true);
        assert!(matches!(
            check_line(None, None, [a, stray]),
            Err((1, LineError::Break(b))) if matches!(*b, Break::BrokenLink { .. })
        ));
    }
}
