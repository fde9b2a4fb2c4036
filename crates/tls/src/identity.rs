//! Who is on the other end: a client CA bundle of SPIFFE trust domains, and the identity a
//! verified client certificate establishes (X.509-SVID, SPIFFE's X509-SVID specification).
//!
//! The rule for the bundle: every CA certificate in it names its trust domain with exactly
//! one URI SAN, the trust domain's SPIFFE ID `spiffe://<trust-domain>` (SPIRE's CAs carry it).
//! A bundle may hold several trust domains, and several CAs of one trust domain (a rotation).
//! A CA that does not name its trust domain is refused when the bundle is loaded: which
//! trust domain a CA speaks for is never guessed.
//!
//! The rules for a client certificate, checked after rustls verified the chain (signatures,
//! validity window, clientAuth usage; an expired, not-yet-valid or unknown-CA certificate
//! never gets this far: the handshake fails):
//! - exactly one URI SAN, a workload's SPIFFE ID (see [`crate::spiffe`]);
//! - its trust domain is the trust domain of a CA in the bundle **that the chain verifies
//!   to**: a CA of `td-a` cannot issue identities in `td-b`.
//!
//! The outcome is a [`PeerIdentity`], which the server puts on each request of the connection
//! as an extension. Nothing a client sends in HTTP can make one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::{shorten, CaProblem, IdentityRefused, TlsError};
use crate::spiffe::{SpiffeId, TrustDomain};

/// A filter on the paths webpki builds (see `EndEntityCert::verify_for_usage`).
type PathFilter<'a> = &'a dyn Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error>;

/// The identity a connection established at the TLS layer. Handlers read it as a request
/// extension; plain HTTP and a TLS server without a client CA bundle put none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    /// No client certificate was presented (tokens still work).
    Anonymous,
    /// A verified X.509-SVID.
    Spiffe(SpiffeId),
    /// A client certificate that verified at the TLS layer but is not an acceptable SVID.
    Refused(IdentityRefused),
}

impl PeerIdentity {
    /// The SPIFFE ID, for a verified SVID.
    pub fn spiffe_id(&self) -> Option<&SpiffeId> {
        match self {
            Self::Spiffe(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Ca {
    trust_domain: TrustDomain,
    anchor: TrustAnchor<'static>,
}

/// The CA certificates client certificates must chain to, each naming its trust domain.
#[derive(Debug)]
pub struct ClientCaBundle {
    path: PathBuf,
    cas: Vec<Ca>,
    anchors: Vec<TrustAnchor<'static>>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
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

impl ClientCaBundle {
    /// Loads a PEM bundle of one or more CA certificates.
    pub fn load(path: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let ders = crate::pem::certificates("client CA bundle", path)?;
        let mut cas = Vec::with_capacity(ders.len());
        let mut roots = RootCertStore::empty();
        for (index, der) in ders.iter().enumerate() {
            let bad = |problem| TlsError::Bundle {
                path: path.to_owned(),
                index,
                problem,
            };
            let (_, x) = X509Certificate::from_der(der)
                .map_err(|e| bad(CaProblem::Unparsable(e.to_string())))?;
            if !x.is_ca() {
                return Err(bad(CaProblem::NotCa));
            }
            let uris = uri_sans(&x).map_err(|e| bad(CaProblem::Unparsable(e)))?;
            let uri = match uris.as_slice() {
                [] => return Err(bad(CaProblem::NoTrustDomain)),
                [one] => *one,
                more => return Err(bad(CaProblem::ManyUris(more.len()))),
            };
            let trust_domain = TrustDomain::from_id(uri).map_err(|error| {
                bad(CaProblem::BadTrustDomain {
                    uri: shorten(uri),
                    error,
                })
            })?;
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|e| bad(CaProblem::Anchor(e.to_string())))?
                .to_owned();
            roots
                .add(der.clone())
                .map_err(|e| bad(CaProblem::Anchor(e.to_string())))?;
            cas.push(Ca {
                trust_domain,
                anchor,
            });
        }
        let anchors = cas.iter().map(|c| c.anchor.clone()).collect();
        Ok(Self {
            path: path.to_owned(),
            cas,
            anchors,
            roots: Arc::new(roots),
            provider,
        })
    }

    /// The bundle file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trust domains the bundle holds, sorted, once each.
    pub fn trust_domains(&self) -> Vec<&TrustDomain> {
        let mut tds: Vec<&TrustDomain> = self.cas.iter().map(|c| &c.trust_domain).collect();
        tds.sort();
        tds.dedup();
        tds
    }

    /// The roots, for rustls' client certificate verifier.
    pub(crate) fn roots(&self) -> Arc<RootCertStore> {
        Arc::clone(&self.roots)
    }

    fn trust_domain_of(&self, anchor: &TrustAnchor<'_>) -> Option<&TrustDomain> {
        self.cas
            .iter()
            .find(|c| {
                c.anchor.subject == anchor.subject
                    && c.anchor.subject_public_key_info == anchor.subject_public_key_info
            })
            .map(|c| &c.trust_domain)
    }

    /// The identity a client certificate chain (leaf first, as rustls hands it over)
    /// establishes at `now`.
    pub fn identify(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> PeerIdentity {
        match self.check(chain, now) {
            Ok(id) => PeerIdentity::Spiffe(id),
            Err(refused) => PeerIdentity::Refused(refused),
        }
    }

    fn check(
        &self,
        chain: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<SpiffeId, IdentityRefused> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(IdentityRefused::Unparsable("no certificate".into()));
        };
        let (_, x) = X509Certificate::from_der(leaf)
            .map_err(|e| IdentityRefused::Unparsable(e.to_string()))?;
        let uris = uri_sans(&x).map_err(IdentityRefused::Unparsable)?;
        let uri = match uris.as_slice() {
            [] => return Err(IdentityRefused::NoUri),
            [one] => *one,
            more => return Err(IdentityRefused::ManyUris(more.len())),
        };
        let id = SpiffeId::parse(uri).map_err(|error| IdentityRefused::BadSpiffeId {
            uri: shorten(uri),
            error,
        })?;
        let ee = webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| IdentityRefused::Unparsable(e.to_string()))?;
        let algs = self.provider.signature_verification_algorithms.all;
        // Path building tries every path to every anchor; only a path ending at a CA of the
        // SVID's own trust domain counts.
        let own_domain = |path: &webpki::VerifiedPath<'_>| match self.trust_domain_of(path.anchor())
        {
            Some(td) if td.as_str() == id.trust_domain() => Ok(()),
            _ => Err(webpki::Error::UnknownIssuer),
        };
        let verify = |filter: Option<PathFilter<'_>>| {
            ee.verify_for_usage(
                algs,
                &self.anchors,
                intermediates,
                now,
                webpki::KeyUsage::client_auth(),
                None,
                filter,
            )
            .map(|path| self.trust_domain_of(path.anchor()).cloned())
        };
        match verify(Some(&own_domain)) {
            Ok(_) => Ok(id),
            Err(first) => match verify(None) {
                Ok(issued_by) => Err(IdentityRefused::ForeignTrustDomain {
                    id: shorten(id.as_str()),
                    claimed: shorten(id.trust_domain()),
                    issued_by: issued_by.map(|t| t.to_string()).unwrap_or_default(),
                }),
                Err(_) => Err(IdentityRefused::Chain(first.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::test_pki::{write_bundle, Ca, Validity};
    use rustls_pki_types::pem::PemObject;

    fn chain(leaf: &crate::test_pki::Leaf) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn bundle(dir: &Path, cas: &[&Ca]) -> Result<ClientCaBundle, TlsError> {
        ClientCaBundle::load(
            &write_bundle(&dir.join("bundle.pem"), cas),
            crate::provider(),
        )
    }

    #[test]
    fn a_bundle_names_one_trust_domain_per_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Ca::spiffe("td-a.test"), Ca::spiffe("td-b.test"));
        let ok = bundle(tmp.path(), &[&a, &b, &Ca::spiffe("td-a.test")]).unwrap();
        let tds: Vec<&str> = ok.trust_domains().iter().map(|t| t.as_str()).collect();
        assert_eq!(tds, ["td-a.test", "td-b.test"]);
        for (ca, want) in [
            (Ca::with_uris("plain", &[]), CaProblem::NoTrustDomain),
            (
                Ca::with_uris("two", &["spiffe://x.test", "spiffe://y.test"]),
                CaProblem::ManyUris(2),
            ),
        ] {
            match bundle(tmp.path(), &[&a, &ca]) {
                Err(TlsError::Bundle { index, problem, .. }) => {
                    assert_eq!((index, problem), (1, want))
                }
                other => panic!("{other:?}"),
            }
        }
        match bundle(tmp.path(), &[&Ca::with_uris("wl", &["spiffe://x.test/wl"])]) {
            Err(TlsError::Bundle {
                problem: CaProblem::BadTrustDomain { .. },
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_svid_is_one_spiffe_id_in_the_trust_domain_of_the_ca_it_chains_to() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Ca::spiffe("td-a.test"), Ca::spiffe("td-b.test"));
        let bundle = bundle(tmp.path(), &[&a, &b]).unwrap();
        let now = UnixTime::now();
        let id = |leaf| bundle.identify(&chain(&leaf), now);
        assert_eq!(
            id(a.svid(&["spiffe://td-a.test/agent/a"], Validity::Now)),
            PeerIdentity::Spiffe(SpiffeId::parse("spiffe://td-a.test/agent/a").unwrap())
        );
        assert_eq!(
            id(b.svid(&["spiffe://td-b.test/agent/b"], Validity::Now))
                .spiffe_id()
                .map(SpiffeId::trust_domain),
            Some("td-b.test")
        );
        let refused = |leaf| match id(leaf) {
            PeerIdentity::Refused(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(a.svid(&[], Validity::Now)), IdentityRefused::NoUri);
        assert_eq!(
            refused(a.svid(
                &["spiffe://td-a.test/agent/a", "spiffe://td-a.test/agent/b"],
                Validity::Now
            )),
            IdentityRefused::ManyUris(2)
        );
        assert!(matches!(
            refused(a.svid(&["spiffe://TD-A.test/agent/a"], Validity::Now)),
            IdentityRefused::BadSpiffeId { .. }
        ));
        // td-a's CA speaking for td-b, and for a trust domain nobody holds
        for foreign in ["spiffe://td-b.test/agent/a", "spiffe://td-c.test/agent/a"] {
            match refused(a.svid(&[foreign], Validity::Now)) {
                IdentityRefused::ForeignTrustDomain { issued_by, .. } => {
                    assert_eq!(issued_by, "td-a.test")
                }
                other => panic!("{other:?}"),
            }
        }
        // past its window at the time of the check
        assert!(matches!(
            refused(a.svid(&["spiffe://td-a.test/agent/a"], Validity::Expired)),
            IdentityRefused::Chain(_)
        ));
    }
}
