//! Verification of audit evidence: every hash, link and signature, with exact findings.
//!
//! Input is streamed ([`source`]): memory stays flat in file size apart from a per-record index
//! of ~50 bytes (hash, position, successor flag) used to tell forks from broken links.
//!
//! Work is split in two stages per batch of records:
//! 1. **check** (parallel, rayon): parse, type-check, recompute the hash under each candidate
//!    profile, verify the signature and the key's window. Pure per-record work.
//! 2. **chain** (sequential, input order): group into chains, check genesis, links, forks and
//!    v1 sequence numbers, and emit findings in input order.
//!
//! Chains: a v1 record names its chain (`chain_id`). Lineage records have no chain id: a
//! lineage chain is named after its genesis (`lineage-` and 16 hex digits of its hash,
//! [`zt_core::chain::lineage_chain_name`]), as the store names it, whichever input holds it.
//! A file's records stay in the chain its first record joined; a file whose first record
//! continues a lineage chain read from an earlier file extends it (rotated logs); a zero
//! `previous_hash` starts, or repeats, the chain of that genesis (the lineage's auditor
//! restarting). So two logs of one genesis are one chain, and where they differ is a fork, as in
//! a store that imported both. A record an earlier input already held is read again, not judged
//! again (nor reported twice), unless it would be on the main line where the held copy is not
//! (a store's verified copy superseding an unverified one).
//!
//! ```no_run
//! use zt_core::keyring::Keyring;
//! use zt_verifier::{Options, Verifier};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ring = Keyring::from_json(&std::fs::read("keyring.json")?)?;
//! let mut v = Verifier::new(&ring, Options::default());
//! v.verify_path(std::path::Path::new("audit-chain.jsonl"), &mut |_| {});
//! let report = v.finish();
//! println!("ok={} records={} findings={}", report.ok, report.records, report.findings.len());
//! # Ok(()) }
//! ```

pub mod finding;
pub mod source;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use rayon::prelude::*;
use zt_core::capability::report::{Attested, BrokerKey, REGISTER_ACTION};
use zt_core::capability::{used_under, ExecutionLink, EXECUTION_ACTION};
use zt_core::chain::{
    self, lineage_chain_name, place, Break, ChainIndex, Inspection, Line, Node, Order, Position,
    SigCheck, Successor, Tip, TrustPolicy,
};
use zt_core::envelope::shorten;
use zt_core::keyring::Keyring;
use zt_core::{crypto, Hash32, Profile};

use finding::{hash_or_empty, profile_name};
pub use finding::{ChainSummary, Executions, Finding, FindingKind, Report};
use source::{Batch, RecordReader};

/// Verification settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Force a profile instead of detecting it.
    pub profile: Option<Profile>,
    /// Every chain read must contain this hash; one that stops earlier is `truncated`.
    pub expect_head: Option<Hash32>,
    /// Accept `none` and mock signatures (counted, never reported as verified).
    pub allow_unsigned: bool,
    /// Records longer than this are `malformed` and skipped without being buffered.
    pub max_record_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            profile: None,
            expect_head: None,
            allow_unsigned: false,
            max_record_bytes: source::MAX_RECORD_BYTES,
        }
    }
}

impl Options {
    /// The trust policy these options give.
    fn trust(&self) -> TrustPolicy {
        if self.allow_unsigned {
            TrustPolicy::allow_all_unsigned()
        } else {
            TrustPolicy::default()
        }
    }
}

/// What stage 1 learns about a readable record.
#[derive(Debug)]
struct Facts {
    chain_id: Option<String>,
    seq: Option<u64>,
    previous_hash: Hash32,
    current_hash: Hash32,
    /// First candidate profile whose hash recomputes.
    matched: Option<Profile>,
    /// Hash under each candidate tried (or why the profile cannot apply).
    recomputed: Vec<(Profile, Result<Hash32, zt_core::error::Unhashable>)>,
    /// Members the matched profile's hash does not cover.
    uncovered: Vec<String>,
    sig: SigCheck,
    key_id: String,
    sig_algorithm: String,
    /// What ties the record to a capability, if anything.
    capability: CapabilityFacts,
}

/// An allow made under a capability, an execution record that must name one, or a broker's
/// registration (the key its attestations are checked under).
#[derive(Debug)]
enum CapabilityFacts {
    None,
    /// An allow under capability `id` for `actor`.
    Allow {
        actor: String,
        id: String,
    },
    /// An allowed execution record of `actor`; its link, if it names one, and its report's
    /// digest and attestation (or why they do not read).
    Execution {
        actor: String,
        link: Option<ExecutionLink>,
        attested: Result<Attested, String>,
    },
    /// An execution report the control plane kept as a deny.
    NotAccepted,
    /// A broker's registration.
    Broker(BrokerKey),
}

fn capability_facts(env: &zt_core::Envelope) -> CapabilityFacts {
    if env.v1.is_none() {
        return CapabilityFacts::None;
    }
    if env.action == EXECUTION_ACTION && env.decision != "allow" {
        return CapabilityFacts::NotAccepted;
    }
    if env.decision != "allow" {
        return CapabilityFacts::None;
    }
    if env.action == EXECUTION_ACTION {
        return CapabilityFacts::Execution {
            actor: env.actor.clone(),
            link: ExecutionLink::of(env),
            attested: Attested::of(env).map_err(|e| e.to_string()),
        };
    }
    if env.action == REGISTER_ACTION {
        return BrokerKey::of_registration(env)
            .map_or(CapabilityFacts::None, CapabilityFacts::Broker);
    }
    match used_under(env) {
        Some(id) => CapabilityFacts::Allow {
            actor: env.actor.clone(),
            id: id.to_owned(),
        },
        None => CapabilityFacts::None,
    }
}

/// An execution record waiting for its decision (which may come later in the input).
#[derive(Debug)]
struct PendingExecution {
    finding: Finding,
    actor: String,
    link: Option<ExecutionLink>,
    attested: Result<Attested, String>,
}

/// A checked batch waiting for the chain stage.
#[derive(Debug)]
struct Done {
    checked: Vec<Checked>,
    layout_errors: Vec<(u64, u64, String)>,
}

#[derive(Debug)]
struct Checked {
    index: u64,
    line: u64,
    facts: Result<Facts, String>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    file_ord: u32,
    index: u64,
    /// v1 `seq`.
    seq: Option<u64>,
    /// Its copy read first counts under the trust policy.
    trusted: bool,
    /// (file, index) of the first record that named this one as its predecessor.
    successor: Option<(u32, u64)>,
    /// On the chain's main line (the chain model's [`Line::Main`]).
    main: bool,
    /// A main-line record already continues from it.
    main_successor: bool,
}

impl Seen {
    fn tip(&self, current: Hash32) -> Tip {
        Tip {
            current,
            position: self.index,
            seq: None,
            main: self.main,
            successor: match (self.main_successor, self.successor) {
                (true, _) => Successor::Main,
                (false, Some(_)) => Successor::OffMain,
                (false, None) => Successor::None,
            },
            successor_at: self
                .successor
                .map(|(input, index)| Position { input, index }),
            at: Some(Position {
                input: self.file_ord,
                index: self.index,
            }),
        }
    }
}

/// What the verifier has read of one chain, as the chain model's lookups ([`place`]).
struct ReadIndex<'a> {
    chain: &'a Chain,
    /// The input being read.
    here: u32,
    /// Where the copy of the record being placed was first read, when it was (it is not
    /// another successor of its own predecessor).
    itself: Option<Position>,
}

impl ReadIndex<'_> {
    fn not_itself(&self, mut t: Tip) -> Tip {
        if self.itself.is_some() && t.successor_at == self.itself {
            t.successor = Successor::None;
            t.successor_at = None;
        }
        t
    }
}

impl ChainIndex for ReadIndex<'_> {
    type Error = std::convert::Infallible;

    fn by_current(&mut self, hash: &Hash32) -> Result<Option<Tip>, Self::Error> {
        Ok(self
            .chain
            .seen
            .get(hash)
            .map(|s| self.not_itself(s.tip(*hash))))
    }

    fn first(&mut self) -> Result<Option<Tip>, Self::Error> {
        Ok(self.chain.first.map(|(h, input, index)| Tip {
            current: h,
            position: 0,
            seq: Some(0),
            main: self.chain.seen.get(&h).is_some_and(|s| s.main),
            successor: Successor::None,
            successor_at: None,
            at: Some(Position { input, index }),
        }))
    }

    /// The record read last in the chain; as first read (successors included) when it was a
    /// record an earlier input held, read again.
    fn order(&mut self) -> Result<Order, Self::Error> {
        let Some(l) = self.chain.last else {
            return Ok(Order::Start);
        };
        let tip = match self.chain.seen.get(&l.hash).filter(|_| l.again) {
            Some(s) => Tip {
                seq: l.seq,
                ..s.tip(l.hash)
            },
            None => Tip {
                current: l.hash,
                position: l.index,
                seq: l.seq,
                main: l.main,
                successor: Successor::None,
                successor_at: None,
                at: Some(Position {
                    input: l.file_ord,
                    index: l.index,
                }),
            },
        };
        Ok(Order::After(self.not_itself(tip)))
    }

    fn here(&self) -> Option<u32> {
        Some(self.here)
    }
}

/// The record read last in a chain: what the next record is expected to link to.
#[derive(Debug, Clone, Copy)]
struct Last {
    hash: Hash32,
    seq: Option<u64>,
    main: bool,
    file_ord: u32,
    index: u64,
    /// Read again from another input (a record both inputs hold): the next record is judged
    /// against it as first read, successors included.
    again: bool,
}

#[derive(Debug)]
struct Chain {
    name: String,
    /// v1 chain (named by its records), not a lineage file chain.
    sequenced: bool,
    profile: Option<Profile>,
    records: u64,
    last: Option<Last>,
    /// The last record on the main line (the chain model's truth: trusted and unbroken).
    main_head: Option<Hash32>,
    /// The chain's start (its main-line genesis, else its first record), for a second genesis.
    first: Option<(Hash32, u32, u64)>,
    seen: HashMap<Hash32, Seen>,
    findings: u64,
    verified: u64,
    unsigned_allowed: u64,
    keys: BTreeSet<String>,
    files: Vec<String>,
    /// Where the chain's last record is, for `truncated`.
    last_pos: (usize, u64, u64),
}

impl Chain {
    /// A record an earlier input held, read again at `pos` of input `fname`: the next record
    /// is judged against it as first read.
    fn read_again(&mut self, hash: Hash32, s: &Seen, pos: (usize, u64, u64), fname: &str) {
        self.last = Some(Last {
            hash,
            seq: s.seq,
            main: s.main,
            file_ord: s.file_ord,
            index: s.index,
            again: true,
        });
        self.last_pos = pos;
        if self.files.last().map(String::as_str) != Some(fname) {
            self.files.push(fname.to_owned());
        }
    }

    fn new(name: String) -> Self {
        Self {
            name,
            sequenced: false,
            profile: None,
            records: 0,
            last: None,
            main_head: None,
            first: None,
            seen: HashMap::new(),
            findings: 0,
            verified: 0,
            unsigned_allowed: 0,
            keys: BTreeSet::new(),
            files: Vec::new(),
            last_pos: (0, 0, 0),
        }
    }
}

/// Per-input state of the chain stage.
#[derive(Debug)]
struct FileState {
    ord: usize,
    name: String,
    /// The lineage chain this file is feeding.
    lineage_chain: Option<usize>,
    last_malformed: Option<u64>,
    records: u64,
}

/// A verification run over one or more inputs.
#[derive(Debug)]
pub struct Verifier<'k> {
    keyring: &'k Keyring,
    opts: Options,
    trust: TrustPolicy,
    chains: Vec<Chain>,
    by_id: HashMap<String, usize>,
    /// Lineage chains by name (`lineage-` and 16 hex digits of the genesis hash).
    by_lineage: HashMap<String, usize>,
    findings: Vec<Finding>,
    io_errors: Vec<String>,
    records: u64,
    files: usize,
    names: HashMap<String, u32>,
    /// Main-line allows made under a capability: hash -> (actor, capability id).
    capability_allows: HashMap<Hash32, (String, String)>,
    /// Execution records, checked against those at the end.
    executions: Vec<PendingExecution>,
    /// Brokers' keys from main-line registrations: key id -> key.
    broker_keys: HashMap<String, BrokerKey>,
    /// Execution reports kept as denies.
    not_accepted: u64,
}

impl<'k> Verifier<'k> {
    /// A run with these keys and options.
    pub fn new(keyring: &'k Keyring, opts: Options) -> Self {
        Self {
            keyring,
            trust: opts.trust(),
            opts,
            chains: Vec::new(),
            by_id: HashMap::new(),
            by_lineage: HashMap::new(),
            findings: Vec::new(),
            io_errors: Vec::new(),
            records: 0,
            files: 0,
            names: HashMap::new(),
            capability_allows: HashMap::new(),
            executions: Vec::new(),
            broker_keys: HashMap::new(),
            not_accepted: 0,
        }
    }

    /// Verifies a file. Failure to open or read it is recorded as an I/O error (exit code 2),
    /// naming the file. `progress` is called with the bytes read so far in this file.
    pub fn verify_path(&mut self, path: &Path, progress: &mut dyn FnMut(u64)) {
        let name = path.display().to_string();
        if path.is_dir() {
            self.io_errors
                .push(format!("{name}: is a directory, not an evidence file"));
            return;
        }
        match File::open(path) {
            Ok(f) => {
                if let Err(e) =
                    self.verify_reader(&name, BufReader::with_capacity(1 << 20, f), progress)
                {
                    self.io_errors.push(format!("{name}: read failed: {e}"));
                }
            }
            Err(e) => self.io_errors.push(format!("{name}: cannot open: {e}")),
        }
    }

    /// Verifies one input stream named `name`.
    pub fn verify_reader<R: BufRead>(
        &mut self,
        name: &str,
        reader: R,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let mut file = FileState {
            ord: self.files,
            name: name.to_owned(),
            lineage_chain: None,
            last_malformed: None,
            records: 0,
        };
        self.files += 1;
        let mut rr = RecordReader::new(reader, self.opts.max_record_bytes);
        let mut batch = Batch::default();
        let keyring = self.keyring;
        let profile = self.opts.profile;
        let max = self.opts.max_record_bytes;
        // Pipeline: while the chain stage walks batch N on one worker, the check stage of
        // batch N+1 runs on the others (rayon::join), so no core idles during the
        // sequential part.
        let check = |batch: &Batch| -> Done {
            let checked = batch
                .records
                .par_iter()
                .map(|m| Checked {
                    index: m.index,
                    line: m.line,
                    facts: match m.oversized {
                        Some(len) => {
                            Err(format!("record is {len} bytes, over the {max}-byte limit"))
                        }
                        None => check_record(batch.bytes(m), keyring, profile),
                    },
                })
                .collect();
            Done {
                checked,
                layout_errors: batch.layout_errors.clone(),
            }
        };
        let mut pending: Option<Done> = None;
        loop {
            let more = rr.next_batch(&mut batch)?;
            let (next, ()) = rayon::join(
                || more.then(|| check(&batch)),
                || {
                    if let Some(done) = pending.take() {
                        self.chain_batch(&mut file, done);
                    }
                },
            );
            progress(rr.bytes_read());
            match next {
                Some(done) => pending = Some(done),
                None => break,
            }
        }
        if file.records == 0 && !self.findings.iter().any(|f| f.file_ord == file.ord) {
            self.push(
                &file,
                0,
                1,
                FindingKind::Malformed,
                name.to_owned(),
                "at least one audit record".into(),
                "no records".into(),
                "input holds no audit records (empty evidence never verifies)".into(),
            );
        }
        Ok(())
    }

    /// Reports records that never reached the chain stage (a store's quarantine): each
    /// `(index, kind, message)` becomes a finding of input `source`, in that order.
    pub fn add_unreadable(
        &mut self,
        source: &str,
        items: impl IntoIterator<Item = (u64, FindingKind, String)>,
    ) {
        let file = FileState {
            ord: self.files,
            name: source.to_owned(),
            lineage_chain: None,
            last_malformed: None,
            records: 0,
        };
        self.files += 1;
        for (index, kind, message) in items {
            self.records += 1;
            self.push(
                &file,
                index,
                index + 1,
                kind,
                source.to_owned(),
                "an acceptable envelope".into(),
                "quarantined at ingest".into(),
                message,
            );
        }
    }

    /// Checks other copies of stored records (same `current_hash`, other content, kept by a
    /// store as evidence) under this run's keyring: a copy whose signature does not count, or
    /// that carries members no hash covers, is a finding of input `source`; a second good
    /// copy (re-signed by the same key, say) is not.
    pub fn add_copies(&mut self, source: &str, copies: impl IntoIterator<Item = (u64, Vec<u8>)>) {
        let file = FileState {
            ord: self.files,
            name: source.to_owned(),
            lineage_chain: None,
            last_malformed: None,
            records: 0,
        };
        self.files += 1;
        for (index, raw) in copies {
            self.records += 1;
            let mut out = Vec::new();
            match chain::inspect(&raw, self.keyring, self.opts.profile) {
                Err(e) => out.push((
                    FindingKind::Malformed,
                    "an audit envelope".into(),
                    "unreadable record".into(),
                    e.summary(),
                )),
                Ok(ins) => {
                    let env = &ins.envelope;
                    let chain = env.v1.as_ref().map(|v| v.chain_id.as_str());
                    if !self.trust.trusts(chain, ins.signature.status()) {
                        out.extend(signature_finding(
                            &ins.signature,
                            &env.signature.key_id,
                            &env.signature.algorithm,
                            &env.current_hash,
                        ));
                    }
                    if let (Some(profile), members) = (ins.matched, ins.uncovered()) {
                        if !members.is_empty() {
                            let b = Break::Uncovered { profile, members };
                            out.push((break_kind(&b), b.expected(), b.found(), b.to_string()));
                        }
                    }
                }
            }
            for (kind, expected, found, message) in out {
                let message = format!("a copy of a stored record: {message}");
                self.push(
                    &file,
                    index,
                    index + 1,
                    kind,
                    source.to_owned(),
                    expected,
                    found,
                    message,
                );
            }
        }
    }

    fn chain_batch(&mut self, file: &mut FileState, done: Done) {
        for c in done.checked {
            self.records += 1;
            file.records += 1;
            self.chain_stage(file, c);
        }
        for (index, line, msg) in done.layout_errors {
            let chain = self.current_chain_name(file);
            self.push(
                file,
                index,
                line,
                FindingKind::Malformed,
                chain,
                "well-formed JSON".into(),
                "cut-off or trailing data".into(),
                msg,
            );
        }
    }

    fn current_chain_name(&self, file: &FileState) -> String {
        file.lineage_chain
            .map(|c| self.chains[c].name.clone())
            .unwrap_or_else(|| file.name.clone())
    }

    #[allow(clippy::too_many_arguments, reason = "a finding's fields")]
    fn push(
        &mut self,
        file: &FileState,
        index: u64,
        line: u64,
        kind: FindingKind,
        chain: String,
        expected: String,
        found: String,
        message: String,
    ) {
        self.findings.push(Finding {
            index,
            file: file.name.clone(),
            kind,
            chain,
            expected,
            found,
            message,
            line,
            file_ord: file.ord,
        });
    }

    fn new_chain(&mut self, base: &str) -> usize {
        let n = self.names.entry(base.to_owned()).or_insert(0);
        *n += 1;
        let name = if *n == 1 {
            base.to_owned()
        } else {
            format!("{base}#{n}")
        };
        self.chains.push(Chain::new(name));
        self.chains.len() - 1
    }

    /// The lineage chain whose genesis (or, unrooted, first record) is `first`.
    fn lineage_chain(&mut self, first: &Hash32) -> usize {
        let name = lineage_chain_name(first);
        if let Some(&ci) = self.by_lineage.get(&name) {
            return ci;
        }
        let ci = self.new_chain(&name);
        self.by_lineage.insert(name, ci);
        ci
    }

    fn chain_stage(&mut self, file: &mut FileState, c: Checked) {
        let facts = match c.facts {
            Ok(f) => f,
            Err(msg) => {
                let chain = self.current_chain_name(file);
                self.push(
                    file,
                    c.index,
                    c.line,
                    FindingKind::Malformed,
                    chain,
                    "an audit envelope".into(),
                    "unreadable record".into(),
                    msg,
                );
                file.last_malformed = Some(c.index);
                return;
            }
        };

        // Which chain? v1 records name theirs. A lineage chain is named after its genesis, as
        // the store names it (`lineage_chain_name`), whichever input it is read from: two logs
        // of one genesis are one chain, and where they differ is a fork. A file's records
        // stay in the chain its first record joined; a zero previous_hash starts (or repeats)
        // the chain of that genesis; a file whose first record is not a genesis continues the
        // lineage chain holding the record it names (rotated logs), or starts an unrooted
        // chain named after that first record.
        let ci = match &facts.chain_id {
            Some(id) => match self.by_id.get(id) {
                Some(&ci) => ci,
                None => {
                    let ci = self.new_chain(id);
                    self.chains[ci].sequenced = true;
                    self.by_id.insert(id.clone(), ci);
                    ci
                }
            },
            None => {
                let ci = if facts.previous_hash == Hash32::ZERO {
                    self.lineage_chain(&facts.current_hash)
                } else if let Some(ci) = file.lineage_chain {
                    ci
                } else {
                    let held = self
                        .chains
                        .iter()
                        .position(|ch| !ch.sequenced && ch.seen.contains_key(&facts.previous_hash));
                    match held {
                        Some(ci) => ci,
                        None => self.lineage_chain(&facts.current_hash),
                    }
                };
                file.lineage_chain = Some(ci);
                ci
            }
        };
        let fname = file.name.clone();
        let file_ord = u32::try_from(file.ord).unwrap_or(u32::MAX);
        let chain_name = self.chains[ci].name.clone();
        let status = facts.sig.status();
        let trusted = self.trust.trusts(Some(&chain_name), status);
        let chain = &mut self.chains[ci];

        // A record an earlier input already held (two logs that share records, a store and its
        // export) is read again, not judged again: the next record links to it as first read.
        // Two exceptions, as a store has them: a copy that claims the held record's hash but
        // does not recompute (an edited copy) is a hash mismatch, which takes nobody's place;
        // a copy that would be on the main line where the held one is not (it counts, the held
        // copy did not) is judged in its place, as a store supersedes an unverified copy.
        let same = facts.matched.is_some() && facts.matched == chain.profile;
        let held = chain.seen.get(&facts.current_hash).copied();
        let held_other = held.filter(|s| s.file_ord != file_ord);
        if let Some(s) = held_other.filter(|_| !same) {
            chain.read_again(facts.current_hash, &s, (file.ord, c.index, c.line), &fname);
            let b = Break::HashMismatch {
                chain_profile: chain.profile,
                matched: facts.matched,
                recomputed: facts
                    .recomputed
                    .iter()
                    .find(|(p, _)| Some(*p) == chain.profile)
                    .map(|(_, h)| *h),
                claimed: facts.current_hash,
            };
            chain.findings += 1;
            self.push(
                file,
                c.index,
                c.line,
                break_kind(&b),
                chain_name,
                b.expected(),
                b.found(),
                b.to_string(),
            );
            return;
        }

        // What the chain model needs: the record, and what is known of its predecessor in
        // the order read.
        let node = Node {
            current: facts.current_hash,
            previous: facts.previous_hash,
            seq: facts.seq,
            profile: facts.matched,
            trusted,
            uncovered: facts.uncovered,
            recomputed: facts.recomputed,
            repeated: held.is_some() && held_other.is_none(),
        };
        // A copy of a held record is not another successor of its predecessor (a store leaves
        // a record itself out when it judges it again).
        let itself = held_other.map(|s| Position {
            input: s.file_ord,
            index: s.index,
        });
        let mut index = ReadIndex {
            chain,
            here: file_ord,
            itself,
        };
        let Ok(judged) = place(&node, chain.profile, &mut index);
        if let Some(s) = held_other {
            if judged.line != Line::Main || s.main {
                chain.read_again(facts.current_hash, &s, (file.ord, c.index, c.line), &fname);
                // Its signature is still checked: a copy that does not verify is evidence.
                let sig = match &facts.sig {
                    SigCheck::Verified => None,
                    SigCheck::Unsigned | SigCheck::Mock if trusted => None,
                    sig => signature_finding(
                        sig,
                        &facts.key_id,
                        &facts.sig_algorithm,
                        &facts.current_hash,
                    ),
                };
                if let Some((kind, expected, found, message)) = sig {
                    chain.findings += 1;
                    self.push(
                        file, c.index, c.line, kind, chain_name, expected, found, message,
                    );
                }
                return;
            }
        }
        chain.profile = judged.chain_profile;
        let main = judged.line == Line::Main;

        let mut out: Vec<(FindingKind, String, String, String)> = judged
            .breaks
            .iter()
            .map(|b| {
                let mut message = b.to_string();
                if let (Break::BrokenLink { names: None, .. }, Some(i)) = (b, file.last_malformed) {
                    if i + 1 == c.index {
                        message.push_str(&format!("; record {i} before it is unreadable"));
                    }
                }
                (break_kind(b), b.expected(), b.found(), message)
            })
            .collect();

        if let Some(s) = chain.seen.get_mut(&facts.previous_hash) {
            s.successor.get_or_insert((file_ord, c.index));
            s.main_successor |= main;
        }
        chain
            .seen
            .entry(facts.current_hash)
            .and_modify(|s| {
                // A better copy of a record an earlier input held.
                s.main |= main;
                s.trusted |= trusted;
            })
            .or_insert(Seen {
                file_ord,
                index: c.index,
                seq: facts.seq,
                trusted,
                successor: None,
                main,
                main_successor: false,
            });
        // The chain's start: its main-line genesis once there is one, else its first record.
        if main && facts.previous_hash == Hash32::ZERO {
            chain.first = Some((facts.current_hash, file_ord, c.index));
        } else {
            chain
                .first
                .get_or_insert((facts.current_hash, file_ord, c.index));
        }
        chain.last = Some(Last {
            hash: facts.current_hash,
            seq: facts.seq,
            main,
            file_ord,
            index: c.index,
            again: false,
        });
        if main {
            chain.main_head = Some(facts.current_hash);
        }
        if held_other.is_none() {
            chain.records += 1;
        }
        chain.last_pos = (file.ord, c.index, c.line);
        if chain.files.last() != Some(&fname) {
            chain.files.push(fname.clone());
        }

        // The signature: verified, counted apart when unsigned records are allowed, or a
        // finding naming why it does not count.
        match &facts.sig {
            // A better copy of a held record was counted when first read.
            SigCheck::Verified => {
                chain.verified += u64::from(held_other.is_none());
                chain.keys.insert(facts.key_id.clone());
            }
            SigCheck::Unsigned | SigCheck::Mock if trusted => {
                chain.unsigned_allowed += u64::from(held_other.is_none());
            }
            sig => out.extend(signature_finding(
                sig,
                &facts.key_id,
                &facts.sig_algorithm,
                &facts.current_hash,
            )),
        }

        // Capabilities: main-line allows are what an execution record may name; execution
        // records are checked once everything is read (the decision may come later).
        match facts.capability {
            CapabilityFacts::Allow { actor, id } if main => {
                self.capability_allows
                    .insert(facts.current_hash, (actor, id));
            }
            CapabilityFacts::Broker(key) if main => {
                self.broker_keys.insert(key.key_id.clone(), key);
            }
            CapabilityFacts::NotAccepted => self.not_accepted += 1,
            CapabilityFacts::Execution {
                actor,
                link,
                attested,
            } => {
                self.executions.push(PendingExecution {
                    finding: Finding {
                        index: c.index,
                        file: fname.clone(),
                        kind: FindingKind::ExecutionUnlinked,
                        chain: chain_name.clone(),
                        expected: String::new(),
                        found: String::new(),
                        message: String::new(),
                        line: c.line,
                        file_ord: file.ord,
                    },
                    actor,
                    link,
                    attested,
                });
            }
            CapabilityFacts::Allow { .. } | CapabilityFacts::Broker(_) | CapabilityFacts::None => {}
        }

        let chain = &mut self.chains[ci];
        chain.findings += out.len() as u64;
        for (kind, expected, found, message) in out {
            self.push(
                file,
                c.index,
                c.line,
                kind,
                chain_name.clone(),
                expected,
                found,
                message,
            );
        }
    }

    /// Ends the run: `--expect-head`, ordering, summaries.
    pub fn finish(mut self) -> Report {
        if let Some(head) = self.opts.expect_head {
            if !self.chains.iter().any(|c| c.seen.contains_key(&head)) {
                for ci in 0..self.chains.len() {
                    let (ord, index, line) = self.chains[ci].last_pos;
                    // The chain's last record came from the last file it was read from.
                    let file = self.chains[ci].files.last().cloned().unwrap_or_default();
                    self.chains[ci].findings += 1;
                    let c = &self.chains[ci];
                    let finding = Finding {
                        index,
                        file,
                        kind: FindingKind::Truncated,
                        chain: c.name.clone(),
                        expected: head.to_hex(),
                        found: hash_or_empty(c.last.map(|l| l.hash)),
                        message: format!(
                            "chain stops at record {index} ({} records) before the expected head {}",
                            c.records,
                            head.short()
                        ),
                        line,
                        file_ord: ord,
                    };
                    self.findings.push(finding);
                }
            }
        }
        let executions = self.check_executions();
        // Input order: file, then position; stable for several findings on one record.
        self.findings.sort_by_key(|f| (f.file_ord, f.index));
        let chains: Vec<ChainSummary> = self
            .chains
            .iter()
            .map(|c| ChainSummary {
                chain: c.name.clone(),
                profile: profile_name(c.profile),
                records: c.records,
                head: c.main_head.map(|h| h.to_hex()),
                last: c.last.map(|l| l.hash.to_hex()),
                ok: c.findings == 0,
                findings: c.findings,
                verified_signatures: c.verified,
                unsigned_allowed: c.unsigned_allowed,
                keys: c.keys.clone(),
                files: c.files.clone(),
            })
            .collect();
        let mut errors: Vec<String> = self.findings.iter().map(Finding::error_line).collect();
        errors.extend(self.io_errors.iter().cloned());
        Report {
            ok: self.findings.is_empty() && self.io_errors.is_empty(),
            records: self.records,
            chains,
            errors,
            findings: self.findings,
            io_errors: self.io_errors,
            executions,
        }
    }

    /// The execution records, once everything is read: each names a main-line allow of its
    /// agent under its capability, carries a broker's attestation (checked here under the
    /// broker's registered key when the registration was read), and is the only one for its
    /// allow.
    fn check_executions(&mut self) -> Executions {
        let mut out = Executions {
            not_accepted: self.not_accepted,
            brokers: {
                let mut b: Vec<String> = self
                    .broker_keys
                    .values()
                    .map(|k| format!("{} ({})", k.broker, k.key_id))
                    .collect();
                b.sort();
                b
            },
            ..Executions::default()
        };
        let mut used: HashMap<Hash32, u64> = HashMap::new();
        for e in std::mem::take(&mut self.executions) {
            let mut found: Vec<(FindingKind, String, String, String)> = Vec::new();
            let named = e
                .link
                .as_ref()
                .and_then(|l| self.capability_allows.get(&l.decision).map(|d| (l, d)));
            let link_break = match (&e.link, named) {
                (None, _) => Some((
                    "context.decision and context.capability_id".to_owned(),
                    "names no decision".to_owned(),
                )),
                (Some(l), None) => Some((
                    format!("an allow under capability {}", l.capability_id),
                    format!(
                        "names decision {}, which is no main-line allow under a capability in what was read",
                        l.decision.short()
                    ),
                )),
                (Some(l), Some((_, (actor, id)))) if *actor != e.actor || *id != l.capability_id => Some((
                    format!("agent {actor}, capability {id}"),
                    format!(
                        "names decision {} of agent {actor} under capability {id}, not agent {} under {}",
                        l.decision.short(),
                        e.actor,
                        l.capability_id
                    ),
                )),
                (Some(_), Some(_)) => None,
            };
            let link_found = e
                .link
                .as_ref()
                .map(|l| {
                    format!(
                        "decision {}, capability {}",
                        l.decision.to_hex(),
                        l.capability_id
                    )
                })
                .unwrap_or_default();
            if let Some((expected, why)) = link_break {
                found.push((
                    FindingKind::ExecutionUnlinked,
                    expected,
                    link_found.clone(),
                    format!("execution record {why}"),
                ));
            }
            match &e.attested {
                Err(why) => found.push((
                    FindingKind::ExecutionUnattested,
                    "a broker's signed report".into(),
                    why.clone(),
                    format!("execution record carries no readable report: {why}"),
                )),
                Ok(a) => {
                    if e.link.as_ref().is_some_and(|l| l.decision != a.decision) {
                        found.push((
                            FindingKind::ExecutionUnattested,
                            format!("a report on decision {}", a.decision.short()),
                            link_found.clone(),
                            "the record's decision is not the one its report names".into(),
                        ));
                    }
                    match &a.attestation {
                        None => found.push((
                            FindingKind::ExecutionUnattested,
                            "a broker's signature on the report".into(),
                            "none".into(),
                            "execution record carries no broker's signature: it is nobody's account but the agent's".into(),
                        )),
                        Some(att) => match self.broker_keys.get(&att.key_id) {
                            None => out.vouched += 1,
                            Some(key) => match att.verify(&a.digest, key) {
                                Ok(()) => out.attested += 1,
                                Err(why) => found.push((
                                    FindingKind::ExecutionUnattested,
                                    format!("a signature by broker {} ({})", key.broker, key.key_id),
                                    why.to_string(),
                                    format!("execution record's attestation does not hold: {why}"),
                                )),
                            },
                        },
                    }
                    let n = used.entry(a.decision).or_insert(0);
                    *n += 1;
                    if *n > 1 {
                        found.push((
                            FindingKind::ExecutionDuplicate,
                            "one execution record per allow".into(),
                            format!(
                                "execution record {} for decision {}",
                                n,
                                a.decision.to_hex()
                            ),
                            format!(
                                "decision {} has more than one execution record",
                                a.decision.short()
                            ),
                        ));
                    }
                }
            }
            for (kind, expected, found_text, message) in found {
                let mut f = e.finding.clone();
                f.kind = kind;
                f.expected = expected;
                f.found = found_text;
                f.message = message;
                if let Some(c) = self.chains.iter_mut().find(|c| c.name == f.chain) {
                    c.findings += 1;
                }
                self.findings.push(f);
            }
        }
        out
    }
}

/// The report's kind for a break of the chain model.
fn break_kind(b: &Break) -> FindingKind {
    match b {
        Break::HashMismatch { .. } => FindingKind::HashMismatch,
        Break::BadGenesis { .. } => FindingKind::BadGenesis,
        Break::GenesisSeq { .. } | Break::SeqGap { .. } => FindingKind::SeqGap,
        Break::BrokenLink { .. } => FindingKind::BrokenLink,
        Break::Fork { .. } => FindingKind::Fork,
        Break::Uncovered { .. } => FindingKind::UncoveredMember,
    }
}

/// The finding for a signature that does not count (`None` for a verified one).
fn signature_finding(
    sig: &SigCheck,
    key_id: &str,
    algorithm: &str,
    current_hash: &Hash32,
) -> Option<(FindingKind, String, String, String)> {
    Some(match sig {
        SigCheck::Verified => return None,
        SigCheck::Unsigned => (
            FindingKind::Unsigned,
            crypto::ALGORITHM.into(),
            if algorithm.is_empty() {
                "no signature".into()
            } else {
                algorithm.to_owned()
            },
            "record is not signed (pass --allow-unsigned to accept, never as verified)".into(),
        ),
        SigCheck::Mock => (
            FindingKind::MockSignature,
            crypto::ALGORITHM.into(),
            algorithm.to_owned(),
            "MOCK_ECDSA_SHA_256 is a demo label, not a signature".into(),
        ),
        SigCheck::UnknownKey => (
            FindingKind::UnknownKey,
            "a key_id in the keyring".into(),
            key_id.to_owned(),
            format!("signing key {:?} is not in the keyring", shorten(key_id)),
        ),
        SigCheck::KeyNotValid(v) => (
            FindingKind::KeyNotValid,
            v.to_string(),
            current_hash.to_hex(),
            format!(
                "signed by {:?} outside its validity window: {v}",
                shorten(key_id)
            ),
        ),
        SigCheck::Unauthorized { bound } => (
            FindingKind::UnauthorizedSigner,
            format!("a key the keyring binds to this chain (it binds {} to {})", shorten(key_id), bound.join(", ")),
            key_id.to_owned(),
            format!(
                "signed by {:?}, which the keyring binds to {} only: a key that may not sign this chain",
                shorten(key_id),
                bound.join(", ")
            ),
        ),
        SigCheck::Bad(why) => (
            FindingKind::BadSignature,
            format!("a valid signature by {}", shorten(key_id)),
            why.to_string(),
            format!("signature does not verify: {why}"),
        ),
    })
}

/// Stage 1: everything about one record that does not depend on its neighbours.
fn check_record(bytes: &[u8], keyring: &Keyring, forced: Option<Profile>) -> Result<Facts, String> {
    let ins = chain::inspect(bytes, keyring, forced).map_err(|e| e.summary())?;
    let uncovered = ins.uncovered();
    let Inspection {
        envelope: env,
        matched,
        signature,
    } = ins;
    // The hashes under the other candidates are only needed to explain a mismatch.
    let recomputed = match matched {
        Some(p) => vec![(p, Ok(env.current_hash))],
        None => match forced {
            Some(p) => vec![(p, env.compute_hash(p))],
            None => env
                .candidates()
                .iter()
                .map(|&p| (p, env.compute_hash(p)))
                .collect(),
        },
    };
    Ok(Facts {
        chain_id: env.v1.as_ref().map(|v| v.chain_id.clone()),
        seq: env.v1.as_ref().map(|v| v.seq),
        previous_hash: env.previous_hash,
        current_hash: env.current_hash,
        matched,
        recomputed,
        uncovered,
        capability: capability_facts(&env),
        sig: signature,
        key_id: env.signature.key_id,
        sig_algorithm: env.signature.algorithm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_core::envelope::V1Draft;
    use zt_core::Envelope;

    fn chain(n: u64) -> Vec<String> {
        let mut prev = Hash32::ZERO;
        (0..n)
            .map(|seq| {
                let s = V1Draft {
                    chain_id: "c".into(),
                    seq,
                    actor: "a".into(),
                    action: "x".into(),
                    resource: "r".into(),
                    decision: "allow".into(),
                    reason: "ok".into(),
                    timestamp: "2026-10-01T00:00:00Z".into(),
                    previous_hash: prev,
                    context: None,
                }
                .seal(None);
                prev = s.current_hash;
                s.json
            })
            .collect()
    }

    fn run(lines: &[String]) -> Report {
        let opts = Options {
            allow_unsigned: true,
            ..Options::default()
        };
        run_with(&Keyring::new(), opts, lines)
    }

    fn run_with(ring: &Keyring, opts: Options, lines: &[String]) -> Report {
        let mut v = Verifier::new(ring, opts);
        let text = lines.join("\n");
        v.verify_reader("mem", std::io::Cursor::new(text.into_bytes()), &mut |_| {})
            .unwrap();
        v.finish()
    }

    fn kinds(r: &Report) -> Vec<(u64, &'static str)> {
        r.findings
            .iter()
            .map(|f| (f.index, f.kind.name()))
            .collect()
    }

    fn signed_chain(key: &zt_core::crypto::SigningKey, n: u64) -> Vec<String> {
        let mut prev = Hash32::ZERO;
        (0..n)
            .map(|seq| {
                let s = V1Draft {
                    chain_id: "c".into(),
                    seq,
                    actor: "a".into(),
                    action: "x".into(),
                    resource: "r".into(),
                    decision: "allow".into(),
                    reason: "genuine".into(),
                    timestamp: "2026-10-01T00:00:00Z".into(),
                    previous_hash: prev,
                    context: None,
                }
                .seal(Some((key, "k")));
                prev = s.current_hash;
                s.json
            })
            .collect()
    }

    /// A forged successor read before the genuine one takes nothing: the genuine record and
    /// what follows it are the main line (as the store places them), the forgery the only
    /// finding. A record read twice is named a replay.
    #[test]
    fn a_forged_successor_read_first_does_not_take_the_place() {
        let key = zt_core::crypto::SigningKey::generate();
        let mut ring = Keyring::new();
        ring.insert(zt_core::keyring::KeyEntry::new("k", key.public_key()))
            .unwrap();
        let genuine = signed_chain(&key, 3);
        let a: Envelope = Envelope::from_json(genuine[0].as_bytes()).unwrap();
        let forged = V1Draft {
            chain_id: "c".into(),
            seq: 1,
            actor: "a".into(),
            action: "x".into(),
            resource: "r".into(),
            decision: "allow".into(),
            reason: "forged".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            previous_hash: a.current_hash,
            context: None,
        }
        .seal(None)
        .json;
        let lines = [
            genuine[0].clone(),
            forged,
            genuine[1].clone(),
            genuine[2].clone(),
        ];
        let r = run_with(&ring, Options::default(), &lines);
        assert_eq!(kinds(&r), vec![(1, "unsigned")], "{:?}", r.errors);
        let head = Envelope::from_json(genuine[2].as_bytes())
            .unwrap()
            .current_hash;
        assert_eq!(r.chains[0].head, Some(head.to_hex()));

        let replayed = [genuine[0].clone(), genuine[1].clone(), genuine[1].clone()];
        let r = run_with(&ring, Options::default(), &replayed);
        assert_eq!(kinds(&r), vec![(2, "fork")], "{:?}", r.errors);
        assert!(r.errors[0].contains("replayed"), "{:?}", r.errors);
    }

    /// Execution records name the allow they ran under: a link to a main-line allow of the
    /// same agent under the same capability holds; one naming
    /// nothing, a decision nobody made, or another capability is `execution_unlinked`.
    #[test]
    fn execution_records_must_name_their_allow_and_carry_a_brokers_signature() {
        use zt_core::capability::report::{
            broker_key_id, Attestation, BrokerKey, ExecutionReport, Outcome,
        };
        let key = zt_core::crypto::SigningKey::generate();
        let broker = zt_core::crypto::SigningKey::generate();
        let mut ring = Keyring::new();
        ring.insert(zt_core::keyring::KeyEntry::new("k", key.public_key()))
            .unwrap();
        let ctx = |json: &str| match zt_core::json::parse(json.as_bytes()).unwrap() {
            zt_core::json::Value::Object(m) => Some(m),
            _ => None,
        };
        let mut prev = Hash32::ZERO;
        let mut seal = |seq: u64,
                        actor: &str,
                        action: &str,
                        decision: &str,
                        context: Option<zt_core::json::Map>| {
            let s = V1Draft {
                chain_id: "c".into(),
                seq,
                actor: actor.into(),
                action: action.into(),
                resource: "r".into(),
                decision: decision.into(),
                reason: "r".into(),
                timestamp: "2026-10-01T00:00:00Z".into(),
                previous_hash: prev,
                context,
            }
            .seal(Some((&key, "k")));
            prev = s.current_hash;
            (s.json, s.current_hash)
        };
        let on_record = BrokerKey {
            broker: "b1".into(),
            key_id: broker_key_id(&broker.public_key()),
            public_key: broker.public_key(),
        };
        let mut reg = zt_core::json::Map::new();
        for (k, v) in on_record.context_members() {
            reg.push(k.into(), v);
        }
        // The registration is on the control plane's own chain.
        let registration = V1Draft {
            chain_id: "c.admin".into(),
            seq: 0,
            actor: "zt.admin".into(),
            action: REGISTER_ACTION.into(),
            resource: "broker/b1".into(),
            decision: "allow".into(),
            reason: "r".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            previous_hash: Hash32::ZERO,
            context: Some(reg),
        }
        .seal(Some((&key, "k")))
        .json;
        let (allow, h) = seal(
            0,
            "a",
            "files.read",
            "allow",
            ctx(r#"{"capability":{"id":"cap-1"}}"#),
        );
        let report = |cap: &str, decision: &Hash32| ExecutionReport {
            decision: *decision,
            capability_id: cap.into(),
            actor: "a".into(),
            broker: "b1".into(),
            grants: zt_core::capability::Grants::default(),
            command: vec!["/usr/bin/true".into()],
            landlock_abi: Some(6),
            unscoped: false,
            outcome: Outcome::Ran {
                exit_code: Some(0),
                signal: None,
                duration_ms: 1,
                stopped: None,
            },
        };
        let exec = |cap: &str, decision: &Hash32, signer: Option<&zt_core::crypto::SigningKey>| {
            let r = report(cap, decision);
            let mut m = zt_core::json::Map::new();
            m.push(
                "decision".into(),
                zt_core::json::Value::String(decision.to_hex()),
            );
            m.push(
                "capability_id".into(),
                zt_core::json::Value::String(cap.into()),
            );
            m.push("report".into(), r.to_value());
            if let Some(k) = signer {
                let mut a = Attestation::sign(&r, "b1", k);
                a.key_id = on_record.key_id.clone();
                m.push("attestation".into(), a.to_value());
            }
            Some(m)
        };
        let (good, _) = seal(
            1,
            "a",
            EXECUTION_ACTION,
            "allow",
            exec("cap-1", &h, Some(&broker)),
        );
        let (other_cap, _) = seal(
            2,
            "a",
            EXECUTION_ACTION,
            "allow",
            exec("cap-2", &h, Some(&broker)),
        );
        let (other_agent, _) = seal(
            3,
            "b",
            EXECUTION_ACTION,
            "allow",
            exec("cap-1", &h, Some(&broker)),
        );
        let (nobody, _) = seal(
            4,
            "a",
            EXECUTION_ACTION,
            "allow",
            exec("cap-1", &Hash32([7; 32]), Some(&broker)),
        );
        let (nothing, _) = seal(5, "a", EXECUTION_ACTION, "allow", None);
        let (unsigned, _) = seal(6, "a", EXECUTION_ACTION, "allow", exec("cap-1", &h, None));
        let forger = zt_core::crypto::SigningKey::generate();
        let (forged, _) = seal(
            7,
            "a",
            EXECUTION_ACTION,
            "allow",
            exec("cap-1", &h, Some(&forger)),
        );
        let (claim, _) = seal(8, "a", EXECUTION_ACTION, "deny", exec("cap-1", &h, None));

        let r = run_with(
            &ring,
            Options::default(),
            &[registration.clone(), allow.clone(), good.clone()],
        );
        assert!(r.ok, "{:?}", r.errors);
        assert_eq!((r.executions.attested, r.executions.vouched), (1, 0));
        assert_eq!(
            r.executions.brokers,
            vec![format!("b1 ({})", on_record.key_id)]
        );
        // the registration not in what was read: the control plane vouched, nothing checked here
        let r = run_with(&ring, Options::default(), &[allow.clone(), good.clone()]);
        assert!(r.ok, "{:?}", r.errors);
        assert_eq!((r.executions.attested, r.executions.vouched), (0, 1));

        let r = run_with(
            &ring,
            Options::default(),
            &[
                registration,
                allow,
                good,
                other_cap,
                other_agent,
                nobody,
                nothing,
                unsigned,
                forged,
                claim,
            ],
        );
        assert_eq!(
            kinds(&r),
            vec![
                (3, "execution_unlinked"),
                (3, "execution_duplicate"),
                (4, "execution_unlinked"),
                (4, "execution_duplicate"),
                (5, "execution_unlinked"),
                (6, "execution_unlinked"),
                (6, "execution_unattested"),
                (7, "execution_unattested"),
                (7, "execution_duplicate"),
                (8, "execution_unattested"),
                (8, "execution_duplicate"),
            ],
            "{:?}",
            r.errors
        );
        assert_eq!(
            r.executions.not_accepted, 1,
            "the claim is counted, not an execution"
        );
        assert!(
            r.errors.iter().any(|e| e.contains("no main-line allow")),
            "{:?}",
            r.errors
        );
    }

    /// An unsigned genesis sent first takes nothing: the genuine chain's head is the head, and
    /// the forgery is the one finding. A second genuine genesis after it is a fork.
    #[test]
    fn a_forged_genesis_first_does_not_hold_the_chain() {
        let key = zt_core::crypto::SigningKey::generate();
        let mut ring = Keyring::new();
        ring.insert(zt_core::keyring::KeyEntry::new("k", key.public_key()))
            .unwrap();
        let genuine = signed_chain(&key, 3);
        let mut lines = vec![chain(1).remove(0)];
        lines.extend(genuine.iter().cloned());
        let r = run_with(&ring, Options::default(), &lines);
        let found = kinds(&r);
        assert_eq!(found, [(0, "unsigned")]);
        let head = Envelope::from_json(genuine[2].as_bytes())
            .unwrap()
            .current_hash;
        assert_eq!(r.chains[0].head, Some(head.to_hex()));

        let mut lines = genuine.clone();
        let resealed = V1Draft {
            chain_id: "c".into(),
            seq: 0,
            actor: "a".into(),
            action: "x".into(),
            resource: "r".into(),
            decision: "allow".into(),
            reason: "a second start".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            previous_hash: Hash32::ZERO,
            context: None,
        }
        .seal(Some((&key, "k")));
        lines.push(resealed.json);
        let r = run_with(&ring, Options::default(), &lines);
        let found = kinds(&r);
        assert_eq!(found, [(3, "fork")]);
        assert_eq!(r.chains[0].head, Some(head.to_hex()));
    }

    /// Several batches: order, counts and positions survive the pipeline.
    #[test]
    fn findings_keep_input_order_across_batches() {
        let mut lines = chain(5000);
        assert!(run(&lines).ok);
        lines.remove(3000); // deleted record: link and seq break at new index 3000
        lines[4500] = "garbage".into();
        let r = run(&lines);
        assert_eq!(r.records, 4999);
        let got: Vec<(u64, &str)> = r
            .findings
            .iter()
            .map(|f| (f.index, f.kind.name()))
            .collect();
        assert_eq!(
            got,
            [
                (3000, "broken_link"),
                (3000, "seq_gap"),
                (4500, "malformed"),
                // the unreadable record's successor cannot link, and skips its seq
                (4501, "broken_link"),
                (4501, "seq_gap")
            ]
        );
        assert_eq!(r.chains[0].records, 4998);
    }
}
