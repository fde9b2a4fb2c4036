//! The audit envelope and its four profiles.
//!
//! Every profile shares the lineage's member names: `actor, action, resource, decision
//! ("allow"|"deny"), reason, timestamp, previous_hash, current_hash, kms_signature {algorithm,
//! key_id, signature}`, optional `daal` (never hashed). The profiles differ in what is hashed:
//!
//! | profile | `current_hash` = SHA-256 of |
//! |---|---|
//! | `zt-infra-full` | RFC 8785 of `{actor, action, resource, decision, reason, timestamp, previous_hash}` |
//! | `legacy` | the same without `resource` |
//! | `hello-world` | `JSON.stringify({actor, action, resource, result: decision, reason, timestamp, previousHash: previous_hash})`, that member order; `resource` left out when absent |
//! | `v1` | RFC 8785 of every member except `current_hash`, `kms_signature`, `daal` |
//!
//! `v1` adds `version: 1`, `chain_id`, `seq` (0-based), `signer {key_id, algorithm}` inside the
//! hashed part, and an optional `context` object (request id, policy id and version, identity,
//! broker). The signature is over the 32 bytes of `current_hash` in every profile.
//!
//! Two input shapes carry a record: the record itself, and the control plane's HTTP answer
//! `{ok, actor, ..., audit: {timestamp, previous_hash, current_hash, kms_signature, ...}}`,
//! which is flattened (`ok` is not part of the record). The hello-world adapter's own member
//! names `result`, `previousHash`, `currentHash` are accepted as aliases.
//!
//! Profile detection is by shape first (`version` means v1), then by which lineage hash
//! recomputes; the verifier fixes a chain's profile at its first record.

use crate::crypto::{self, SigningKey};
use crate::error::{EnvelopeError, Unhashable};
use crate::hash::Hash32;
use crate::json::{self, Map, Value};
use crate::time::Timestamp;

/// A hashing profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// The zt-infra lineage's `ActionAuditor`.
    ZtInfraFull,
    /// zt-infra before `resource` was hashed.
    Legacy,
    /// The hello-world adapter's `JSON.stringify` hash.
    HelloWorld,
    /// This project's own envelope.
    V1,
}

impl Profile {
    /// All profiles.
    pub const ALL: [Profile; 4] = [
        Profile::ZtInfraFull,
        Profile::Legacy,
        Profile::HelloWorld,
        Profile::V1,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Profile::ZtInfraFull => "zt-infra-full",
            Profile::Legacy => "legacy",
            Profile::HelloWorld => "hello-world",
            Profile::V1 => "v1",
        }
    }

    /// Parses a profile name.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether records carry a chain id and sequence number.
    pub fn is_sequenced(self) -> bool {
        self == Profile::V1
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `kms_signature` member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignatureField {
    /// `ECDSA_SHA_256`, `MOCK_ECDSA_SHA_256`, `none`, ...
    pub algorithm: String,
    /// The signing key's id.
    pub key_id: String,
    /// base64 DER.
    pub signature: String,
}

/// What kind of signature a record claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// `ECDSA_SHA_256`: must verify.
    Ecdsa,
    /// `MOCK_ECDSA_SHA_256`: a demo label, never verified.
    Mock,
    /// `none`, empty, or no `kms_signature` at all.
    Unsigned,
    /// Any other label.
    Unsupported,
}

impl SignatureField {
    /// Classifies the algorithm label.
    pub fn kind(&self) -> SignatureKind {
        match self.algorithm.as_str() {
            crypto::ALGORITHM => SignatureKind::Ecdsa,
            "MOCK_ECDSA_SHA_256" => SignatureKind::Mock,
            "none" | "" => SignatureKind::Unsigned,
            _ => SignatureKind::Unsupported,
        }
    }
}

/// The v1-only members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Fields {
    /// The chain this record belongs to.
    pub chain_id: String,
    /// Position in the chain, 0-based.
    pub seq: u64,
    /// `signer.key_id` (hashed).
    pub signer_key_id: String,
    /// `signer.algorithm` (hashed).
    pub signer_algorithm: String,
}

/// Which input shape carried the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The record itself.
    Record,
    /// An HTTP answer `{ok, ..., audit: {...}}`.
    HttpResponse,
}

/// An audit envelope, any profile, members checked for type.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Who asked.
    pub actor: String,
    /// What for.
    pub action: String,
    /// On what (absent in some lineage records).
    pub resource: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// As written.
    pub timestamp: String,
    /// Parsed `timestamp`.
    pub signed_at: Timestamp,
    /// The predecessor's `current_hash` (zero for the first record).
    pub previous_hash: Hash32,
    /// This record's hash as claimed.
    pub current_hash: Hash32,
    /// `kms_signature`.
    pub signature: SignatureField,
    /// v1 members, when `version` is present.
    pub v1: Option<V1Fields>,
    /// Input shape.
    pub shape: Shape,
    /// v1: the hashed members (all but `current_hash`, `kms_signature`, `daal`).
    hashed: Option<Map>,
    /// Lineage profiles: members outside the lineage's record (which no lineage hash covers).
    extra: Vec<String>,
}

/// The members of a lineage record; its profiles hash a subset of these (see the module
/// docs), the rest (`current_hash`, `kms_signature`, `daal`) are never hashed by design.
const LINEAGE_MEMBERS: [&str; 10] = [
    "actor",
    "action",
    "resource",
    "decision",
    "reason",
    "timestamp",
    "previous_hash",
    "current_hash",
    "kms_signature",
    "daal",
];

/// The largest `seq` (ECMAScript's `Number.MAX_SAFE_INTEGER`): every number is a double.
pub const MAX_SEQ: u64 = json::MAX_EXACT_INTEGER;

impl Envelope {
    /// Parses and checks one record from its JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let v = json::parse(bytes).map_err(RecordError::Json)?;
        Self::from_value(v).map_err(RecordError::Envelope)
    }

    /// Checks a parsed record.
    /// (Numbers were checked as texts when the record was read: [`json::parse`] refuses an
    /// integer no double holds exactly.)
    pub fn from_value(v: Value) -> Result<Self, EnvelopeError> {
        let (members, shape) = flatten(v)?;
        let get_str = |field: &'static str| -> Result<Option<&str>, EnvelopeError> {
            match members.get(field) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(EnvelopeError::WrongType {
                    field,
                    expected: "a string",
                    found: other.type_name(),
                }),
            }
        };
        let req_str = |field: &'static str| -> Result<String, EnvelopeError> {
            get_str(field)?
                .map(str::to_owned)
                .ok_or(EnvelopeError::MissingField { field })
        };
        let hash = |field: &'static str| -> Result<Hash32, EnvelopeError> {
            let s = req_str(field)?;
            Hash32::from_hex(&s).ok_or_else(|| EnvelopeError::BadHash {
                field,
                found: shorten(&s),
            })
        };

        let actor = req_str("actor")?;
        let action = req_str("action")?;
        let resource = get_str("resource")?.map(str::to_owned);
        let decision = req_str("decision")?;
        if decision != "allow" && decision != "deny" {
            return Err(EnvelopeError::BadValue {
                field: "decision",
                reason: format!(
                    "must be \"allow\" or \"deny\", found {:?}",
                    shorten(&decision)
                ),
            });
        }
        let reason = req_str("reason")?;
        let timestamp = req_str("timestamp")?;
        let signed_at =
            Timestamp::parse_rfc3339(&timestamp).ok_or_else(|| EnvelopeError::BadValue {
                field: "timestamp",
                reason: format!("{:?} is not an RFC 3339 date-time", shorten(&timestamp)),
            })?;
        let previous_hash = hash("previous_hash")?;
        let current_hash = hash("current_hash")?;
        let signature = match members.get("kms_signature") {
            None | Some(Value::Null) => SignatureField::default(),
            Some(Value::Object(m)) => {
                let s = |field: &'static str| -> Result<String, EnvelopeError> {
                    match m.get(field) {
                        None => Ok(String::new()),
                        Some(Value::String(s)) => Ok(s.clone()),
                        Some(o) => Err(EnvelopeError::WrongType {
                            field: match field {
                                "algorithm" => "kms_signature.algorithm",
                                "key_id" => "kms_signature.key_id",
                                _ => "kms_signature.signature",
                            },
                            expected: "a string",
                            found: o.type_name(),
                        }),
                    }
                };
                SignatureField {
                    algorithm: s("algorithm")?,
                    key_id: s("key_id")?,
                    signature: s("signature")?,
                }
            }
            Some(o) => {
                return Err(EnvelopeError::WrongType {
                    field: "kms_signature",
                    expected: "an object",
                    found: o.type_name(),
                })
            }
        };

        let v1 = if let Some(version) = members.get("version") {
            match version {
                Value::Number(n) if *n == 1.0 => {}
                other => {
                    return Err(EnvelopeError::BadValue {
                        field: "version",
                        reason: format!("unsupported envelope version {}", describe(other)),
                    })
                }
            }
            let chain_id = req_str("chain_id")?;
            if chain_id.is_empty() {
                return Err(EnvelopeError::BadValue {
                    field: "chain_id",
                    reason: "must not be empty".into(),
                });
            }
            let seq = match members.get("seq") {
                None => return Err(EnvelopeError::MissingField { field: "seq" }),
                Some(Value::Number(n)) => as_seq(*n).ok_or_else(|| EnvelopeError::BadValue {
                    field: "seq",
                    reason: format!("must be an integer in 0..=2^53-1, found {n}"),
                })?,
                Some(o) => {
                    return Err(EnvelopeError::WrongType {
                        field: "seq",
                        expected: "a number",
                        found: o.type_name(),
                    })
                }
            };
            let signer = match members.get("signer") {
                None => return Err(EnvelopeError::MissingField { field: "signer" }),
                Some(Value::Object(m)) => m,
                Some(o) => {
                    return Err(EnvelopeError::WrongType {
                        field: "signer",
                        expected: "an object",
                        found: o.type_name(),
                    })
                }
            };
            let signer_str = |field: &'static str| -> Result<String, EnvelopeError> {
                match signer.get(field.trim_start_matches("signer.")) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    None => Err(EnvelopeError::MissingField { field }),
                    Some(o) => Err(EnvelopeError::WrongType {
                        field,
                        expected: "a string",
                        found: o.type_name(),
                    }),
                }
            };
            let v1 = V1Fields {
                chain_id,
                seq,
                signer_key_id: signer_str("signer.key_id")?,
                signer_algorithm: signer_str("signer.algorithm")?,
            };
            Some(v1)
        } else {
            None
        };
        let extra = if v1.is_some() {
            Vec::new()
        } else {
            members
                .iter()
                .map(|(k, _)| k)
                .filter(|k| !LINEAGE_MEMBERS.contains(k))
                .map(str::to_owned)
                .collect()
        };
        // The v1 hash covers every member but these three; the rest of the map is kept as is.
        let hashed = v1.as_ref().map(|_| {
            let mut hashed = members;
            for k in ["current_hash", "kms_signature", "daal"] {
                hashed.remove(k);
            }
            hashed
        });

        Ok(Self {
            actor,
            action,
            resource,
            decision,
            reason,
            timestamp,
            signed_at,
            previous_hash,
            current_hash,
            signature,
            v1,
            shape,
            hashed,
            extra,
        })
    }

    /// Members present in the record that `profile`'s hash does not cover, besides the ones no
    /// profile hashes by design (`current_hash`, `kms_signature`, `daal`): nothing signed them,
    /// so anyone could have added or changed them. Empty for v1, whose hash covers every
    /// other member.
    pub fn uncovered_members(&self, profile: Profile) -> Vec<String> {
        let mut out = match profile {
            Profile::V1 => return Vec::new(),
            _ => self.extra.clone(),
        };
        if profile == Profile::Legacy && self.resource.is_some() {
            out.push("resource".to_owned());
        }
        out
    }

    /// Profiles that may apply, most likely first: v1 records are v1; lineage records try
    /// zt-infra-full, legacy, hello-world (without `resource`: legacy, hello-world).
    pub fn candidates(&self) -> &'static [Profile] {
        if self.v1.is_some() {
            &[Profile::V1]
        } else if self.resource.is_some() {
            &[Profile::ZtInfraFull, Profile::Legacy, Profile::HelloWorld]
        } else {
            &[Profile::Legacy, Profile::HelloWorld]
        }
    }

    /// v1: the hashed `context` member as it is (its type is the reader's to check); `None`
    /// when absent or not a v1 record. A reader that checks the context reads it here, so
    /// what it checks is what the hash and the signature cover, whatever the input's shape.
    pub fn context(&self) -> Option<&Value> {
        self.hashed.as_ref()?.get("context")
    }

    /// The bytes hashed under `profile`, or why the profile cannot apply to this record.
    pub fn hash_input(&self, profile: Profile, out: &mut Vec<u8>) -> Result<(), Unhashable> {
        match profile {
            Profile::V1 => {
                let hashed = self.hashed.as_ref().ok_or(Unhashable::NotV1)?;
                json::write_canonical_object(hashed, out);
            }
            Profile::ZtInfraFull => {
                let resource = self.resource.as_deref().ok_or(Unhashable::NoResource)?;
                // RFC 8785 member order, spelled out: all values are strings.
                write_str_object(
                    out,
                    &[
                        ("action", &self.action),
                        ("actor", &self.actor),
                        ("decision", &self.decision),
                        ("previous_hash", &self.previous_hash.to_hex()),
                        ("reason", &self.reason),
                        ("resource", resource),
                        ("timestamp", &self.timestamp),
                    ],
                );
            }
            Profile::Legacy => write_str_object(
                out,
                &[
                    ("action", &self.action),
                    ("actor", &self.actor),
                    ("decision", &self.decision),
                    ("previous_hash", &self.previous_hash.to_hex()),
                    ("reason", &self.reason),
                    ("timestamp", &self.timestamp),
                ],
            ),
            Profile::HelloWorld => {
                let prev = self.previous_hash.to_hex();
                let mut members: Vec<(&str, &str)> =
                    vec![("actor", &self.actor), ("action", &self.action)];
                if let Some(r) = &self.resource {
                    members.push(("resource", r));
                }
                members.extend([
                    ("result", self.decision.as_str()),
                    ("reason", &self.reason),
                    ("timestamp", &self.timestamp),
                    ("previousHash", &prev),
                ]);
                write_str_object(out, &members);
            }
        }
        Ok(())
    }

    /// The hash under `profile`, or why the profile cannot apply.
    pub fn compute_hash(&self, profile: Profile) -> Result<Hash32, Unhashable> {
        let mut buf = Vec::with_capacity(512);
        self.hash_input(profile, &mut buf)?;
        Ok(Hash32::digest(&buf))
    }

    /// The first candidate profile whose hash equals `current_hash`.
    pub fn detect_profile(&self) -> Option<Profile> {
        self.candidates()
            .iter()
            .copied()
            .find(|p| self.compute_hash(*p) == Ok(self.current_hash))
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Not I-JSON.
    #[error("not JSON: {0}")]
    Json(#[from] crate::error::JsonError),
    /// JSON, but not an envelope.
    #[error("not an audit envelope: {0}")]
    Envelope(#[from] EnvelopeError),
}

impl RecordError {
    /// One line about one record (a record is one line of its input, so only the column is
    /// named): what reports and the quarantine say.
    pub fn summary(&self) -> String {
        match self {
            RecordError::Json(j) => format!("not JSON: {} at column {}", j.message, j.column),
            RecordError::Envelope(e) => format!("not an audit envelope: {e}"),
        }
    }
}

fn flatten(v: Value) -> Result<(Map, Shape), EnvelopeError> {
    let top = match v {
        Value::Object(m) => m,
        other => {
            return Err(EnvelopeError::NotAnObject {
                found: other.type_name(),
            })
        }
    };
    let (mut members, shape) = if top.contains_key("audit") {
        let mut out = Map::new();
        let mut audit = None;
        for (k, v) in top.iter() {
            match k {
                "ok" => {}
                "audit" => match v {
                    Value::Object(a) => audit = Some(a.clone()),
                    o => {
                        return Err(EnvelopeError::WrongType {
                            field: "audit",
                            expected: "an object",
                            found: o.type_name(),
                        })
                    }
                },
                _ => out.push(k.to_owned(), v.clone()),
            }
        }
        for (k, v) in audit.iter().flat_map(Map::iter) {
            match out.get(k) {
                Some(existing) if existing == v => {}
                Some(_) => {
                    return Err(EnvelopeError::Conflict {
                        field: k.to_owned(),
                    })
                }
                None => out.push(k.to_owned(), v.clone()),
            }
        }
        (out, Shape::HttpResponse)
    } else {
        (top, Shape::Record)
    };
    // The hello-world adapter's own spellings.
    for (alias, name) in [
        ("result", "decision"),
        ("previousHash", "previous_hash"),
        ("currentHash", "current_hash"),
    ] {
        if !members.contains_key(name) && !members.contains_key("version") {
            if let Some(v) = members.remove(alias) {
                members.push(name.to_owned(), v);
            }
        }
    }
    Ok((members, shape))
}

fn write_str_object(out: &mut Vec<u8>, members: &[(&str, &str)]) {
    out.push(b'{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::write_string(k, out);
        out.push(b':');
        json::write_string(v, out);
    }
    out.push(b'}');
}

fn as_seq(n: f64) -> Option<u64> {
    if n.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(&n) {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "range checked above"
        )]
        Some(n as u64)
    } else {
        None
    }
}
/// The members of an envelope that the lineage's HTTP answer keeps at its top level.
pub const ANSWER_TOP: [&str; 5] = ["actor", "action", "resource", "decision", "reason"];

/// The lineage's HTTP answer around an envelope: `{"ok": true, actor, action, resource,
/// decision, reason, "audit": {every other member}}`, members in the envelope's order. What a
/// control plane answers `POST /actions` with, and what [`Shape::HttpResponse`] reads back.
pub fn lineage_answer(envelope: &Map) -> Vec<u8> {
    let ok = Value::Bool(true);
    let mut top: Vec<(&str, &Value)> = vec![("ok", &ok)];
    let mut audit = Map::new();
    for (k, v) in envelope.iter() {
        if ANSWER_TOP.contains(&k) {
            top.push((k, v));
        } else {
            audit.push(k.to_owned(), v.clone());
        }
    }
    let audit = Value::Object(audit);
    top.push(("audit", &audit));
    let mut out = Vec::with_capacity(512);
    crate::json::write_ordered_object(&top, &mut out);
    out
}

fn describe(v: &Value) -> String {
    let mut out = Vec::new();
    json::write_canonical(v, &mut out);
    shorten(&String::from_utf8_lossy(&out))
}

/// At most 80 characters of `s`, for messages about hostile input.
pub fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The decision content of a new v1 envelope.
#[derive(Debug, Clone, Default)]
pub struct V1Draft {
    /// Chain id.
    pub chain_id: String,
    /// Sequence number (0 for the first record).
    pub seq: u64,
    /// Who asked.
    pub actor: String,
    /// What for.
    pub action: String,
    /// On what.
    pub resource: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// RFC 3339.
    pub timestamp: String,
    /// Predecessor's hash.
    pub previous_hash: Hash32,
    /// Optional context (request id, policy id/version, identity, broker): hashed.
    pub context: Option<Map>,
}

/// A sealed envelope: its JSON text (one line) and hash.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// One line of JSON, no trailing newline.
    pub json: String,
    /// `current_hash`.
    pub current_hash: Hash32,
}

impl V1Draft {
    /// Hashes and signs (or, without a key, marks as unsigned with algorithm `none`).
    pub fn seal(&self, signer: Option<(&SigningKey, &str)>) -> Sealed {
        let sealed: Result<Sealed, std::convert::Infallible> = match signer {
            Some((key, key_id)) => self.seal_members(crypto::ALGORITHM, key_id, |d| {
                Ok(crypto::encode_signature(&key.sign_digest(d)))
            }),
            None => self.seal_members("none", "", |_| Ok(String::new())),
        };
        match sealed {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }

    /// Hashes, then asks `sign` for DER signature bytes over the 32-byte digest: any P-256
    /// signer plugs in (a local key, a KMS `Sign` with `MessageType=DIGEST`). `algorithm` and
    /// `key_id` go into the hashed `signer` member and into `kms_signature`. A failed signature
    /// is the caller's error: nothing is sealed.
    pub fn seal_with<E>(
        &self,
        algorithm: &str,
        key_id: &str,
        sign: impl FnOnce(&Hash32) -> Result<Vec<u8>, E>,
    ) -> Result<Sealed, E> {
        self.seal_members(algorithm, key_id, |d| {
            sign(d).map(|der| crypto::encode_signature(&der))
        })
    }

    /// The `current_hash` this draft will have when sealed by `key_id` with `algorithm`:
    /// lets a producer chain drafts first and sign them afterwards, in parallel.
    pub fn current_hash(&self, algorithm: &str, key_id: &str) -> Hash32 {
        let mut hashed = Vec::with_capacity(512);
        json::write_canonical_object(&self.hashed_members(algorithm, key_id), &mut hashed);
        Hash32::digest(&hashed)
    }

    /// The hash input: every member but `current_hash` and `kms_signature`.
    pub fn hashed_members(&self, algorithm: &str, key_id: &str) -> Map {
        let s = |x: &str| Value::String(x.to_owned());
        let mut signer_obj = Map::new();
        signer_obj.push("algorithm".into(), s(algorithm));
        signer_obj.push("key_id".into(), s(key_id));
        let mut m = Map::new();
        m.push("version".into(), Value::Number(1.0));
        m.push("chain_id".into(), s(&self.chain_id));
        #[allow(clippy::cast_precision_loss, reason = "seq is at most 2^53-1")]
        m.push("seq".into(), Value::Number(self.seq.min(MAX_SEQ) as f64));
        m.push("actor".into(), s(&self.actor));
        m.push("action".into(), s(&self.action));
        m.push("resource".into(), s(&self.resource));
        m.push("decision".into(), s(&self.decision));
        m.push("reason".into(), s(&self.reason));
        m.push("timestamp".into(), s(&self.timestamp));
        m.push("previous_hash".into(), s(&self.previous_hash.to_hex()));
        m.push("signer".into(), Value::Object(signer_obj));
        if let Some(ctx) = &self.context {
            m.push("context".into(), Value::Object(ctx.clone()));
        }
        m
    }

    fn seal_members<E>(
        &self,
        algorithm: &str,
        key_id: &str,
        signature: impl FnOnce(&Hash32) -> Result<String, E>,
    ) -> Result<Sealed, E> {
        let s = |x: &str| Value::String(x.to_owned());
        let mut m = self.hashed_members(algorithm, key_id);
        let mut hashed = Vec::with_capacity(512);
        json::write_canonical_object(&m, &mut hashed);
        let current_hash = Hash32::digest(&hashed);
        let signature = signature(&current_hash)?;
        let mut sig = Map::new();
        sig.push("algorithm".into(), s(algorithm));
        sig.push("key_id".into(), s(key_id));
        sig.push("signature".into(), s(&signature));
        m.push("current_hash".into(), s(&current_hash.to_hex()));
        m.push("kms_signature".into(), Value::Object(sig));
        let members: Vec<(&str, &Value)> = m.iter().collect();
        let mut out = Vec::with_capacity(640);
        json::write_ordered_object(&members, &mut out);
        Ok(Sealed {
            json: String::from_utf8(out).unwrap_or_default(),
            current_hash,
        })
    }
}

/// The members of a lineage record that its hash covers (besides `previous_hash`).
#[derive(Debug, Clone, Copy)]
pub struct LineageFields<'a> {
    /// Who asked.
    pub actor: &'a str,
    /// What for.
    pub action: &'a str,
    /// On what.
    pub resource: &'a str,
    /// `allow` or `deny`.
    pub decision: &'a str,
    /// Why.
    pub reason: &'a str,
    /// RFC 3339.
    pub timestamp: &'a str,
}

/// The zt-infra-full `current_hash` of a record.
pub fn zt_infra_full_hash(f: &LineageFields<'_>, previous_hash: &Hash32) -> Hash32 {
    let prev = previous_hash.to_hex();
    let mut buf = Vec::with_capacity(512);
    write_str_object(
        &mut buf,
        &[
            ("action", f.action),
            ("actor", f.actor),
            ("decision", f.decision),
            ("previous_hash", &prev),
            ("reason", f.reason),
            ("resource", f.resource),
            ("timestamp", f.timestamp),
        ],
    );
    Hash32::digest(&buf)
}

/// Writes a zt-infra-full record as the lineage's `ActionAuditor` does (for interop tests and
/// benchmarks: this project produces v1).
pub fn seal_zt_infra_full(
    f: &LineageFields<'_>,
    previous_hash: &Hash32,
    signer: (&SigningKey, &str),
) -> Sealed {
    let LineageFields {
        actor,
        action,
        resource,
        decision,
        reason,
        timestamp,
    } = *f;
    let prev = previous_hash.to_hex();
    let current_hash = zt_infra_full_hash(f, previous_hash);
    let sig = crypto::encode_signature(&signer.0.sign_digest(&current_hash));
    let mut out = Vec::with_capacity(640);
    let hash_hex = current_hash.to_hex();
    out.extend_from_slice(b"{");
    let mut first = true;
    for (k, v) in [
        ("actor", actor),
        ("action", action),
        ("resource", resource),
        ("decision", decision),
        ("reason", reason),
        ("timestamp", timestamp),
        ("previous_hash", prev.as_str()),
        ("current_hash", hash_hex.as_str()),
    ] {
        if !first {
            out.push(b',');
        }
        first = false;
        json::write_string(k, &mut out);
        out.push(b':');
        json::write_string(v, &mut out);
    }
    out.extend_from_slice(b",\"kms_signature\":");
    write_str_object(
        &mut out,
        &[
            ("algorithm", crypto::ALGORITHM),
            ("key_id", signer.1),
            ("signature", &sig),
        ],
    );
    out.push(b'}');
    Sealed {
        json: String::from_utf8(out).unwrap_or_default(),
        current_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID_0: &str = r#"{"actor":"agent-langgraph-1","action":"hello-world.say_hello","resource":"demo/greeting","decision":"allow","reason":"action is explicitly allowed","timestamp":"2026-10-01T08:00:36.490Z","previous_hash":"0000000000000000000000000000000000000000000000000000000000000000","current_hash":"f2cd5d9e431f4aa4aa05a39b075c7111969923dffeb434b372c673c41bbca542","kms_signature":{"algorithm":"ECDSA_SHA_256","key_id":"k","signature":"MEQCIBoxJXr867JWYnopCRq3QY0GkWNwBm/1o3dmfabxgWdUAiAtA9wGAnQPcm0BYyWW8TbnG1Uy8DFHbOlWbNuXfxN9MQ=="}}"#;

    #[test]
    fn lineage_record_detects_zt_infra_full() {
        let e = Envelope::from_json(VALID_0.as_bytes()).unwrap();
        assert_eq!(e.detect_profile(), Some(Profile::ZtInfraFull));
        assert_eq!(e.signature.kind(), SignatureKind::Ecdsa);
    }

    /// The hello-world adapter's own fixture (`test/fixtures/denied-audit.json` upstream).
    #[test]
    fn hello_world_response_detects() {
        let doc = r#"{"ok":false,"actor":"hello-world-agent","action":"aws.ec2.terminate_instances","resource":"i-demo","decision":"deny","reason":"Mock policy blocks infrastructure termination.","audit":{"timestamp":"2026-05-01T00:00:00.000Z","previous_hash":"0000000000000000000000000000000000000000000000000000000000000000","current_hash":"4ce56903e183b4541ba69eed97e6bf8cdaa537cbc2e4c774f0a081448a765939","kms_signature":{"algorithm":"MOCK_ECDSA_SHA_256","key_id":"mock-key","signature":"mock-signature"}}}"#;
        let e = Envelope::from_json(doc.as_bytes()).unwrap();
        assert_eq!(e.shape, Shape::HttpResponse);
        assert_eq!(e.detect_profile(), Some(Profile::HelloWorld));
        assert_eq!(e.signature.kind(), SignatureKind::Mock);
    }

    #[test]
    fn v1_seal_round_trip() {
        let key = SigningKey::generate();
        let mut ctx = Map::new();
        ctx.push("request_id".into(), Value::String("r-1".into()));
        let d = V1Draft {
            chain_id: "cp".into(),
            seq: 0,
            actor: "a".into(),
            action: "x.y".into(),
            resource: "r".into(),
            decision: "allow".into(),
            reason: "ok".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            previous_hash: Hash32::ZERO,
            context: Some(ctx),
        };
        let sealed = d.seal(Some((&key, "kid")));
        let e = Envelope::from_json(sealed.json.as_bytes()).unwrap();
        assert_eq!(e.detect_profile(), Some(Profile::V1));
        assert_eq!(e.current_hash, sealed.current_hash);
        let request_id = e
            .context()
            .and_then(Value::as_object)
            .and_then(|c| c.get("request_id"));
        assert_eq!(request_id.and_then(Value::as_str), Some("r-1"));
        let sig = crypto::decode_signature(&e.signature.signature).unwrap();
        key.public_key()
            .verify_digest(&e.current_hash, &sig)
            .unwrap();
        // editing the hashed context breaks the hash
        let edited = sealed.json.replace("r-1", "r-2");
        let e2 = Envelope::from_json(edited.as_bytes()).unwrap();
        assert_ne!(e2.compute_hash(Profile::V1).unwrap(), e2.current_hash);
        // seal_with: the same bytes for the same signature; a signer error seals nothing
        let again = d
            .seal_with(crypto::ALGORITHM, "kid", |h| {
                assert_eq!(*h, sealed.current_hash);
                Ok::<_, ()>(sig.clone())
            })
            .unwrap();
        assert_eq!(again.json, sealed.json);
        assert_eq!(
            d.current_hash(crypto::ALGORITHM, "kid"),
            sealed.current_hash
        );
        assert!(d
            .seal_with(crypto::ALGORITHM, "kid", |_| Err("hsm down"))
            .is_err());
    }

    #[test]
    fn bad_members_name_the_member() {
        let cases = [
            (VALID_0.replace("\"allow\"", "\"maybe\""), "decision"),
            (VALID_0.replace("\"agent-langgraph-1\"", "7"), "actor"),
            (VALID_0.replace("f2cd5d9e", "F2CD5D9E"), "current_hash"),
            (
                VALID_0.replace("2026-10-01T08:00:36.490Z", "noon"),
                "timestamp",
            ),
            (VALID_0.replace("\"reason\":", "\"reasons\":"), "reason"),
            ("[1,2]".to_owned(), "object"),
        ];
        for (doc, needle) in cases {
            let err = Envelope::from_json(doc.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn conflicting_http_members_are_refused() {
        let doc = r#"{"decision":"allow","audit":{"decision":"deny"}}"#;
        assert!(matches!(
            Envelope::from_json(doc.as_bytes()),
            Err(RecordError::Envelope(EnvelopeError::Conflict { .. }))
        ));
    }
}
