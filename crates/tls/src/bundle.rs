//! Trust bundles: which CA certificates speak for which SPIFFE trust domain.
//!
//! Two ways to give them ([`BundleSource`]):
//!
//! - `--client-ca FILE`: a PEM file of CAs that each **name** their trust domain with one URI
//!   SAN `spiffe://<trust-domain>` (SPIRE's CAs carry it). A CA without one is refused: which
//!   trust domain it speaks for is never guessed.
//! - `--trust-bundle spiffe://TD=FILE`: the bundle of trust domain TD, **named by this
//!   configuration** as the SPIFFE Trust Domain and Bundle specification has it. FILE is a PEM
//!   file of CA certificates (with or without URI SANs: the X.509-SVID specification makes
//!   the SAN a SHOULD, so a CA from an ordinary PKI works), or a SPIFFE bundle: a JWK Set
//!   whose entries with `use: x509-svid` each hold one CA in `x5c` (X.509-SVID specification,
//!   section 6), with an optional `spiffe_sequence`. A CA whose URI SAN names another trust
//!   domain than the one configured is refused (one of the two is wrong).
//!
//! Either way every certificate must be a CA (basic constraints). The result is a list of
//! [`DomainCa`]s; [`crate::identity::TrustBundles`] verifies SVIDs against them.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{shorten, BundleSourceError, CaProblem, SpiffeBundleError, TlsError};
use crate::spiffe::TrustDomain;

/// Where some trust domains' CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    /// A PEM file of CAs that each name their trust domain in a URI SAN (`--client-ca`).
    SelfNamed(PathBuf),
    /// The bundle of one trust domain, named here (`--trust-bundle spiffe://TD=FILE`): PEM or
    /// a SPIFFE bundle (JWK Set).
    Domain {
        /// The trust domain the file speaks for.
        trust_domain: TrustDomain,
        /// The file.
        path: PathBuf,
    },
}

impl BundleSource {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            Self::SelfNamed(p) | Self::Domain { path: p, .. } => p,
        }
    }
}

/// `spiffe://TD=FILE`.
impl FromStr for BundleSource {
    type Err = BundleSourceError;

    fn from_str(s: &str) -> Result<Self, BundleSourceError> {
        let Some((id, path)) = s.split_once('=') else {
            return Err(BundleSourceError::Shape(shorten(s)));
        };
        let trust_domain =
            TrustDomain::from_id(id).map_err(|source| BundleSourceError::TrustDomain {
                id: shorten(id),
                source,
            })?;
        if path.is_empty() {
            return Err(BundleSourceError::NoFile { id: id.to_owned() });
        }
        Ok(Self::Domain {
            trust_domain,
            path: PathBuf::from(path),
        })
    }
}

/// A CA certificate and the trust domain it speaks for.
#[derive(Debug, Clone)]
pub struct DomainCa {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// The CA certificate.
    pub der: CertificateDer<'static>,
}

/// What one source gave: its CAs, and the SPIFFE bundle's sequence number when it has one.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The CAs.
    pub cas: Vec<DomainCa>,
    /// `spiffe_sequence`, for a SPIFFE bundle that sets it.
    pub sequence: Option<u64>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what: "trust bundle",
        path: path.to_owned(),
        source,
    })
}

fn uri_sans<'a>(cert: &'a X509Certificate<'a>) -> Result<Vec<&'a str>, String> {
    let sans = cert.subject_alternative_name().map_err(|e| e.to_string())?;
    Ok(sans
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The URI SANs of a certificate, for the identity checks (which need the leaf's).
pub(crate) fn uri_sans_of<'a>(cert: &'a X509Certificate<'a>) -> Result<Vec<&'a str>, String> {
    uri_sans(cert)
}

/// The trust domain a CA names in its URI SAN: None without one; an error with several, or
/// with one that is not a trust domain's ID.
fn named_domain(x: &X509Certificate<'_>) -> Result<Option<TrustDomain>, CaProblem> {
    let uris = uri_sans(x).map_err(CaProblem::Unparsable)?;
    match uris.as_slice() {
        [] => Ok(None),
        [one] => TrustDomain::from_id(one)
            .map(Some)
            .map_err(|error| CaProblem::BadTrustDomain {
                uri: shorten(one),
                error,
            }),
        more => Err(CaProblem::ManyUris(more.len())),
    }
}

/// One CA of a source: parsed, a CA, and in the trust domain it is for (`configured`, or the
/// one it names when the source names none).
fn domain_ca(
    der: CertificateDer<'static>,
    configured: Option<&TrustDomain>,
) -> Result<DomainCa, CaProblem> {
    let (_, x) =
        X509Certificate::from_der(&der).map_err(|e| CaProblem::Unparsable(e.to_string()))?;
    if !x.is_ca() {
        return Err(CaProblem::NotCa);
    }
    let named = named_domain(&x)?;
    let trust_domain = match (configured, named) {
        (Some(td), None) => td.clone(),
        (Some(td), Some(named)) if named == *td => named,
        (Some(td), Some(named)) => {
            return Err(CaProblem::OtherTrustDomain {
                named: named.to_string(),
                configured: td.to_string(),
            })
        }
        (None, Some(named)) => named,
        (None, None) => return Err(CaProblem::NoTrustDomain),
    };
    Ok(DomainCa { trust_domain, der })
}

/// Reads a source's CAs.
pub fn load(source: &BundleSource) -> Result<Loaded, TlsError> {
    parse(source, &read(source.path())?)
}

/// A source's CAs from the file's contents `bytes` (the source's path is named in errors).
pub fn parse(source: &BundleSource, bytes: &[u8]) -> Result<Loaded, TlsError> {
    let path = source.path();
    let configured = match source {
        BundleSource::SelfNamed(_) => None,
        BundleSource::Domain { trust_domain, .. } => Some(trust_domain),
    };
    let bad = |index, problem| TlsError::Bundle {
        path: path.to_owned(),
        index,
        problem,
    };
    let is_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let (ders, sequence) = match (configured, is_json) {
        (Some(td), true) => {
            let (ders, seq) = spiffe_bundle(bytes).map_err(|problem| TlsError::SpiffeBundle {
                path: path.to_owned(),
                trust_domain: td.to_string(),
                problem,
            })?;
            (ders, seq)
        }
        _ => (
            crate::pem::certificates_in("trust bundle", path, bytes)?,
            None,
        ),
    };
    let cas = ders
        .into_iter()
        .enumerate()
        .map(|(i, der)| domain_ca(der, configured).map_err(|p| bad(i, p)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Loaded { cas, sequence })
}

/// A SPIFFE bundle (JWK Set): the CA of every `x509-svid` entry (the first `x5c` value;
/// entries of another or an unknown `use` or key type, and `x509-svid` entries without `x5c`,
/// are ignored as the specifications require), and `spiffe_sequence`.
pub fn spiffe_bundle(
    bytes: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, Option<u64>), SpiffeBundleError> {
    /// Members this reader uses; others are ignored (the specification allows them). A
    /// member given twice is refused (serde's derive).
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
        #[serde(default)]
        spiffe_sequence: Option<u64>,
    }
    let set: Set = serde_json::from_slice(bytes)?;
    let mut ders = Vec::new();
    for (i, key) in set.keys.iter().enumerate() {
        let Some(jwk) = key.as_object() else {
            return Err(SpiffeBundleError::NotObject { index: i });
        };
        if jwk.get("use").and_then(serde_json::Value::as_str) != Some("x509-svid") {
            continue;
        }
        if !matches!(
            jwk.get("kty").and_then(serde_json::Value::as_str),
            Some("EC" | "RSA" | "OKP")
        ) {
            continue;
        }
        let first = match jwk.get("x5c") {
            None => continue,
            Some(serde_json::Value::Array(a)) if a.is_empty() => continue,
            Some(serde_json::Value::Array(a)) => &a[0],
            Some(other) => {
                return Err(SpiffeBundleError::X5cNotArray {
                    index: i,
                    found: other.to_string(),
                })
            }
        };
        let Some(text) = first.as_str() else {
            return Err(SpiffeBundleError::X5cNotString { index: i });
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|source| SpiffeBundleError::NotBase64 { index: i, source })?;
        ders.push(CertificateDer::from(der));
    }
    if ders.is_empty() {
        return Err(SpiffeBundleError::NoX509Svid);
    }
    Ok((ders, set.spiffe_sequence))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::test_pki::Ca;

    fn jwks(cas: &[&Ca], seq: Option<u64>) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let p = crate::test_pki::write_spiffe_bundle(&tmp.path().join("b.json"), cas, seq);
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn a_trust_bundle_flag_names_a_domain_and_a_file() {
        let s: BundleSource = "spiffe://td-b.test=/etc/b.json".parse().unwrap();
        assert_eq!(
            s,
            BundleSource::Domain {
                trust_domain: TrustDomain::new("td-b.test").unwrap(),
                path: "/etc/b.json".into()
            }
        );
        for bad in [
            "td-b.test=/x",
            "spiffe://td-b.test/wl=/x",
            "spiffe://td-b.test=",
            "spiffe://td-b.test",
        ] {
            assert!(bad.parse::<BundleSource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spiffe_bundles_keep_x509_svid_entries_and_ignore_the_rest() {
        let (a, b) = (Ca::plain("a"), Ca::plain("b"));
        let mut v: serde_json::Value = serde_json::from_str(&jwks(&[&a, &b], Some(7))).unwrap();
        let keys = v["keys"].as_array_mut().unwrap();
        keys.push(serde_json::json!({"use": "jwt-svid", "kty": "EC", "kid": "k"}));
        keys.push(serde_json::json!({"use": "x509-svid", "kty": "EC"}));
        keys.push(serde_json::json!({"use": "x509-svid", "kty": "EC", "x5c": []}));
        keys.push(serde_json::json!({"use": "x509-svid", "kty": "weird", "x5c": ["!!"]}));
        keys.push(serde_json::json!({"use": "future-svid", "kty": "EC", "x5c": ["!!"]}));
        let (ders, seq) = spiffe_bundle(v.to_string().as_bytes()).unwrap();
        assert_eq!(ders.len(), 2);
        assert_eq!(ders[0].as_ref(), a.der());
        assert_eq!(seq, Some(7));
        // A sequence past 2^53 is kept exactly (64 bits, as the specification asks).
        let big = jwks(&[&a], Some(u64::MAX));
        assert_eq!(spiffe_bundle(big.as_bytes()).unwrap().1, Some(u64::MAX));
        for (text, needle) in [
            (r#"{"keys": []}"#.to_owned(), "no x509-svid entry"),
            (r#"{"nokeys": 1}"#.to_owned(), "missing field `keys`"),
            (r#"{"keys": [], "keys": []}"#.to_owned(), "duplicate field"),
            (
                r#"{"keys": [{"use": "x509-svid", "kty": "EC", "x5c": ["%%"]}]}"#.to_owned(),
                "not base64",
            ),
            (r#"{"keys": [1]}"#.to_owned(), "keys[0] is not an object"),
        ] {
            let e = spiffe_bundle(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn cas_are_checked_against_the_configured_domain() {
        let tmp = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("td-b.test").unwrap();
        let domain = |path: PathBuf| BundleSource::Domain {
            trust_domain: td.clone(),
            path,
        };
        // An ordinary PKI's CA (no URI SAN), as PEM and as a SPIFFE bundle.
        let plain = Ca::plain("corp");
        let pem = tmp.path().join("corp.pem");
        std::fs::write(&pem, plain.cert_pem()).unwrap();
        let loaded = load(&domain(pem.clone())).unwrap();
        assert_eq!(loaded.cas[0].trust_domain, td);
        assert_eq!(loaded.sequence, None);
        let json = tmp.path().join("b.json");
        std::fs::write(&json, jwks(&[&plain], Some(3))).unwrap();
        let loaded = load(&domain(json)).unwrap();
        assert_eq!(
            (
                loaded.cas.len(),
                loaded.sequence,
                &loaded.cas[0].trust_domain
            ),
            (1, Some(3), &td)
        );
        // Without a configured domain a plain CA names none: refused.
        assert!(matches!(
            load(&BundleSource::SelfNamed(pem)),
            Err(TlsError::Bundle {
                problem: CaProblem::NoTrustDomain,
                ..
            })
        ));
        // A CA naming another domain than the configured one: refused.
        let other = tmp.path().join("other.pem");
        std::fs::write(&other, Ca::spiffe("td-a.test").cert_pem()).unwrap();
        match load(&domain(other)) {
            Err(TlsError::Bundle {
                problem: CaProblem::OtherTrustDomain { named, configured },
                ..
            }) => assert_eq!(
                (named.as_str(), configured.as_str()),
                ("td-a.test", "td-b.test")
            ),
            other => panic!("{other:?}"),
        }
        // A leaf in a bundle: refused.
        let leaf = tmp.path().join("leaf.pem");
        let l = Ca::spiffe("td-b.test")
            .svid(&["spiffe://td-b.test/wl"], crate::test_pki::Validity::Now);
        std::fs::write(&leaf, &l.cert_pem).unwrap();
        assert!(matches!(
            load(&domain(leaf)),
            Err(TlsError::Bundle {
                problem: CaProblem::NotCa,
                ..
            })
        ));
    }
}
