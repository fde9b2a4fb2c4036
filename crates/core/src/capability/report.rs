//! Execution reports: what a broker says it did with one allow, signed with the broker's own
//! key, and how a record of one is told apart from an agent's claim.
//!
//! A broker is a principal of its own, registered with the control plane (`POST /brokers`):
//! its registration is a record on the control plane's own chain (`zt.broker.register`,
//! sealed under the control plane's key) that carries the broker's public key
//! ([`BrokerKey::of_registration`]). Its reports are [`ExecutionReport`]s signed with that
//! key: ECDSA P-256 over the SHA-256 of the report's RFC 8785 form, the same construction as
//! capability links. The control plane checks the signature under the registered key, links
//! the report to its allow and seals it as `zt.broker.execution` with the report and the
//! [`Attestation`] in its context, so anyone holding the control plane's keyring can check
//! the broker's signature again from the records alone (`zt-audit verify`).
//!
//! A report filed with an agent's own credentials is the agent's word about itself: the
//! control plane seals it, as a deny that says so, and it never counts as an execution.

use super::Grants;
use crate::crypto::{self, PublicKey, SigningKey};
use crate::hash::Hash32;
use crate::json::{self, Map, Value};

/// The action of a broker's registration (on the control plane's own chain).
pub const REGISTER_ACTION: &str = "zt.broker.register";
/// The action of a broker's revocation (on the control plane's own chain).
pub const REVOKE_ACTION: &str = "zt.broker.revoke";

/// Largest command line in a report: arguments.
pub const MAX_ARGS: usize = 1024;

/// Why a report cannot be read or its attestation does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A member is missing or of the wrong type.
    #[error("execution report: {0}")]
    Malformed(String),
    /// The attestation's signature does not verify under the broker's key.
    #[error("the broker's signature on the report does not verify under key {key_id}")]
    BadSignature {
        /// The key id it names.
        key_id: String,
    },
    /// The attestation names another key than the broker's registered one.
    #[error(
        "the report is signed with key {found}, not broker {broker}'s registered key {registered}"
    )]
    WrongKey {
        /// The broker.
        broker: String,
        /// The key on record.
        registered: String,
        /// The key named.
        found: String,
    },
}

fn bad(what: impl Into<String>) -> ReportError {
    ReportError::Malformed(what.into())
}

/// Why a broker stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// The capability was revoked.
    Revoked,
    /// It expired.
    Expired,
    /// No answer from the control plane in time (fail closed).
    LostContact,
}

impl StopKind {
    /// `revoked`, `expired`, `lost_contact`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::LostContact => "lost_contact",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            "lost_contact" => Self::LostContact,
            _ => return None,
        })
    }
}

/// How the command ended, as the broker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It started.
    Ran {
        /// Its exit code, when it exited.
        exit_code: Option<i64>,
        /// The signal that ended it, when one did.
        signal: Option<i64>,
        /// From start to end.
        duration_ms: u64,
        /// Set when the broker stopped it: why, and the detail.
        stopped: Option<(StopKind, String)>,
    },
    /// The broker did not start it (it could not provide the sandbox, a grant did not resolve
    /// to itself, ...): why.
    Refused {
        /// The broker's reason.
        reason: String,
    },
}

/// A broker's account of one allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionReport {
    /// The allow's `current_hash`.
    pub decision: Hash32,
    /// The capability the allow was made under.
    pub capability_id: String,
    /// The agent the allow was for.
    pub actor: String,
    /// The broker's registered name.
    pub broker: String,
    /// The grants the broker applied (those sealed in the allow); their `sandbox` is the one
    /// it provided.
    pub grants: Grants,
    /// The command line.
    pub command: Vec<String>,
    /// The Landlock ABI enforced (`None` outside a Landlock sandbox).
    pub landlock_abi: Option<u32>,
    /// The operator let it run without Landlock's signal and socket scopes (ABI below 6).
    pub unscoped: bool,
    /// How it ended.
    pub outcome: Outcome,
}

fn opt_int(v: Option<i64>) -> Value {
    // Exit codes, signals and ABI numbers are small: a double holds them exactly.
    v.map_or(Value::Null, |n| Value::Number(n as f64))
}

fn int_member(m: &Map, k: &str, max: f64) -> Result<Option<i64>, ReportError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.fract() == 0.0 && n.abs() <= max => Ok(Some(*n as i64)),
        Some(_) => Err(bad(format!(
            "`{k}` must be a whole number of at most {max} or null"
        ))),
    }
}

fn str_member<'a>(m: &'a Map, k: &str) -> Result<&'a str, ReportError> {
    m.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("`{k}` missing or not a string")))
}

const MEMBERS: [&str; 10] = [
    "decision",
    "capability_id",
    "actor",
    "broker",
    "grants",
    "command",
    "landlock_abi",
    "unscoped",
    "outcome",
    "v",
];

/// The report format's `v`.
pub const REPORT_VERSION: &str = "zt-exec/1";

impl ExecutionReport {
    /// The JSON form (every member present).
    pub fn to_value(&self) -> Value {
        let s = |x: &str| Value::String(x.to_owned());
        let mut m = Map::new();
        m.push("v".into(), s(REPORT_VERSION));
        m.push("decision".into(), s(&self.decision.to_hex()));
        m.push("capability_id".into(), s(&self.capability_id));
        m.push("actor".into(), s(&self.actor));
        m.push("broker".into(), s(&self.broker));
        m.push("grants".into(), self.grants.to_value());
        m.push(
            "command".into(),
            Value::Array(self.command.iter().map(|a| s(a)).collect()),
        );
        m.push(
            "landlock_abi".into(),
            opt_int(self.landlock_abi.map(i64::from)),
        );
        m.push("unscoped".into(), Value::Bool(self.unscoped));
        let mut o = Map::new();
        match &self.outcome {
            Outcome::Ran {
                exit_code,
                signal,
                duration_ms,
                stopped,
            } => {
                o.push("ran".into(), Value::Bool(true));
                o.push("exit_code".into(), opt_int(*exit_code));
                o.push("signal".into(), opt_int(*signal));
                // Durations fit a double exactly well past any run's length (2^53 ms).
                o.push("duration_ms".into(), Value::Number(*duration_ms as f64));
                o.push(
                    "stopped".into(),
                    match stopped {
                        None => Value::Null,
                        Some((kind, detail)) => {
                            let mut st = Map::new();
                            st.push("reason".into(), s(kind.as_str()));
                            st.push("detail".into(), s(detail));
                            Value::Object(st)
                        }
                    },
                );
            }
            Outcome::Refused { reason } => {
                o.push("ran".into(), Value::Bool(false));
                o.push("refused".into(), s(reason));
            }
        }
        m.push("outcome".into(), Value::Object(o));
        Value::Object(m)
    }

    /// The digest a broker signs: SHA-256 of the RFC 8785 form.
    pub fn digest(&self) -> Hash32 {
        Hash32::digest(&json::canonicalize(&self.to_value()))
    }

    /// Reads a report (unknown members refused, every member checked).
    pub fn from_value(v: &Value) -> Result<Self, ReportError> {
        let m = v
            .as_object()
            .ok_or_else(|| bad(format!("must be an object, found {}", v.type_name())))?;
        if let Some((k, _)) = m.iter().find(|(k, _)| !MEMBERS.contains(k)) {
            return Err(bad(format!(
                "unknown member `{}`",
                crate::envelope::shorten(k)
            )));
        }
        if str_member(m, "v")? != REPORT_VERSION {
            return Err(bad(format!("`v` is not {REPORT_VERSION}")));
        }
        let decision = Hash32::from_hex(str_member(m, "decision")?)
            .ok_or_else(|| bad("`decision` is not 64 hex digits"))?;
        let grants = Grants::from_value(m.get("grants").ok_or_else(|| bad("`grants` missing"))?)
            .map_err(|e| bad(format!("`grants`: {e}")))?;
        let Some(Value::Array(args)) = m.get("command") else {
            return Err(bad("`command` (a list of strings) missing"));
        };
        if args.is_empty() || args.len() > MAX_ARGS {
            return Err(bad(format!("`command` must hold 1 to {MAX_ARGS} strings")));
        }
        let command = args
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`command` must hold strings only"))?;
        let landlock_abi = int_member(m, "landlock_abi", 1000.0)?
            .map(|n| u32::try_from(n).map_err(|_| bad("`landlock_abi` is negative")))
            .transpose()?;
        let unscoped = match m.get("unscoped") {
            Some(Value::Bool(b)) => *b,
            _ => return Err(bad("`unscoped` must be true or false")),
        };
        let o = m
            .get("outcome")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("`outcome` missing or not an object"))?;
        let outcome = match o.get("ran") {
            Some(Value::Bool(true)) => {
                let stopped = match o.get("stopped") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(st)) => {
                        let kind = st
                            .get("reason")
                            .and_then(Value::as_str)
                            .and_then(StopKind::parse)
                            .ok_or_else(|| {
                                bad("`outcome.stopped.reason` must be revoked, expired or lost_contact")
                            })?;
                        let detail = st
                            .get("detail")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        Some((kind, detail))
                    }
                    Some(_) => return Err(bad("`outcome.stopped` must be an object or null")),
                };
                let duration_ms = int_member(o, "duration_ms", 9_007_199_254_740_991.0)?
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad("`outcome.duration_ms` missing or negative"))?;
                Outcome::Ran {
                    exit_code: int_member(o, "exit_code", 1e9)?,
                    signal: int_member(o, "signal", 128.0)?,
                    duration_ms,
                    stopped,
                }
            }
            Some(Value::Bool(false)) => Outcome::Refused {
                reason: str_member(o, "refused")?.to_owned(),
            },
            _ => return Err(bad("`outcome.ran` must be true or false")),
        };
        Ok(Self {
            decision,
            capability_id: str_member(m, "capability_id")?.to_owned(),
            actor: str_member(m, "actor")?.to_owned(),
            broker: str_member(m, "broker")?.to_owned(),
            grants,
            command,
            landlock_abi,
            unscoped,
            outcome,
        })
    }

    /// One line for a record's reason: `/usr/bin/cat exited 0 after 12 ms under nono (...)`.
    pub fn summary(&self) -> String {
        let program = self
            .command
            .first()
            .map(|p| crate::text::escape(p).into_owned())
            .unwrap_or_default();
        match &self.outcome {
            Outcome::Refused { reason } => format!(
                "{program} was not started by broker {}: {}",
                crate::text::escape(&self.broker),
                crate::text::escape(reason)
            ),
            Outcome::Ran {
                exit_code,
                signal,
                duration_ms,
                stopped,
            } => {
                let ended = match (stopped, exit_code, signal) {
                    (Some((k, _)), _, _) => format!("stopped by the broker ({})", k.as_str()),
                    (None, Some(c), _) => format!("exited {c}"),
                    (None, None, Some(s)) => format!("died of signal {s}"),
                    (None, None, None) => "ended".to_owned(),
                };
                format!(
                    "{program} {ended} after {duration_ms} ms under {} ({})",
                    self.grants.sandbox, self.grants
                )
            }
        }
    }
}

/// A broker's signature on a report: which broker, which key, the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The broker's registered name.
    pub broker: String,
    /// Its key id ([`broker_key_id`]).
    pub key_id: String,
    /// DER ECDSA P-256 over [`ExecutionReport::digest`].
    pub signature: Vec<u8>,
}

impl Attestation {
    /// Signs `report` with the broker's key.
    pub fn sign(report: &ExecutionReport, broker: &str, key: &SigningKey) -> Self {
        Self {
            broker: broker.to_owned(),
            key_id: broker_key_id(&key.public_key()),
            signature: key.sign_digest(&report.digest()),
        }
    }

    /// The JSON form: `{"broker", "key_id", "signature"}` (base64 DER).
    pub fn to_value(&self) -> Value {
        let s = |x: &str| Value::String(x.to_owned());
        let mut m = Map::new();
        m.push("broker".into(), s(&self.broker));
        m.push("key_id".into(), s(&self.key_id));
        m.push(
            "signature".into(),
            s(&crypto::encode_signature(&self.signature)),
        );
        Value::Object(m)
    }

    /// Reads the JSON form.
    pub fn from_value(v: &Value) -> Result<Self, ReportError> {
        let m = v
            .as_object()
            .ok_or_else(|| bad("`attestation` must be an object"))?;
        Ok(Self {
            broker: str_member(m, "broker")?.to_owned(),
            key_id: str_member(m, "key_id")?.to_owned(),
            signature: crypto::decode_signature(str_member(m, "signature")?)
                .map_err(|_| bad("`attestation.signature` is not base64 DER"))?,
        })
    }

    /// Checks that `key`, the broker's key on record, signed the report whose digest is
    /// `digest`.
    pub fn verify(&self, digest: &Hash32, key: &BrokerKey) -> Result<(), ReportError> {
        if self.key_id != key.key_id || self.broker != key.broker {
            return Err(ReportError::WrongKey {
                broker: key.broker.clone(),
                registered: key.key_id.clone(),
                found: self.key_id.clone(),
            });
        }
        key.public_key
            .verify_digest(digest, &self.signature)
            .map_err(|_| ReportError::BadSignature {
                key_id: self.key_id.clone(),
            })
    }
}

/// A broker's key id: `broker-` and the first 16 hex digits of the SHA-256 of its SEC1
/// uncompressed public key. Derived, so a registration cannot name someone else's key.
pub fn broker_key_id(key: &PublicKey) -> String {
    format!(
        "broker-{}",
        &Hash32::digest(&key.sec1_uncompressed()).to_hex()[..16]
    )
}

/// A broker's key as its registration record states it.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerKey {
    /// The broker's name.
    pub broker: String,
    /// [`broker_key_id`] of the key.
    pub key_id: String,
    /// The key.
    pub public_key: PublicKey,
}

impl BrokerKey {
    /// The registration's context members: `broker_name`, `key_id`, `public_key` (hex SEC1).
    pub fn context_members(&self) -> [(&'static str, Value); 3] {
        let s = |x: &str| Value::String(x.to_owned());
        [
            ("broker_name", s(&self.broker)),
            ("key_id", s(&self.key_id)),
            (
                "public_key",
                s(&hex::encode(self.public_key.sec1_uncompressed())),
            ),
        ]
    }

    /// The key a `zt.broker.register` record carries (its `context`), if it is one and its
    /// key id is the key's own.
    pub fn of_registration(record: &crate::Envelope) -> Option<Self> {
        if record.action != REGISTER_ACTION || record.decision != "allow" {
            return None;
        }
        let ctx = record.context()?.as_object()?;
        let text = |k: &str| ctx.get(k).and_then(Value::as_str);
        let public_key = PublicKey::from_sec1(&hex::decode(text("public_key")?).ok()?).ok()?;
        let key_id = text("key_id")?.to_owned();
        if key_id != broker_key_id(&public_key) {
            return None;
        }
        Some(Self {
            broker: text("broker_name")?.to_owned(),
            key_id,
            public_key,
        })
    }
}

/// What an execution record carries about its report: the report's digest and its
/// attestation, if it has one (`context.report`, `context.attestation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    /// The report's digest, recomputed from `context.report`.
    pub digest: Hash32,
    /// The decision the report names.
    pub decision: Hash32,
    /// The broker's signature, if the record has one.
    pub attestation: Option<Attestation>,
}

impl Attested {
    /// Reads an execution record's report and attestation; `Err` when the report is missing
    /// or unreadable, `attestation: None` when it carries no broker signature.
    pub fn of(record: &crate::Envelope) -> Result<Self, ReportError> {
        let ctx = record
            .context()
            .and_then(Value::as_object)
            .ok_or_else(|| bad("the record has no context"))?;
        let report = ctx
            .get("report")
            .ok_or_else(|| bad("the record carries no `report`"))?;
        let parsed = ExecutionReport::from_value(report)?;
        let attestation = match ctx.get("attestation") {
            None | Some(Value::Null) => None,
            Some(a) => Some(Attestation::from_value(a)?),
        };
        Ok(Self {
            digest: Hash32::digest(&json::canonicalize(report)),
            decision: parsed.decision,
            attestation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ExecutionReport {
        ExecutionReport {
            decision: Hash32([7; 32]),
            capability_id: "cap-1".into(),
            actor: "agent-a".into(),
            broker: "broker-1".into(),
            grants: Grants {
                read: vec!["/data".into()],
                exec: vec!["/usr/bin/cat".into()],
                ..Grants::default()
            },
            command: vec!["/usr/bin/cat".into(), "/data/x".into()],
            landlock_abi: Some(7),
            unscoped: false,
            outcome: Outcome::Ran {
                exit_code: None,
                signal: Some(9),
                duration_ms: 1200,
                stopped: Some((StopKind::Revoked, "at T".into())),
            },
        }
    }

    #[test]
    fn a_report_round_trips_and_its_form_is_pinned() {
        let r = report();
        let v = r.to_value();
        assert_eq!(ExecutionReport::from_value(&v), Ok(r.clone()));
        assert_eq!(
            String::from_utf8(json::canonicalize(&v)).unwrap_or_default(),
            r#"{"actor":"agent-a","broker":"broker-1","capability_id":"cap-1","command":["/usr/bin/cat","/data/x"],"decision":"0707070707070707070707070707070707070707070707070707070707070707","grants":{"exec":["/usr/bin/cat"],"net":false,"read":["/data"],"sandbox":"nono","write":[]},"landlock_abi":7,"outcome":{"duration_ms":1200,"exit_code":null,"ran":true,"signal":9,"stopped":{"detail":"at T","reason":"revoked"}},"unscoped":false,"v":"zt-exec/1"}"#
        );
        let refused = ExecutionReport {
            outcome: Outcome::Refused {
                reason: "Landlock ABI 5".into(),
            },
            ..r
        };
        assert_eq!(
            ExecutionReport::from_value(&refused.to_value()),
            Ok(refused.clone())
        );
        assert!(refused
            .summary()
            .contains("was not started by broker broker-1"));
    }

    #[test]
    fn only_the_registered_key_attests_and_an_edit_breaks_it() {
        let key = SigningKey::generate();
        let on_record = BrokerKey {
            broker: "broker-1".into(),
            key_id: broker_key_id(&key.public_key()),
            public_key: key.public_key(),
        };
        let r = report();
        let a = Attestation::sign(&r, "broker-1", &key);
        assert_eq!(a.verify(&r.digest(), &on_record), Ok(()));
        assert_eq!(Attestation::from_value(&a.to_value()), Ok(a.clone()));
        // the agent edits the exit status
        let mut edited = r.clone();
        edited.outcome = Outcome::Ran {
            exit_code: Some(0),
            signal: None,
            duration_ms: 1,
            stopped: None,
        };
        assert!(matches!(
            a.verify(&edited.digest(), &on_record),
            Err(ReportError::BadSignature { .. })
        ));
        // another key, even named as the broker's
        let other = SigningKey::generate();
        let mut forged = Attestation::sign(&r, "broker-1", &other);
        assert!(matches!(
            forged.verify(&r.digest(), &on_record),
            Err(ReportError::WrongKey { .. })
        ));
        forged.key_id = on_record.key_id.clone();
        assert!(matches!(
            forged.verify(&r.digest(), &on_record),
            Err(ReportError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_reports_are_refused_naming_the_member() {
        let good = report().to_value();
        let edit = |k: &str, v: Value| {
            let mut m = good.as_object().cloned().unwrap_or_default();
            m.remove(k);
            m.push(k.into(), v);
            Value::Object(m)
        };
        for (v, needle) in [
            (edit("decision", Value::String("ab".into())), "`decision`"),
            (edit("command", Value::Array(vec![])), "`command`"),
            (edit("sudo", Value::Bool(true)), "unknown member `sudo`"),
            (edit("v", Value::String("zt-exec/0".into())), "`v`"),
            (edit("unscoped", Value::Null), "`unscoped`"),
            (edit("outcome", Value::Object(Map::new())), "`outcome.ran`"),
        ] {
            let e = ExecutionReport::from_value(&v).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(needle)),
                "{needle}: {e:?}"
            );
        }
    }
}
