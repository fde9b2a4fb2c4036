//! Capabilities: what one agent may touch while one action runs, issued under policy,
//! attenuable offline, bound to the agent, revocable.
//!
//! A token is a chain of links (`ztcap1.` + base64url of `{"links": [...], "proof": HEX}`):
//!
//! - **link 0**, the issuance, signed by the control plane's key (ECDSA P-256 over the
//!   SHA-256 of the link's RFC 8785 form without `signature`, the key named by
//!   `issuer_key_id` and looked up in the keyring the verifier was given): `v`, `id`, `actor`,
//!   `action`, `resource`, `grants`, `issued_at`, `not_after`, `issuer_key_id`, `next_key`;
//! - **link i > 0**, an attenuation, signed by the key link i-1 named in `next_key`: `prev`
//!   (the hash of link i-1, signature included), narrower-or-equal `grants`, an equal-or-earlier
//!   `not_after`, and its own `next_key`;
//! - `proof`: the private half of the last link's `next_key`. Whoever holds the token can add
//!   a link (that is offline attenuation); nobody can take one away, since the key that signed
//!   the last link's predecessor is no longer in the token.
//!
//! This is the construction of Biscuit's public-key blocks (each block signed by an ephemeral
//! key the previous one named), with grants as data instead of Datalog, so that what a broker
//! applies is exactly what was checked: the grants of the last link. [`verify`] refuses any
//! link that widens (a path outside the previous grants of the same kind, network turned on,
//! a weaker sandbox, a later expiry). Whom a token speaks for is `actor`: the control plane
//! only accepts it from that agent's authenticated identity, so handing it on gives nothing.
//! Revocation is by `id`, which every attenuation keeps.
//!
//! - [`Grants`] (what a command may touch, and the sandbox that holds it to that);
//! - [`standing`]: where an issued capability stands (active, revoked, expired) and why a use
//!   is refused, the one model of both;
//! - [`report`]: the execution reports brokers sign, and their records.

use base64::Engine as _;

use crate::crypto::{self, PublicKey, SigningKey};
use crate::hash::Hash32;
use crate::json::{self, Map, Value};
use crate::keyring::Keyring;
use crate::time::Timestamp;

mod error;
mod grants;
mod kinds;
pub mod report;
pub mod standing;

use error::bad;
pub use error::CapabilityError;
pub use grants::{check_path, covers, Grants, Narrowing, MAX_PATH, MAX_PATHS};
pub use kinds::{Access, SandboxKind};

/// The token's text prefix (and format version).
pub const PREFIX: &str = "ztcap1.";
/// Link 0's `v`.
pub const VERSION: &str = "zt-cap/1";
/// Largest token accepted, in bytes.
pub const MAX_TOKEN: usize = 32 * 1024;
/// Most links (issuance and attenuations).
pub const MAX_LINKS: usize = 16;

/// What a control plane issues (link 0 before it is signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The capability id (revocation names it).
    pub id: String,
    /// The agent it is bound to.
    pub actor: String,
    /// The action it is for.
    pub action: String,
    /// On what.
    pub resource: String,
    /// What the command may touch.
    pub grants: Grants,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops.
    pub not_after: Timestamp,
    /// The key that signs it (a keyring key id).
    pub issuer_key_id: String,
}

/// A capability whose token verified: the grants are the last link's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// The id.
    pub id: String,
    /// The agent it is bound to.
    pub actor: String,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The effective grants (the last link's).
    pub grants: Grants,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// The effective expiry (the last link's).
    pub not_after: Timestamp,
    /// The issuer's key id.
    pub issuer_key_id: String,
    /// How many attenuations follow the issuance.
    pub attenuations: usize,
}

impl From<Issue> for Capability {
    /// What an issuance grants, before any attenuation.
    fn from(i: Issue) -> Self {
        Self {
            id: i.id,
            actor: i.actor,
            action: i.action,
            resource: i.resource,
            grants: i.grants,
            issued_at: i.issued_at,
            not_after: i.not_after,
            issuer_key_id: i.issuer_key_id,
            attenuations: 0,
        }
    }
}

fn ts(t: Timestamp) -> Value {
    Value::String(t.to_rfc3339_millis())
}

fn link_digest(link: &Map) -> Hash32 {
    let mut body = link.clone();
    body.remove("signature");
    Hash32::digest(&json::canonicalize(&Value::Object(body)))
}

fn link_hash(link: &Map) -> Hash32 {
    Hash32::digest(&json::canonicalize(&Value::Object(link.clone())))
}

fn encode(links: &[Map], proof: &SigningKey) -> String {
    let mut m = Map::new();
    m.push(
        "links".into(),
        Value::Array(links.iter().cloned().map(Value::Object).collect()),
    );
    m.push(
        "proof".into(),
        Value::String(hex::encode(proof.to_scalar_bytes())),
    );
    let bytes = json::canonicalize(&Value::Object(m));
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn with_next_key(mut m: Map, next: &SigningKey) -> Map {
    m.push(
        "next_key".into(),
        Value::String(hex::encode(next.public_key().sec1_uncompressed())),
    );
    m
}

/// Issues a token: link 0 signed by `sign` (DER ECDSA P-256 over the digest it is given),
/// with a fresh key for the first attenuation.
pub fn issue<E>(
    issue: &Issue,
    sign: impl FnOnce(&Hash32) -> Result<Vec<u8>, E>,
) -> Result<String, E> {
    let s = |x: &str| Value::String(x.to_owned());
    let mut m = Map::new();
    m.push("v".into(), s(VERSION));
    m.push("id".into(), s(&issue.id));
    m.push("actor".into(), s(&issue.actor));
    m.push("action".into(), s(&issue.action));
    m.push("resource".into(), s(&issue.resource));
    m.push("grants".into(), issue.grants.to_value());
    m.push("issued_at".into(), ts(issue.issued_at));
    m.push("not_after".into(), ts(issue.not_after));
    m.push("issuer_key_id".into(), s(&issue.issuer_key_id));
    let next = SigningKey::generate();
    let mut m = with_next_key(m, &next);
    let der = sign(&link_digest(&m))?;
    m.push("signature".into(), s(&crypto::encode_signature(&der)));
    Ok(encode(&[m], &next))
}

/// Attenuates a token offline: narrower-or-equal grants, an equal-or-earlier expiry (`None`
/// keeps each). Checked as [`verify`] will check it, without the keyring (so a widening is
/// refused here, not only at use); the signatures are checked by the verifier.
pub fn attenuate(
    token: &str,
    grants: Option<&Grants>,
    not_after: Option<Timestamp>,
) -> Result<String, CapabilityError> {
    let parsed = Parsed::from_token(token)?;
    let (last_grants, last_expiry) = parsed.effective()?;
    let grants = grants.cloned().unwrap_or(last_grants.clone());
    let link = parsed.links.len();
    grants.within(&last_grants, link)?;
    let not_after = not_after.unwrap_or(last_expiry);
    if not_after > last_expiry {
        return Err(CapabilityError::Extended {
            link,
            from: last_expiry.to_rfc3339_millis(),
            to: not_after.to_rfc3339_millis(),
        });
    }
    Ok(append_unchecked(&parsed, &grants, not_after))
}

/// Appends a link without checking that it narrows: for tests of the verifier (which
/// refuses a widening link whoever wrote it).
#[doc(hidden)]
pub fn attenuate_unchecked(
    token: &str,
    grants: &Grants,
    not_after: Timestamp,
) -> Result<String, CapabilityError> {
    let parsed = Parsed::from_token(token)?;
    Ok(append_unchecked(&parsed, grants, not_after))
}

fn append_unchecked(parsed: &Parsed, grants: &Grants, not_after: Timestamp) -> String {
    let prev = parsed
        .links
        .last()
        .map(link_hash)
        .unwrap_or(Hash32([0; 32]));
    let mut m = Map::new();
    m.push("prev".into(), Value::String(prev.to_hex()));
    m.push("grants".into(), grants.to_value());
    m.push("not_after".into(), ts(not_after));
    let next = SigningKey::generate();
    let mut m = with_next_key(m, &next);
    let der = parsed.proof.sign_digest(&link_digest(&m));
    m.push(
        "signature".into(),
        Value::String(crypto::encode_signature(&der)),
    );
    let mut links = parsed.links.clone();
    links.push(m);
    encode(&links, &next)
}

struct Parsed {
    links: Vec<Map>,
    proof: SigningKey,
}

fn member<'a>(m: &'a Map, link: usize, k: &str) -> Result<&'a str, CapabilityError> {
    m.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("link {link}: `{k}` missing or not a string")))
}

/// A link's time, in the one form links are written in: RFC 3339, UTC, milliseconds
/// (`2026-11-28T10:00:00.000Z`). Another spelling of a time (`+00:00`, no fraction, more
/// digits) is refused: it would read as a time attenuation cannot write back, so one token
/// could hold two expiries to two readers.
fn time_member(m: &Map, link: usize, k: &str) -> Result<Timestamp, CapabilityError> {
    let text = member(m, link, k)?;
    match Timestamp::parse_rfc3339(text) {
        Some(t) if t.to_rfc3339_millis() == text => Ok(t),
        Some(t) => Err(bad(format!(
            "link {link}: `{k}` is not written as links are (RFC 3339, UTC, milliseconds: {})",
            t.to_rfc3339_millis()
        ))),
        None => Err(bad(format!("link {link}: `{k}` is not an RFC 3339 time"))),
    }
}

fn key_member(m: &Map, link: usize) -> Result<PublicKey, CapabilityError> {
    let h = member(m, link, "next_key")?;
    let bytes = hex::decode(h).map_err(|_| bad(format!("link {link}: `next_key` is not hex")))?;
    PublicKey::from_sec1(&bytes).map_err(|e| bad(format!("link {link}: `next_key`: {e}")))
}

fn signature_member(m: &Map, link: usize) -> Result<Vec<u8>, CapabilityError> {
    crypto::decode_signature(member(m, link, "signature")?)
        .map_err(|_| CapabilityError::BadSignature { link })
}

const LINK0: [&str; 11] = [
    "v",
    "id",
    "actor",
    "action",
    "resource",
    "grants",
    "issued_at",
    "not_after",
    "issuer_key_id",
    "next_key",
    "signature",
];
const LINKN: [&str; 5] = ["prev", "grants", "not_after", "next_key", "signature"];

impl Parsed {
    fn from_token(token: &str) -> Result<Self, CapabilityError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN {
            return Err(bad(format!("token longer than {MAX_TOKEN} bytes")));
        }
        let Some(b64) = token.strip_prefix(PREFIX) else {
            return Err(bad(format!("a token starts with `{PREFIX}`")));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|e| bad(format!("not base64url: {e}")))?;
        let Value::Object(top) = json::parse(&bytes).map_err(|e| bad(e.to_string()))? else {
            return Err(bad("not a JSON object"));
        };
        if let Some((k, _)) = top.iter().find(|(k, _)| !["links", "proof"].contains(k)) {
            return Err(bad(format!(
                "unknown member `{}`",
                crate::envelope::shorten(k)
            )));
        }
        let Some(Value::Array(items)) = top.get("links") else {
            return Err(bad("`links` missing or not a list"));
        };
        if items.is_empty() || items.len() > MAX_LINKS {
            return Err(bad(format!("from 1 to {MAX_LINKS} links")));
        }
        let mut links = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(m) = item else {
                return Err(bad(format!("link {i} is not an object")));
            };
            let allowed: &[&str] = if i == 0 { &LINK0 } else { &LINKN };
            if let Some((k, _)) = m.iter().find(|(k, _)| !allowed.contains(k)) {
                return Err(bad(format!(
                    "link {i}: unknown member `{}`",
                    crate::envelope::shorten(k)
                )));
            }
            links.push(m.clone());
        }
        let proof = top
            .get("proof")
            .and_then(Value::as_str)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| bad("`proof` missing or not hex"))?;
        let proof = SigningKey::from_scalar_bytes(&proof).map_err(|_| CapabilityError::BadProof)?;
        Ok(Self { links, proof })
    }

    /// The last link's grants and expiry (no signature checked).
    fn effective(&self) -> Result<(Grants, Timestamp), CapabilityError> {
        let i = self.links.len() - 1;
        let last = &self.links[i];
        let grants = Grants::from_value(
            last.get("grants")
                .ok_or_else(|| bad(format!("link {i}: `grants` missing")))?,
        )?;
        Ok((grants, time_member(last, i, "not_after")?))
    }
}

/// The id a token names, unverified (to say which capability a refused token claimed).
pub fn claimed_id(token: &str) -> Option<String> {
    let p = Parsed::from_token(token).ok()?;
    p.links[0].get("id")?.as_str().map(str::to_owned)
}

/// What a token claims, signatures NOT checked: its id, agent, action and resource, and the
/// grants and expiry of its last link. For showing a token and attenuating one; only
/// [`verify`] says whether any of it holds.
pub fn claims(token: &str) -> Result<Capability, CapabilityError> {
    let parsed = Parsed::from_token(token)?;
    let l0 = &parsed.links[0];
    let (grants, not_after) = parsed.effective()?;
    Ok(Capability {
        id: member(l0, 0, "id")?.to_owned(),
        actor: member(l0, 0, "actor")?.to_owned(),
        action: member(l0, 0, "action")?.to_owned(),
        resource: member(l0, 0, "resource")?.to_owned(),
        grants,
        issued_at: time_member(l0, 0, "issued_at")?,
        not_after,
        issuer_key_id: member(l0, 0, "issuer_key_id")?.to_owned(),
        attenuations: parsed.links.len() - 1,
    })
}

/// Verifies a token against the issuer keys in `keyring` at `now`: every signature, every
/// link narrowing its predecessor, the proof, the expiry. Revocation and the actor binding
/// are the holder's checks (the control plane knows who asks and what was revoked).
pub fn verify(
    token: &str,
    keyring: &Keyring,
    now: Timestamp,
) -> Result<Capability, CapabilityError> {
    let parsed = Parsed::from_token(token)?;
    let l0 = &parsed.links[0];
    if member(l0, 0, "v")? != VERSION {
        return Err(bad(format!("link 0: `v` is not {VERSION}")));
    }
    let key_id = member(l0, 0, "issuer_key_id")?.to_owned();
    let issued_at = time_member(l0, 0, "issued_at")?;
    let entry = keyring
        .get(&key_id)
        .ok_or_else(|| CapabilityError::UnknownIssuer {
            key_id: key_id.clone(),
        })?;
    entry
        .check_window(issued_at)
        .map_err(|violation| CapabilityError::IssuerKeyNotValid {
            key_id: key_id.clone(),
            violation,
        })?;
    entry
        .public_key
        .verify_digest(&link_digest(l0), &signature_member(l0, 0)?)
        .map_err(|_| CapabilityError::BadSignature { link: 0 })?;
    let mut grants = Grants::from_value(
        l0.get("grants")
            .ok_or_else(|| bad("link 0: `grants` missing"))?,
    )?;
    let mut not_after = time_member(l0, 0, "not_after")?;
    let mut key = key_member(l0, 0)?;
    for (i, link) in parsed.links.iter().enumerate().skip(1) {
        key.verify_digest(&link_digest(link), &signature_member(link, i)?)
            .map_err(|_| CapabilityError::BadSignature { link: i })?;
        let prev = Hash32::from_hex(member(link, i, "prev")?);
        if prev != Some(link_hash(&parsed.links[i - 1])) {
            return Err(CapabilityError::BrokenLink { link: i });
        }
        let g = Grants::from_value(
            link.get("grants")
                .ok_or_else(|| bad(format!("link {i}: `grants` missing")))?,
        )?;
        g.within(&grants, i)?;
        let t = time_member(link, i, "not_after")?;
        if t > not_after {
            return Err(CapabilityError::Extended {
                link: i,
                from: not_after.to_rfc3339_millis(),
                to: t.to_rfc3339_millis(),
            });
        }
        grants = g;
        not_after = t;
        key = key_member(link, i)?;
    }
    if parsed.proof.public_key() != key {
        return Err(CapabilityError::BadProof);
    }
    let id = member(l0, 0, "id")?.to_owned();
    if now >= not_after {
        return Err(CapabilityError::Expired {
            id,
            at: not_after.to_rfc3339_millis(),
        });
    }
    Ok(Capability {
        id,
        actor: member(l0, 0, "actor")?.to_owned(),
        action: member(l0, 0, "action")?.to_owned(),
        resource: member(l0, 0, "resource")?.to_owned(),
        grants,
        issued_at,
        not_after,
        issuer_key_id: key_id,
        attenuations: parsed.links.len() - 1,
    })
}

/// The action of an execution record: a broker's report of what ran under an allow, sealed
/// by the control plane on the decision chain.
pub const EXECUTION_ACTION: &str = "zt.broker.execution";

/// What ties an execution record to the decision it ran under: the allow's `current_hash`
/// (`context.decision`) and the capability (`context.capability_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionLink {
    /// The allow decision's hash.
    pub decision: Hash32,
    /// The capability id.
    pub capability_id: String,
}

impl ExecutionLink {
    /// The link of an execution record, from its v1 `context`; `None` when it names none
    /// (which is itself a break: an execution that names no decision).
    pub fn of(record: &crate::Envelope) -> Option<Self> {
        let ctx = record.context()?.as_object()?;
        Some(Self {
            decision: Hash32::from_hex(ctx.get("decision")?.as_str()?)?,
            capability_id: ctx.get("capability_id")?.as_str()?.to_owned(),
        })
    }
}

/// The capability an allow decision was made under (`context.capability.id`).
pub fn used_under(record: &crate::Envelope) -> Option<&str> {
    record
        .context()?
        .as_object()?
        .get("capability")?
        .as_object()?
        .get("id")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyEntry;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn grants(read: &[&str], exec: &[&str], net: bool) -> Grants {
        Grants {
            read: read.iter().map(|s| (*s).to_owned()).collect(),
            write: Vec::new(),
            exec: exec.iter().map(|s| (*s).to_owned()).collect(),
            net,
            ..Grants::default()
        }
    }

    fn setup() -> (Keyring, String) {
        let key = SigningKey::generate();
        let mut ring = Keyring::new();
        ring.insert(KeyEntry::new("cp-test", key.public_key()))
            .unwrap_or_else(|e| panic!("{e}"));
        let token = issue(
            &Issue {
                id: "cap-1".into(),
                actor: "agent-a".into(),
                action: "files.read".into(),
                resource: "data/x".into(),
                grants: grants(&["/data", "/etc/hosts"], &["/usr/bin/cat"], false),
                issued_at: t("2026-11-28T10:00:00Z"),
                not_after: t("2026-11-28T11:00:00Z"),
                issuer_key_id: "cp-test".into(),
            },
            |d| Ok::<_, ()>(key.sign_digest(d)),
        )
        .unwrap_or_else(|()| panic!("sign"));
        (ring, token)
    }

    const NOW: &str = "2026-11-28T10:30:00Z";

    #[test]
    fn an_issued_token_verifies_and_attenuations_narrow() {
        let (ring, token) = setup();
        let c = verify(&token, &ring, t(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.actor, "agent-a");
        assert_eq!(c.grants.read, vec!["/data", "/etc/hosts"]);
        let narrow = grants(&["/data/sub"], &["/usr/bin/cat"], false);
        let a = attenuate(&token, Some(&narrow), Some(t("2026-11-28T10:45:00Z")))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = verify(&a, &ring, t(NOW)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.grants, c.attenuations), (narrow, 1));
        assert_eq!(c.not_after, t("2026-11-28T10:45:00Z"));
        assert!(matches!(
            verify(&a, &ring, t("2026-11-28T10:45:00Z")),
            Err(CapabilityError::Expired { .. })
        ));
    }

    #[test]
    fn widening_is_refused_when_attenuating_and_when_verifying() {
        let (ring, token) = setup();
        for (wide, expect) in [
            (grants(&["/"], &["/usr/bin/cat"], false), "`read` \"/\""),
            (grants(&["/data2"], &[], false), "`read` \"/data2\""),
            (
                grants(&["/data"], &["/usr/bin"], false),
                "`exec` \"/usr/bin\"",
            ),
            (grants(&["/data"], &[], true), "network"),
            (
                Grants {
                    sandbox: SandboxKind::Process,
                    ..grants(&["/data"], &[], false)
                },
                "sandbox `process` where `nono` was required",
            ),
        ] {
            let e = attenuate(&token, Some(&wide), None).err();
            assert!(
                e.as_ref().is_some_and(|e| e.to_string().contains(expect)),
                "{e:?}"
            );
            let forced = attenuate_unchecked(&token, &wide, t("2026-11-28T11:00:00Z"))
                .unwrap_or_else(|e| panic!("{e}"));
            let e = verify(&forced, &ring, t(NOW)).err();
            assert!(
                e.as_ref().is_some_and(|e| e.to_string().contains(expect)),
                "{e:?}"
            );
        }
        let later =
            attenuate_unchecked(&token, &grants(&[], &[], false), t("2026-11-28T12:00:00Z"))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            verify(&later, &ring, t(NOW)),
            Err(CapabilityError::Extended { link: 1, .. })
        ));
    }

    fn relink(token: &str, edit: impl FnOnce(&mut Vec<Value>, &mut Map)) -> String {
        let b64 = token.strip_prefix(PREFIX).unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap_or_default();
        let Ok(Value::Object(mut top)) = json::parse(&bytes) else {
            panic!("token JSON")
        };
        let Some(Value::Array(mut links)) = top.remove("links") else {
            panic!("links")
        };
        edit(&mut links, &mut top);
        top.push("links".into(), Value::Array(links));
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(json::canonicalize(&Value::Object(top)))
        )
    }

    /// Found by the `capability_token` fuzz target: a link time with more than millisecond
    /// precision read as one expiry and was written back by attenuation as another. A link's
    /// times have one spelling, the one links are written in.
    #[test]
    fn link_times_have_one_spelling() {
        let (_, token) = setup();
        for other in [
            "2026-11-28T11:00:00.022222222Z",
            "2026-11-28T11:00:00Z",
            "2026-11-28T11:00:00.000+00:00",
        ] {
            let edited = relink(&token, |links, _| {
                if let Some(Value::Object(m)) = links.first_mut() {
                    m.remove("not_after");
                    m.push("not_after".into(), Value::String(other.into()));
                }
            });
            let e = claims(&edited).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.to_string().contains("not written as links are")),
                "{other}: {e:?}"
            );
        }
    }

    #[test]
    fn forged_edited_and_stripped_tokens_are_refused() {
        let (ring, token) = setup();
        // another actor written into link 0
        let edited = relink(&token, |links, _| {
            if let Some(Value::Object(m)) = links.first_mut() {
                m.remove("actor");
                m.push("actor".into(), Value::String("agent-b".into()));
            }
        });
        assert_eq!(
            verify(&edited, &ring, t(NOW)).err(),
            Some(CapabilityError::BadSignature { link: 0 })
        );
        // a token minted with a key the keyring does not hold
        let other = SigningKey::generate();
        let forged = issue(
            &Issue {
                id: "cap-x".into(),
                actor: "agent-a".into(),
                action: "a".into(),
                resource: String::new(),
                grants: grants(&["/"], &["/"], true),
                issued_at: t("2026-11-28T10:00:00Z"),
                not_after: t("2026-11-28T11:00:00Z"),
                issuer_key_id: "cp-test".into(),
            },
            |d| Ok::<_, ()>(other.sign_digest(d)),
        )
        .unwrap_or_else(|()| panic!("sign"));
        assert_eq!(
            verify(&forged, &ring, t(NOW)).err(),
            Some(CapabilityError::BadSignature { link: 0 })
        );
        // an attenuation removed: the proof no longer matches
        let narrow = attenuate(&token, Some(&grants(&["/data/sub"], &[], false)), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let stripped = relink(&narrow, |links, _| {
            links.pop();
        });
        assert_eq!(
            verify(&stripped, &ring, t(NOW)).err(),
            Some(CapabilityError::BadProof)
        );
        // garbage
        for junk in ["", "ztcap1.", "ztcap1.!!", "bearer", "ztcap1.e30"] {
            assert!(matches!(
                verify(junk, &ring, t(NOW)),
                Err(CapabilityError::Malformed(_))
            ));
        }
    }

    #[test]
    fn claims_read_the_last_links_expiry_without_a_keyring() {
        let (_, token) = setup();
        let a = attenuate(&token, None, Some(t("2026-11-28T10:45:00Z")))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = claims(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (c.id.as_str(), c.actor.as_str(), c.action.as_str()),
            ("cap-1", "agent-a", "files.read")
        );
        assert_eq!(c.not_after, t("2026-11-28T10:45:00Z"));
        assert!(claims("ztcap1.e30").is_err());
    }

    #[test]
    fn write_and_exec_grants_are_disjoint_and_the_sandbox_is_read_and_written() {
        let parse = |j: &str| {
            json::parse(j.as_bytes())
                .map_err(|e| e.to_string())
                .and_then(|v| Grants::from_value(&v).map_err(|e| e.to_string()))
        };
        for (j, needle) in [
            (r#"{"write":["/w"],"exec":["/w/tool"]}"#, "overlaps `write`"),
            (r#"{"write":["/w/sub"],"exec":["/w"]}"#, "overlaps `write`"),
            (r#"{"write":["/"],"exec":["/usr/bin/dash"]}"#, "overlaps"),
            (r#"{"sandbox":"none"}"#, "unknown sandbox"),
            (r#"{"sandbox":true}"#, "`grants.sandbox`"),
        ] {
            let e = parse(j).err().unwrap_or_default();
            assert!(e.contains(needle), "{j}: {e}");
        }
        let g = parse(r#"{"write":["/w"],"exec":["/w2/tool"],"sandbox":"process"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.sandbox, SandboxKind::Process);
        assert_eq!(Grants::from_value(&g.to_value()), Ok(g.clone()));
        // absent: the strict one
        assert_eq!(parse("{}").map(|g| g.sandbox), Ok(SandboxKind::Nono));
        assert!(g.to_string().ends_with("sandbox process"), "{g}");
    }

    #[test]
    fn paths_are_normalized_and_covered_component_wise() {
        assert!(covers("/data", "/data/x") && covers("/data", "/data"));
        assert!(!covers("/data", "/data2") && !covers("/data/x", "/data"));
        assert!(covers("/", "/anything"));
        for bad in ["data", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\nb"] {
            assert!(check_path(Access::Read, bad).is_err(), "{bad}");
        }
        assert!(check_path(Access::Read, "/").is_ok());
    }
}
