//! Capability tokens (`zt_core::capability`): parsing, verifying and attenuating.

use std::convert::Infallible;
use std::sync::OnceLock;

use base64::Engine as _;
use zt_core::capability::{
    self, attenuate, attenuate_unchecked, claimed_id, claims, verify, Access, Capability,
    CapabilityError, Grants, Issue, SandboxKind,
};
use zt_core::crypto::SigningKey;
use zt_core::json::{self, Value};
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::time::Timestamp;

use crate::shown::shown;

/// The issuer's key id in [`keyring`].
pub const ISSUER: &str = "fuzz-issuer";

/// The issuer's signing key: fixed, so that seeds signed with it verify in every run.
pub fn issuer_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_scalar_bytes(&[7u8; 32])
            .unwrap_or_else(|e| panic!("a fixed scalar is a key: {e}"))
    })
}

/// A keyring holding the issuer's key.
pub fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let mut r = Keyring::new();
        r.insert(KeyEntry::new(ISSUER, issuer_key().public_key()))
            .unwrap_or_else(|e| panic!("{e}"));
        r
    })
}

/// When the seeds are issued, and the verifier's "now" (2026-01-01T00:00:00Z).
pub fn epoch() -> Timestamp {
    Timestamp::from_unix_millis(1_767_225_600_000)
}

/// A token issued by [`issuer_key`].
pub fn issue_token(id: &str, grants: Grants, not_after: Timestamp) -> String {
    let i = Issue {
        id: id.into(),
        actor: "fuzz-agent".into(),
        action: "fs.read".into(),
        resource: "/data".into(),
        grants,
        issued_at: epoch(),
        not_after,
        issuer_key_id: ISSUER.into(),
    };
    let r: Result<String, Infallible> = capability::issue(&i, |d| Ok(issuer_key().sign_digest(d)));
    match r {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// `capability_token`: a token's text, or (when the input does not start with the prefix) the
/// JSON inside it, which is base64url-encoded behind `ztcap1.`.
///
/// - `claimed_id` names what `claims` reads; what `verify` accepts, `claims` reads the same.
/// - A token that reads can be attenuated without narrowing (`attenuate(t, None, None)`): the
///   result claims the same with one more link, and verifies whenever the token did.
/// - A verified token attenuated to less (one path fewer, no network) verifies to exactly
///   that.
pub fn token(data: &[u8]) {
    let text = match std::str::from_utf8(data) {
        Ok(t) if t.trim_start().starts_with(capability::PREFIX) => t.to_owned(),
        _ => format!(
            "{}{}",
            capability::PREFIX,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
        ),
    };
    let claimed = claims(&text);
    if let Ok(c) = &claimed {
        assert_eq!(
            claimed_id(&text).as_deref(),
            Some(c.id.as_str()),
            "claimed_id and claims disagree"
        );
    }
    let verified = verify(&text, keyring(), epoch());
    if let Ok(v) = &verified {
        assert_eq!(
            claimed.as_ref().ok(),
            Some(v),
            "claims and verify read one token differently\ninput: {}",
            shown(data)
        );
    }
    let Ok(c) = claimed else { return };

    let same = attenuate(&text, None, None).unwrap_or_else(|e| {
        panic!(
            "a token that reads cannot be attenuated to itself: {e}\ninput: {}",
            shown(data)
        )
    });
    let again = claims(&same).unwrap_or_else(|e| panic!("attenuated token does not read: {e}"));
    assert_eq!(
        again,
        Capability {
            attenuations: c.attenuations + 1,
            ..c.clone()
        },
        "attenuating to the same grants changed the claims"
    );
    let Ok(v) = verified else {
        return;
    };
    match verify(&same, keyring(), epoch()) {
        Ok(v2) => assert_eq!(
            v2,
            Capability {
                attenuations: v.attenuations + 1,
                ..v.clone()
            }
        ),
        // A 17th link is past MAX_LINKS.
        Err(CapabilityError::Malformed(_)) if v.attenuations + 2 > capability::MAX_LINKS => return,
        Err(e) => panic!(
            "a verified token attenuated to itself does not verify: {e}\ninput: {}",
            shown(data)
        ),
    }
    let mut less = v.grants.clone();
    less.read.pop();
    less.net = false;
    less.sandbox = SandboxKind::Nono;
    let narrowed = attenuate(&text, Some(&less), None)
        .unwrap_or_else(|e| panic!("narrowing refused: {e}\ngrants {}", v.grants));
    match verify(&narrowed, keyring(), epoch()) {
        Ok(n) => assert_eq!(n.grants, less, "narrowed token verifies to other grants"),
        Err(CapabilityError::Malformed(_)) if v.attenuations + 2 > capability::MAX_LINKS => {}
        Err(e) => panic!("a narrowed token does not verify: {e}"),
    }
}

/// Paths a structured input picks from: nested, siblings, prefixes that are not parents.
const PATHS: [&str; 12] = [
    "/",
    "/data",
    "/data/a",
    "/data/a/b",
    "/data/ab",
    "/data2",
    "/tmp",
    "/tmp/x",
    "/usr/bin",
    "/usr/bin/cat",
    "/usr",
    "/d\u{e9}j\u{e0}",
];

/// The bytes of a structured input, consumed one at a time (zero past the end).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn grants(&mut self) -> Option<Grants> {
        let mut m = json::Map::new();
        for k in ["read", "write", "exec"] {
            let mask = u16::from(self.next()) | (u16::from(self.next() & 0x0f) << 8);
            let list = PATHS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| Value::String((*p).to_owned()))
                .collect();
            m.push(k.into(), Value::Array(list));
        }
        let b = self.next();
        m.push("net".into(), Value::Bool(b & 1 != 0));
        m.push(
            "sandbox".into(),
            Value::String(if b & 2 != 0 { "process" } else { "nono" }.into()),
        );
        // Overlapping write and exec grants are refused by the reader: such a pick is no
        // grant at all.
        Grants::from_value(&Value::Object(m)).ok()
    }

    fn time(&mut self) -> Timestamp {
        let secs = i64::from(u16::from(self.next()) << 8 | u16::from(self.next())) + 1;
        Timestamp::from_unix_millis(1_767_225_600_000 + secs * 1000)
    }
}

/// An independent reading of "narrower or equal": every path under one of the same kind
/// (component-wise), network only if it was on, the sandbox at least as strict.
fn narrows(inner: &Grants, outer: &Grants) -> bool {
    let under = |p: &str, q: &str| {
        q == "/"
            || p == q
            || (p.len() > q.len() && p.starts_with(q) && p.as_bytes()[q.len()] == b'/')
    };
    [Access::Read, Access::Write, Access::Exec]
        .iter()
        .all(|&a| {
            inner
                .paths(a)
                .iter()
                .all(|p| outer.paths(a).iter().any(|q| under(p, q)))
        })
        && (!inner.net || outer.net)
        && inner.sandbox <= outer.sandbox
}

/// `capability_chain`: a token built from the input. The first bytes pick the issued grants
/// and expiry; each following group of 8 bytes one link: grants, an expiry, and whether it is
/// added through `attenuate` (which must refuse exactly the links that widen) or
/// `attenuate_unchecked` (which adds whatever it is given). Then `verify` at issuance must
/// accept the token exactly when every link narrowed its predecessor (checked against an
/// independent reading of "narrower", [`narrows`]), and then give the last link's grants and
/// expiry; a refusal is for a widening, never for a signature, link or proof.
pub fn chain(data: &[u8]) {
    let mut b = Bytes(data);
    let Some(g0) = b.grants() else { return };
    let t0 = b.time();
    let mut token = issue_token("cap-fuzz", g0.clone(), t0);
    let (mut last_g, mut last_t) = (g0, t0);
    let mut valid = true;
    let mut links = 0;
    while !b.0.is_empty() && links + 1 < capability::MAX_LINKS {
        let checked = b.next() & 1 == 0;
        let Some(g) = b.grants() else { continue };
        let t = b.time();
        let ok = narrows(&g, &last_g) && t <= last_t;
        assert_eq!(
            g.within(&last_g, 1).is_ok(),
            narrows(&g, &last_g),
            "Grants::within and the independent reading disagree: {g} within {last_g}"
        );
        if checked {
            match attenuate(&token, Some(&g), Some(t)) {
                Ok(next) => {
                    assert!(ok, "attenuate added a widening link: {g} after {last_g}");
                    token = next;
                }
                Err(e) => {
                    assert!(
                        !ok,
                        "attenuate refused a narrowing link ({e}): {g} after {last_g}"
                    );
                    continue;
                }
            }
        } else {
            token = attenuate_unchecked(&token, &g, t)
                .unwrap_or_else(|e| panic!("an unchecked link was refused: {e}"));
            valid &= ok;
        }
        links += 1;
        last_g = g;
        last_t = t;
    }
    match verify(&token, keyring(), epoch()) {
        Ok(c) => {
            assert!(valid, "a token with a widening link verified");
            assert_eq!(
                (c.grants, c.not_after, c.attenuations),
                (last_g, last_t, links)
            );
        }
        Err(
            CapabilityError::Widened { .. }
            | CapabilityError::NetWidened { .. }
            | CapabilityError::SandboxWidened { .. }
            | CapabilityError::Extended { .. },
        ) if !valid => {}
        Err(e) => panic!("verify refused a token it should not have ({e}), valid={valid}"),
    }
}
