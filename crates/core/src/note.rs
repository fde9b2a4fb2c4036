//! Signed notes (`c2sp.org/signed-note`) and transparency-log checkpoints
//! (`c2sp.org/tlog-checkpoint`): the formats Go's checksum database, Sigsum, Rekor v2 and the
//! witness network speak, so that what zt-audit signs can be checked by tools it did not write.
//!
//! A note is text ending in a newline, a blank line, and signature lines `— NAME
//! base64(key ID || signature)`. A verifier holds keys as *verifier keys*,
//! `NAME+hex(key ID)+base64(type || public key)`. Verification follows the specification to
//! the letter: signatures by unknown keys are ignored (witness cosignatures, a rotated key);
//! a signature by a known key that does not verify rejects the whole note; a note no known key
//! verified is rejected. Only Ed25519 (type `0x01`) is implemented: it is what the witness
//! network requires.
//!
//! Notes are bounded (`MAX_NOTE` bytes, `MAX_SIGNATURES` signatures, at least the 16 the
//! specification requires) and checked for what the specification forbids (invalid UTF-8,
//! control characters, names with spaces or `+`) before anything is verified.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use crate::hash::Hash32;

/// The largest note accepted, in bytes.
pub const MAX_NOTE: usize = 64 * 1024;
/// The most signature lines accepted on one note (Go's `sumdb/note` accepts 100 too; the
/// specification asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// The signature type byte of Ed25519 (`c2sp.org/signed-note`).
pub const ED25519: u8 = 0x01;

/// Why a note, a key or a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Larger than [`MAX_NOTE`].
    #[error("note of {len} bytes, over the {MAX_NOTE}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// A control character other than a newline.
    #[error("note holds control character U+{code:04X} at byte {offset}")]
    Control {
        /// Where.
        offset: usize,
        /// Which.
        code: u32,
    },
    /// No blank line separating a text ending in a newline from signature lines.
    #[error("note has no text, blank line and signature lines")]
    Shape,
    /// A signature line that is not `— NAME BASE64`.
    #[error("signature line {line}: {why}")]
    SignatureLine {
        /// 1-based, among the signature lines.
        line: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("{count} signature lines, over the limit of {MAX_SIGNATURES}")]
    TooManySignatures {
        /// How many.
        count: usize,
    },
    /// A key name that is empty or holds a space or `+`.
    #[error("key name {name:?} is empty or holds a space or `+`")]
    KeyName {
        /// The name.
        name: String,
    },
    /// A verifier key that is not `NAME+HEX8+BASE64`, or whose ID is not its own.
    #[error("verifier key: {why}")]
    VerifierKey {
        /// What is wrong.
        why: &'static str,
    },
    /// A signature by a known key that does not verify: the whole note is rejected.
    #[error("the signature of {name} (key {id:08x}) does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key's ID.
        id: u32,
    },
    /// No signature by a known key.
    #[error("no signature by a known key")]
    Unverified,
    /// Text that cannot be signed: empty, not ending in a newline, with a control character.
    #[error("text to sign: {why}")]
    Text {
        /// What is wrong.
        why: &'static str,
    },
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key's name.
    pub name: String,
    /// The key's ID (the first four bytes of the line's base64).
    pub id: u32,
    /// The signature itself.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, without its newline: `— NAME base64(ID || signature)`.
    pub fn line(&self) -> String {
        let mut raw = self.id.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}", self.name, B64.encode(raw))
    }
}

/// A note as read: its text and its signature lines, none verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, with its final newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Reads a note's shape (no signature is checked: see [`open`]).
    ///
    /// # Errors
    /// Anything the specification forbids, or over the limits.
    pub fn parse(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > MAX_NOTE {
            return Err(NoteError::TooLarge { len: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        check_controls(text)?;
        // The text ends at the last blank line; what follows is signatures, each ending in a
        // newline.
        let split = text.rfind("\n\n").ok_or(NoteError::Shape)?;
        let (body, sigs) = (&text[..=split], &text[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Shape);
        }
        let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { count: lines.len() });
        }
        let signatures = lines
            .iter()
            .enumerate()
            .map(|(i, l)| signature_line(i + 1, l))
            .collect::<Result<_, _>>()?;
        Ok(Note {
            text: body.to_owned(),
            signatures,
        })
    }

    /// The note as bytes: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
            out.push('\n');
        }
        out
    }
}

fn check_controls(text: &str) -> Result<(), NoteError> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(NoteError::Control {
            offset,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

fn signature_line(line: usize, l: &str) -> Result<NoteSignature, NoteError> {
    let bad = |why| NoteError::SignatureLine { line, why };
    let rest = l
        .strip_prefix("\u{2014} ")
        .ok_or(bad("does not start with an em dash and a space"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(bad("no space between the key name and the signature"))?;
    check_name(name)?;
    let raw = B64
        .decode(b64)
        .map_err(|_| bad("the signature is not base64"))?;
    if raw.len() < 5 {
        return Err(bad("the signature is shorter than a key ID and one byte"));
    }
    let id = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
    Ok(NoteSignature {
        name: name.to_owned(),
        id,
        signature: raw[4..].to_vec(),
    })
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::KeyName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// `SHA-256(name || 0x0A || type || public key)[:4]`, the key ID the specification recommends.
pub fn key_id(name: &str, kind: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key that verifies notes: its name, its ID, its Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: ed25519_dalek::VerifyingKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl VerifierKey {
    /// The verifier key of an Ed25519 public key under `name`.
    ///
    /// # Errors
    /// A name the specification forbids.
    pub fn ed25519(name: &str, key: ed25519_dalek::VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            id: key_id(name, ED25519, key.as_bytes()),
            name: name.to_owned(),
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Checks one signature of `text` by this key.
    fn verifies(&self, text: &str, sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(text.as_bytes(), &sig).is_ok()
    }
}

impl fmt::Display for VerifierKey {
    /// `NAME+hex(ID)+base64(0x01 || public key)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

impl std::str::FromStr for VerifierKey {
    type Err = NoteError;

    /// Reads `NAME+HEX8+BASE64`; the ID must be the one the name and key give.
    fn from_str(s: &str) -> Result<Self, NoteError> {
        let bad = |why| NoteError::VerifierKey { why };
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not NAME+ID+KEY"));
        };
        check_name(name)?;
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key ID is not 8 hex digits"));
        }
        let id = u32::from_str_radix(hex, 16).map_err(|_| bad("the key ID is not hex"))?;
        let raw = B64.decode(b64).map_err(|_| bad("the key is not base64"))?;
        let Some((&kind, key)) = raw.split_first() else {
            return Err(bad("the key is empty"));
        };
        if kind != ED25519 {
            return Err(bad("not an Ed25519 key (type 0x01)"));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
            .map_err(|_| bad("not a valid Ed25519 public key"))?;
        let vkey = Self::ed25519(name, key)?;
        if vkey.id != id {
            return Err(bad("the key ID is not the one its name and key give"));
        }
        Ok(vkey)
    }
}

/// A key that signs notes (Ed25519). `Debug` shows only its name and ID.
#[derive(Clone)]
pub struct NoteSigner {
    vkey: VerifierKey,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.vkey.name, self.vkey.id)
    }
}

impl NoteSigner {
    /// The signer of a 32-byte Ed25519 seed under `name`.
    ///
    /// # Errors
    /// A name the specification forbids.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        Ok(Self {
            vkey: VerifierKey::ed25519(name, key.verifying_key())?,
            key,
        })
    }

    /// A new random key under `name`.
    ///
    /// # Errors
    /// A name the specification forbids.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self::from_seed(name, &seed)
    }

    /// Its verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.vkey
    }

    /// Its signature line over `text`.
    pub fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.vkey.name.clone(),
            id: self.vkey.id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

/// `text` signed by each of `signers`, as a note.
///
/// # Errors
/// Text that is empty, does not end in a newline, or holds a control character.
pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<String, NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Text {
            why: "it must end in a newline",
        });
    }
    check_controls(text).map_err(|_| NoteError::Text {
        why: "it holds a control character other than a newline",
    })?;
    Ok(Note {
        text: text.to_owned(),
        signatures: signers.iter().map(|s| s.sign(text)).collect(),
    }
    .to_text())
}

/// A note some known key verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The note.
    pub note: Note,
    /// The known keys whose signatures verified (name and ID).
    pub verified_by: Vec<(String, u32)>,
}

/// Reads `bytes` as a note and checks it under `known`, as the specification says: signatures
/// by unknown keys (name and ID both matching none) are ignored; every one by a known key is
/// verified, and one that does not verify rejects the note; at least one must verify.
///
/// Go's `sumdb/note` checks only the first line of each known key and skips repeats; here a
/// forged repeat after a genuine line rejects the note, as the specification's "MUST verify"
/// reads. `verified_by` names each key once.
///
/// # Errors
/// A malformed note, a signature that does not verify, or none by a known key.
pub fn open(bytes: &[u8], known: &[VerifierKey]) -> Result<Opened, NoteError> {
    let note = Note::parse(bytes)?;
    let mut verified_by = Vec::new();
    for s in &note.signatures {
        let Some(k) = known.iter().find(|k| k.name == s.name && k.id == s.id) else {
            continue;
        };
        if !k.verifies(&note.text, &s.signature) {
            return Err(NoteError::BadSignature {
                name: s.name.clone(),
                id: s.id,
            });
        }
        if !verified_by.iter().any(|(n, i)| *n == s.name && *i == s.id) {
            verified_by.push((s.name.clone(), s.id));
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::Unverified);
    }
    Ok(Opened { note, verified_by })
}

/// Why a checkpoint's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Fewer than three lines, an empty line, or no final newline.
    #[error("checkpoint text: {0}")]
    Shape(&'static str),
    /// The size line.
    #[error("checkpoint size {0:?} is not a decimal without leading zeroes that fits 64 bits")]
    Size(String),
    /// The root line.
    #[error("checkpoint root {0:?} is not the base64 of 32 bytes")]
    Root(String),
}

/// A log's tree head as a checkpoint's text (`c2sp.org/tlog-checkpoint`): origin, size, root,
/// and opaque extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The RFC 6962 root at that size.
    pub root: Hash32,
    /// Extension lines (not recommended; non-empty each).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Reads a checkpoint from a note's text.
    ///
    /// # Errors
    /// Anything the specification forbids.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Shape("it does not end in a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::Shape(
                "fewer than three lines (origin, size, root)",
            ));
        }
        if lines.iter().any(|l| l.is_empty()) {
            return Err(CheckpointError::Shape("an empty line"));
        }
        let size = lines[1];
        let digits = size.bytes().all(|b| b.is_ascii_digit());
        let size_ok = digits && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| size_ok)
            .ok_or_else(|| CheckpointError::Size(lines[1].to_owned()))?;
        let root = B64
            .decode(lines[2])
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r).ok())
            .ok_or_else(|| CheckpointError::Root(lines[2].to_owned()))?;
        Ok(Self {
            origin: lines[0].to_owned(),
            size,
            root: Hash32(root),
            extensions: lines[3..].iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The checkpoint's text, ready to sign as a note.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of `c2sp.org/signed-note`.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn signer(name: &str, n: u8) -> NoteSigner {
        NoteSigner::from_seed(name, &[n; 32]).expect("signer")
    }

    #[test]
    fn the_specifications_example_verifies_and_round_trips() {
        let vkey: VerifierKey = SPEC_VKEY.parse().expect("vkey");
        assert_eq!(vkey.to_string(), SPEC_VKEY);
        assert_eq!(vkey.id(), 0x530d_903a);
        let opened = open(SPEC_NOTE.as_bytes(), &[vkey]).expect("verifies");
        assert_eq!(opened.note.text, "This is an example message.\n");
        assert_eq!(opened.note.to_text(), SPEC_NOTE);
        // One changed byte of text: the known key's signature fails, the note is rejected.
        let edited = SPEC_NOTE.replacen("example", "exbmple", 1);
        let vkey: VerifierKey = SPEC_VKEY.parse().expect("vkey");
        assert!(matches!(
            open(edited.as_bytes(), &[vkey]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn unknown_keys_are_ignored_but_one_known_key_must_verify() {
        let (log, witness, other) = (signer("log.test/a", 1), signer("w.test", 2), signer("x", 3));
        let note = sign("hello\n\nworld\n", &[&log, &witness]).expect("signs");
        let opened = open(note.as_bytes(), &[log.verifier().clone()]).expect("log verifies");
        assert_eq!(
            opened.note.text, "hello\n\nworld\n",
            "the text may hold blank lines"
        );
        assert_eq!(
            opened.verified_by,
            [("log.test/a".to_owned(), log.verifier().id())]
        );
        assert_eq!(
            open(note.as_bytes(), &[other.verifier().clone()]),
            Err(NoteError::Unverified)
        );
        // The same name with another key (so another ID) is an unknown key, not a failure.
        let impostor = signer("log.test/a", 9);
        assert_eq!(
            open(note.as_bytes(), &[impostor.verifier().clone()]),
            Err(NoteError::Unverified)
        );
        // The same genuine line twice: verified, and the key named once.
        let mut twice = Note::parse(note.as_bytes()).expect("parses");
        twice.signatures.push(twice.signatures[0].clone());
        let opened = open(twice.to_text().as_bytes(), &[log.verifier().clone()]).expect("twice");
        assert_eq!(opened.verified_by.len(), 1);
        // A forged line under the known name and ID rejects the note even beside a good one.
        let mut forged = Note::parse(note.as_bytes()).expect("parses");
        let mut bad = forged.signatures[0].clone();
        bad.signature[0] ^= 1;
        forged.signatures.push(bad);
        assert!(matches!(
            open(forged.to_text().as_bytes(), &[log.verifier().clone()]),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_notes_and_keys_are_named() {
        let log = signer("log.test/a", 1);
        let good = sign("text\n", &[&log]).expect("signs");
        type Expected = fn(&NoteError) -> bool;
        let cases: [(&[u8], Expected); 7] = [
            (b"text\n\xff\n\n\xe2\x80\x94 a AAAAAAA=\n", |e| {
                *e == NoteError::NotUtf8
            }),
            (b"te\x07xt\n\n", |e| {
                matches!(e, NoteError::Control { offset: 2, code: 7 })
            }),
            (b"no signatures\n", |e| *e == NoteError::Shape),
            (b"text\n\n- a AAAAAAA=\n", |e| {
                matches!(e, NoteError::SignatureLine { line: 1, .. })
            }),
            ("text\n\n\u{2014} a+b AAAAAAA=\n".as_bytes(), |e| {
                matches!(e, NoteError::KeyName { .. })
            }),
            ("text\n\n\u{2014} a AAAA\n".as_bytes(), |e| {
                matches!(e, NoteError::SignatureLine { .. })
            }),
            (good.trim_end().as_bytes(), |e| *e == NoteError::Shape),
        ];
        for (bytes, expected) in cases {
            let e = Note::parse(bytes).expect_err("refused");
            assert!(expected(&e), "{:?}: {e:?}", String::from_utf8_lossy(bytes));
        }
        let many = format!(
            "t\n\n{}",
            format!("{}\n", log.sign("t\n").line()).repeat(MAX_SIGNATURES + 1)
        );
        assert!(matches!(
            Note::parse(many.as_bytes()),
            Err(NoteError::TooManySignatures { .. })
        ));
        assert!(matches!(
            Note::parse(&vec![b'a'; MAX_NOTE + 1]),
            Err(NoteError::TooLarge { .. })
        ));
        // A verifier key whose ID is not its own, of another type, or cut short.
        let vkey = log.verifier().to_string();
        let (name, rest) = vkey.split_once('+').expect("plus");
        let wrong_id = format!("{name}+00000000{}", &rest[8..]);
        for bad in [
            wrong_id.as_str(),
            "a+530d903a+AgAA",
            "a+530d903a",
            "a b+530d903a+AQ==",
        ] {
            assert!(bad.parse::<VerifierKey>().is_err(), "{bad}");
        }
        assert!(sign("no newline", &[&log]).is_err());
        // DEL is not below U+0020: the specification allows it, as Go does.
        let del = sign("rub\u{7f}out\n", &[&log]).expect("DEL is allowed");
        assert!(open(del.as_bytes(), &[log.verifier().clone()]).is_ok());
        assert!(sign("bell\u{7}\n", &[&log]).is_err());
    }

    #[test]
    fn checkpoints_read_and_write_as_the_specification_shows() {
        let text =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let c = Checkpoint::parse(text).expect("parses");
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("example.com/behind-the-sofa", 20_852_163)
        );
        assert!(c.extensions.is_empty());
        assert_eq!(c.to_text(), text);
        let ext = format!("{text}ext one\n");
        assert_eq!(
            Checkpoint::parse(&ext).expect("ext").extensions,
            ["ext one"]
        );
        for bad in [
            "o\n01\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
            "o\n1\nAAAA\n",
            "o\n1\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n",
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Checkpoint::parse("o\n0\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
                .expect("empty tree")
                .size,
            0
        );
    }
}
