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
//! Chains: a v1 record names its chain (`chain_id`). Lineage records have no chain id: a file
//! is one chain, a file whose first record continues the head of a chain read from an earlier
//! file extends that chain (rotated logs), and a record with the zero `previous_hash` in the
//! middle of a file starts a new chain (`FILE#2`), as the lineage's auditor does on a restart.
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
mod store;

pub use store::verify_store;

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use rayon::prelude::*;
use zt_core::envelope::{shorten, Envelope, RecordError, SignatureKind};
use zt_core::keyring::{Keyring, WindowViolation};
use zt_core::{crypto, Hash32, Profile};

use finding::{hash_or_empty, profile_name};
pub use finding::{ChainSummary, Finding, FindingKind, Report};
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

/// Outcome of the signature check of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigOutcome {
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
    /// Does not verify (or cannot: not base64, not DER, unsupported algorithm, signer mismatch).
    Bad(String),
}

impl SigOutcome {
    /// Short status name, as stored (`verified`, `unsigned`, `mock`, `unknown_key`,
    /// `key_not_valid`, `bad_signature`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Unsigned => "unsigned",
            Self::Mock => "mock",
            Self::UnknownKey => "unknown_key",
            Self::KeyNotValid(_) => "key_not_valid",
            Self::Bad(_) => "bad_signature",
        }
    }
}

/// Everything the per-record check learns: the shared validation path of `verify`, `import`
/// and the ingest server.
#[derive(Debug)]
pub struct Inspection {
    /// The envelope.
    pub envelope: Envelope,
    /// The first candidate profile whose hash recomputes (`None`: the hash does not).
    pub matched: Option<Profile>,
    /// The signature check.
    pub signature: SigOutcome,
}

/// Parses and checks one record on its own (hash under each candidate profile, signature,
/// key window). `Err` names what makes it unreadable.
pub fn inspect(
    bytes: &[u8],
    keyring: &Keyring,
    forced: Option<Profile>,
) -> Result<Inspection, String> {
    let env = Envelope::from_json(bytes).map_err(|e| match e {
        RecordError::Json(j) => format!("not JSON: {} at column {}", j.message, j.column),
        RecordError::Envelope(e) => format!("not an audit envelope: {e}"),
    })?;
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
    recomputed: Vec<(Profile, Result<Hash32, &'static str>)>,
    sig: SigOutcome,
    key_id: String,
    sig_algorithm: String,
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
    /// (file, index) of the first record that named this one as its predecessor.
    successor: Option<(u32, u64)>,
}

#[derive(Debug)]
struct Chain {
    name: String,
    /// v1 chain (named by its records), not a lineage file chain.
    sequenced: bool,
    profile: Option<Profile>,
    records: u64,
    last: Option<Hash32>,
    last_seq: Option<u64>,
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
    fn new(name: String) -> Self {
        Self {
            name,
            sequenced: false,
            profile: None,
            records: 0,
            last: None,
            last_seq: None,
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
    chains: Vec<Chain>,
    by_id: HashMap<String, usize>,
    findings: Vec<Finding>,
    io_errors: Vec<String>,
    records: u64,
    files: usize,
    names: HashMap<String, u32>,
}

impl<'k> Verifier<'k> {
    /// A run with these keys and options.
    pub fn new(keyring: &'k Keyring, opts: Options) -> Self {
        Self {
            keyring,
            opts,
            chains: Vec::new(),
            by_id: HashMap::new(),
            findings: Vec::new(),
            io_errors: Vec::new(),
            records: 0,
            files: 0,
            names: HashMap::new(),
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

        // Which chain?
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
            None => match file.lineage_chain {
                Some(ci)
                    if !(facts.previous_hash == Hash32::ZERO && self.chains[ci].records > 0) =>
                {
                    ci
                }
                Some(_) => {
                    let ci = self.new_chain(&file.name);
                    file.lineage_chain = Some(ci);
                    ci
                }
                None => {
                    // A rotated log continues the chain whose head it links to.
                    let cont = if facts.previous_hash == Hash32::ZERO {
                        None
                    } else {
                        self.chains
                            .iter()
                            .position(|ch| !ch.sequenced && ch.last == Some(facts.previous_hash))
                    };
                    let ci = match cont {
                        Some(ci) => ci,
                        None => self.new_chain(&file.name),
                    };
                    file.lineage_chain = Some(ci);
                    ci
                }
            },
        };
        let fname = file.name.clone();
        let file_ord = u32::try_from(file.ord).unwrap_or(u32::MAX);
        let chain_name = self.chains[ci].name.clone();
        let mut out: Vec<(FindingKind, String, String, String)> = Vec::new();

        // 1. Hash under the chain's profile.
        let chain = &mut self.chains[ci];
        if chain.profile.is_none() {
            chain.profile = facts
                .matched
                .or_else(|| facts.recomputed.first().map(|(p, _)| *p));
        }
        let profile = chain.profile;
        if facts.matched != profile || facts.matched.is_none() {
            let under = facts.recomputed.iter().find(|(p, _)| Some(*p) == profile);
            let (expected, why) = match under {
                Some((_, Ok(h))) => (h.to_hex(), String::new()),
                Some((_, Err(why))) => (String::new(), format!(" ({why})")),
                None => (String::new(), String::new()),
            };
            let pname = profile.map(Profile::name).unwrap_or("?");
            let message = match facts.matched {
                Some(other) => format!(
                    "current_hash matches profile {other}, but this chain is {pname}: profiles do not mix within a chain"
                ),
                None => format!("current_hash does not match the record's content under profile {pname}{why}"),
            };
            out.push((
                FindingKind::HashMismatch,
                expected,
                facts.current_hash.to_hex(),
                message,
            ));
        }

        // 2. Genesis, link, fork, sequence.
        let mut forked = false;
        match chain.last {
            None => {
                if facts.previous_hash != Hash32::ZERO {
                    out.push((
                        FindingKind::BadGenesis,
                        Hash32::ZERO.to_hex(),
                        facts.previous_hash.to_hex(),
                        "first record of the chain does not start at the zero hash (records missing before it?)".into(),
                    ));
                } else if let Some(seq) = facts.seq {
                    if seq != 0 {
                        out.push((
                            FindingKind::SeqGap,
                            "0".into(),
                            seq.to_string(),
                            "first record of the chain must have seq 0".into(),
                        ));
                    }
                }
            }
            // Linked: nothing to report here; the sequence is checked below.
            Some(last) if last == facts.previous_hash => {}
            Some(last) => {
                let known = chain.seen.get(&facts.previous_hash).copied();
                match known {
                    Some(s @ Seen {
                        successor: Some((succ_file, succ_index)),
                        ..
                    }) => {
                        forked = true;
                        let dup = chain.seen.contains_key(&facts.current_hash);
                        out.push((
                            FindingKind::Fork,
                            last.to_hex(),
                            facts.previous_hash.to_hex(),
                            if dup {
                                "record appears twice in the chain (replayed)".into()
                            } else {
                                format!(
                                    "record {} already has a successor (record {}); this is a second one",
                                    pos_name(s.file_ord, s.index, file_ord),
                                    pos_name(succ_file, succ_index, file_ord)
                                )
                            },
                        ));
                    }
                    Some(s) => out.push((
                        FindingKind::BrokenLink,
                        last.to_hex(),
                        facts.previous_hash.to_hex(),
                        format!(
                            "previous_hash names record {}, not the record before this one (reordered?)",
                            pos_name(s.file_ord, s.index, file_ord)
                        ),
                    )),
                    None => {
                        let why = match file.last_malformed {
                            Some(i) if i + 1 == c.index => format!("; record {i} before it is unreadable"),
                            _ => String::new(),
                        };
                        out.push((
                            FindingKind::BrokenLink,
                            last.to_hex(),
                            facts.previous_hash.to_hex(),
                            format!("previous_hash is not the preceding record's current_hash (records deleted or reordered?){why}"),
                        ));
                    }
                }
            }
        }
        // v1 sequence after the first record; a fork's own seq is explained by the fork.
        if chain.last.is_some() && !forked {
            if let (Some(prev), Some(seq)) = (chain.last_seq, facts.seq) {
                if seq != prev.saturating_add(1) {
                    out.push((
                        FindingKind::SeqGap,
                        (prev.saturating_add(1)).to_string(),
                        seq.to_string(),
                        format!("seq jumps from {prev} to {seq}"),
                    ));
                }
            }
        }
        if let Some(s) = chain.seen.get_mut(&facts.previous_hash) {
            s.successor.get_or_insert((file_ord, c.index));
        }
        chain.seen.entry(facts.current_hash).or_insert(Seen {
            file_ord,
            index: c.index,
            successor: None,
        });
        chain.last = Some(facts.current_hash);
        chain.last_seq = facts.seq;
        chain.records += 1;
        chain.last_pos = (file.ord, c.index, c.line);
        if chain.files.last() != Some(&fname) {
            chain.files.push(fname.clone());
        }

        // 3. Signature.
        let allow = self.opts.allow_unsigned;
        match &facts.sig {
            SigOutcome::Verified => {
                chain.verified += 1;
                chain.keys.insert(facts.key_id.clone());
            }
            SigOutcome::Unsigned if allow => chain.unsigned_allowed += 1,
            SigOutcome::Mock if allow => chain.unsigned_allowed += 1,
            SigOutcome::Unsigned => out.push((
                FindingKind::Unsigned,
                crypto::ALGORITHM.into(),
                if facts.sig_algorithm.is_empty() {
                    "no signature".into()
                } else {
                    facts.sig_algorithm.clone()
                },
                "record is not signed (pass --allow-unsigned to accept, never as verified)".into(),
            )),
            SigOutcome::Mock => out.push((
                FindingKind::MockSignature,
                crypto::ALGORITHM.into(),
                facts.sig_algorithm.clone(),
                "MOCK_ECDSA_SHA_256 is a demo label, not a signature".into(),
            )),
            SigOutcome::UnknownKey => out.push((
                FindingKind::UnknownKey,
                "a key_id in the keyring".into(),
                facts.key_id.clone(),
                format!(
                    "signing key {:?} is not in the keyring",
                    shorten(&facts.key_id)
                ),
            )),
            SigOutcome::KeyNotValid(v) => out.push((
                FindingKind::KeyNotValid,
                v.to_string(),
                facts.current_hash.to_hex(),
                format!(
                    "signed by {:?} outside its validity window: {v}",
                    shorten(&facts.key_id)
                ),
            )),
            SigOutcome::Bad(why) => out.push((
                FindingKind::BadSignature,
                format!("a valid signature by {}", shorten(&facts.key_id)),
                why.clone(),
                format!("signature does not verify: {why}"),
            )),
        }

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
                        found: hash_or_empty(c.last),
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
        // Input order: file, then position; stable for several findings on one record.
        self.findings.sort_by_key(|f| (f.file_ord, f.index));
        let chains: Vec<ChainSummary> = self
            .chains
            .iter()
            .map(|c| ChainSummary {
                chain: c.name.clone(),
                profile: profile_name(c.profile),
                records: c.records,
                head: c.last.map(|h| h.to_hex()),
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
        }
    }
}

fn pos_name(of_file: u32, index: u64, current_file: u32) -> String {
    if of_file == current_file {
        format!("{index}")
    } else {
        format!("{index} of an earlier input")
    }
}

/// Stage 1: everything about one record that does not depend on its neighbours.
fn check_record(bytes: &[u8], keyring: &Keyring, forced: Option<Profile>) -> Result<Facts, String> {
    let Inspection {
        envelope: env,
        matched,
        signature,
    } = inspect(bytes, keyring, forced)?;
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
        sig: signature,
        key_id: env.signature.key_id,
        sig_algorithm: env.signature.algorithm,
    })
}

fn check_signature(env: &Envelope, keyring: &Keyring) -> SigOutcome {
    let s = &env.signature;
    if let Some(v1) = &env.v1 {
        // The hashed signer must be the one that signed.
        if v1.signer_algorithm != s.algorithm || v1.signer_key_id != s.key_id {
            return SigOutcome::Bad(format!(
                "kms_signature ({} by {:?}) differs from the hashed signer ({} by {:?})",
                shorten(&s.algorithm),
                shorten(&s.key_id),
                shorten(&v1.signer_algorithm),
                shorten(&v1.signer_key_id)
            ));
        }
    }
    match s.kind() {
        SignatureKind::Unsigned => return SigOutcome::Unsigned,
        SignatureKind::Mock => return SigOutcome::Mock,
        SignatureKind::Unsupported => {
            return SigOutcome::Bad(format!(
                "unsupported signature algorithm {:?}",
                shorten(&s.algorithm)
            ))
        }
        SignatureKind::Ecdsa => {}
    }
    let Some(key) = keyring.get(&s.key_id) else {
        return SigOutcome::UnknownKey;
    };
    let der = match crypto::decode_signature(&s.signature) {
        Ok(d) => d,
        Err(e) => return SigOutcome::Bad(e.to_string()),
    };
    if let Err(e) = key.public_key.verify_digest(&env.current_hash, &der) {
        return SigOutcome::Bad(e.to_string());
    }
    match key.check_window(env.signed_at) {
        Ok(()) => SigOutcome::Verified,
        Err(v) => SigOutcome::KeyNotValid(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_core::envelope::V1Draft;

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
        let ring = Keyring::new();
        let opts = Options {
            allow_unsigned: true,
            ..Options::default()
        };
        let mut v = Verifier::new(&ring, opts);
        let text = lines.join("\n");
        v.verify_reader("mem", std::io::Cursor::new(text.into_bytes()), &mut |_| {})
            .unwrap();
        v.finish()
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
