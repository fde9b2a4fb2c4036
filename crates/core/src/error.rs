//! Errors of the contract core.
//!
//! Three families are kept apart: bad input ([`JsonError`], [`EnvelopeError`]), key material that
//! cannot be used ([`KeyError`], [`KeyringError`]), and a signature that did not verify
//! ([`SignatureError`]). A verification that fails is not an `Err` of the verifier: it is a
//! finding; these types carry the data a finding reports.

use thiserror::Error;

/// A JSON text that is not I-JSON.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{message} at line {line} column {column}")]
pub struct JsonError {
    /// What is wrong.
    pub message: String,
    /// 1-based line within the parsed text (0 when unknown).
    pub line: usize,
    /// 1-based column within the line (0 when unknown).
    pub column: usize,
}

impl JsonError {
    pub(crate) fn from_serde(e: serde_json::Error) -> Self {
        // serde_json appends " at line L column C" to its Display; keep the bare reason.
        let text = e.to_string();
        let message = match text.rfind(" at line ") {
            Some(pos) => text[..pos].to_owned(),
            None => text,
        };
        Self {
            message,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// Why a profile's hash cannot be computed for a record: the record lacks a member that
/// profile hashes. (Bad input: the record is readable, but not a record of that profile.)
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq, Hash)]
pub enum Unhashable {
    /// v1 hashes every member of a record with a `version`; this one has none.
    #[error("not a v1 record (no `version` member)")]
    NotV1,
    /// zt-infra-full hashes `resource`; this record has none.
    #[error("no `resource` member, which zt-infra-full hashes")]
    NoResource,
}

/// A JSON value that is not an audit envelope of any profile.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The record is not a JSON object.
    #[error("record is a JSON {found}, not an object")]
    NotAnObject {
        /// JSON type found.
        found: &'static str,
    },
    /// A required member is absent.
    #[error("missing member `{field}`")]
    MissingField {
        /// Member name.
        field: &'static str,
    },
    /// A member has the wrong JSON type.
    #[error("member `{field}` must be {expected}, found {found}")]
    WrongType {
        /// Member name.
        field: &'static str,
        /// Expected type.
        expected: &'static str,
        /// Type found.
        found: &'static str,
    },
    /// A hash member is not 64 lowercase hex digits.
    #[error("member `{field}` must be 64 lowercase hex digits, found {found:?}")]
    BadHash {
        /// Member name.
        field: &'static str,
        /// The value found (shortened).
        found: String,
    },
    /// A member holds a value outside its domain.
    #[error("member `{field}`: {reason}")]
    BadValue {
        /// Member name.
        field: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// The HTTP response shape carries a member both at top level and in `audit` with
    /// different values: which one was decided is ambiguous.
    #[error("member `{field}` appears both at top level and in `audit` with different values")]
    Conflict {
        /// Member name.
        field: String,
    },
}

/// A public or private key that cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not PEM, or not the expected PEM label.
    #[error("not a PEM {expected}: {reason}")]
    Pem {
        /// `PUBLIC KEY` or `PRIVATE KEY`.
        expected: &'static str,
        /// Parser message.
        reason: String,
    },
    /// Well-formed PEM but not a P-256 key (another curve, a point not on the curve, ...).
    #[error("not a usable P-256 key: {reason}")]
    NotP256 {
        /// Parser message.
        reason: String,
    },
}

/// A keyring file or `--key` argument that cannot be loaded.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyringError {
    /// Not a JSON keyring document.
    #[error("keyring is not valid JSON of the form {{\"keys\": [...]}}: {reason}")]
    Format {
        /// Parser message.
        reason: String,
    },
    /// One entry is unusable.
    #[error("keyring entry {index} (key_id {key_id:?}): {reason}")]
    Entry {
        /// 0-based position in `keys`.
        index: usize,
        /// The entry's key id ("" when absent).
        key_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The same key id names two different keys.
    #[error("key_id {key_id:?} is given twice with different public keys")]
    Conflict {
        /// The key id.
        key_id: String,
    },
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The `signature` member is not base64.
    #[error("signature is not base64: {reason}")]
    NotBase64 {
        /// Decoder message.
        reason: String,
    },
    /// Base64, but not a DER ECDSA-Sig-Value with r, s in [1, n-1].
    #[error("signature is not a DER-encoded P-256 ECDSA signature")]
    NotDer,
    /// Well-formed, but not made by this key over this digest.
    #[error("signature does not verify under the key")]
    Mismatch,
}
