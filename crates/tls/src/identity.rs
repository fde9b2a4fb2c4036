//! Who is on the other end: the trust bundles of the SPIFFE trust domains a server trusts
//! ([`TrustBundles`], from the sources of [`crate::bundle`]), and the identity a verified
//! client certificate establishes (X.509-SVID, SPIFFE's X509-SVID specification).
//!
//! Several trust domains at once (federation): each has its own bundle, and a CA may even
//! appear in two. The bundles follow their files: when one changes it is read again (at most
//! once a second, on a handshake), and a change that cannot be used keeps the bundles in use.
//! A SPIFFE bundle whose `spiffe_sequence` goes down is refused as an older bundle put back.
//!
//! The rules for a client certificate, checked after rustls verified the chain against the
//! union of the bundles (signatures, validity window, clientAuth usage; an expired,
//! not-yet-valid or unknown-CA certificate never gets this far: the handshake fails):
//! - a leaf: not a CA, and no keyCertSign or cRLSign;
//! - exactly one URI SAN, a workload's SPIFFE ID (see [`crate::spiffe`]);
//! - the chain verifies to a CA **of the SVID's own trust domain's bundle**: a CA of `td-a`
//!   cannot issue identities in `td-b`, and a trust domain without a bundle has no identities.
//!
//! The outcome is a [`PeerIdentity`], which the server puts on each request of the connection
//! as an extension. Nothing a client sends in HTTP can make one.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::bundle::{BundleSource, Loaded};
use crate::error::{shorten, CaProblem, IdentityRefused, TlsError};
use crate::reload::{Follow, CHECK_EVERY};
use crate::spiffe::{SpiffeId, TrustDomain};

/// A filter on the paths webpki builds (see `EndEntityCert::verify_for_usage`).
type PathFilter<'a> = &'a dyn Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error>;

/// The identity a connection established at the TLS layer. Handlers read it as a request
/// extension; plain HTTP and a TLS server without trust bundles put none.
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

/// One trust domain as loaded: how many CAs, from which files, at which sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSummary {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// Its CA certificates.
    pub cas: usize,
    /// The highest `spiffe_sequence` of its SPIFFE bundles, if any sets one.
    pub sequence: Option<u64>,
}

/// The bundles as loaded at one time.
#[derive(Debug)]
struct Snapshot {
    cas: Vec<Ca>,
    anchors: Vec<TrustAnchor<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
    /// Per source, its sequence (for the anti-rollback check on reload).
    sequences: Vec<Option<u64>>,
    domains: Vec<DomainSummary>,
}

impl Snapshot {
    fn build(
        sources: &[BundleSource],
        provider: &Arc<CryptoProvider>,
        previous: Option<&Snapshot>,
    ) -> Result<Self, TlsError> {
        let mut cas = Vec::new();
        let mut roots = RootCertStore::empty();
        let mut sequences = Vec::with_capacity(sources.len());
        let mut domains: Vec<DomainSummary> = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let Loaded {
                cas: loaded,
                sequence,
            } = crate::bundle::load(source)?;
            if let (Some(now), Some(Some(was)), BundleSource::Domain { trust_domain, path }) =
                (sequence, previous.and_then(|p| p.sequences.get(i)), source)
            {
                if now < *was {
                    return Err(TlsError::SequenceWentBack {
                        path: path.clone(),
                        trust_domain: trust_domain.to_string(),
                        was: *was,
                        now,
                    });
                }
            }
            sequences.push(sequence);
            for (index, ca) in loaded.into_iter().enumerate() {
                let bad = |problem| TlsError::Bundle {
                    path: source.path().to_owned(),
                    index,
                    problem,
                };
                let anchor = webpki::anchor_from_trusted_cert(&ca.der)
                    .map_err(|e| bad(CaProblem::Anchor(e.to_string())))?
                    .to_owned();
                roots
                    .add(ca.der.clone())
                    .map_err(|e| bad(CaProblem::Anchor(e.to_string())))?;
                match domains
                    .iter_mut()
                    .find(|d| d.trust_domain == ca.trust_domain)
                {
                    Some(d) => {
                        d.cas += 1;
                        d.sequence = d.sequence.max(sequence);
                    }
                    None => domains.push(DomainSummary {
                        trust_domain: ca.trust_domain.clone(),
                        cas: 1,
                        sequence,
                    }),
                }
                cas.push(Ca {
                    trust_domain: ca.trust_domain,
                    anchor,
                });
            }
        }
        domains.sort_by(|a, b| a.trust_domain.cmp(&b.trust_domain));
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Self {
            anchors: cas.iter().map(|c| c.anchor.clone()).collect(),
            cas,
            verifier,
            sequences,
            domains,
        })
    }

    /// Whether `anchor` is a CA of trust domain `td`.
    fn speaks_for(&self, anchor: &TrustAnchor<'_>, td: &str) -> bool {
        self.cas.iter().any(|c| {
            c.trust_domain.as_str() == td
                && c.anchor.subject == anchor.subject
                && c.anchor.subject_public_key_info == anchor.subject_public_key_info
        })
    }

    /// The trust domains `anchor` is a CA of, for the refusal's text.
    fn domains_of(&self, anchor: &TrustAnchor<'_>) -> String {
        let mut tds: Vec<&str> = self
            .cas
            .iter()
            .filter(|c| {
                c.anchor.subject == anchor.subject
                    && c.anchor.subject_public_key_info == anchor.subject_public_key_info
            })
            .map(|c| c.trust_domain.as_str())
            .collect();
        tds.sort_unstable();
        tds.dedup();
        tds.join(", ")
    }
}

/// The trust bundles a server verifies client certificates with: rustls' client certificate
/// verifier (the handshake) and the SVID rules (the identity), both over the bundles in use,
/// which follow their files.
#[derive(Debug)]
pub struct TrustBundles {
    sources: Vec<BundleSource>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Snapshot>>,
    follow: Follow,
}

impl TrustBundles {
    /// Reads every source now; an error names the file and what is wrong.
    pub fn load(sources: &[BundleSource], provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let follow = Follow::new(
            sources.iter().map(|s| s.path().to_owned()).collect(),
            CHECK_EVERY,
        );
        let snapshot = Snapshot::build(sources, &provider, None)?;
        Ok(Self {
            sources: sources.to_vec(),
            provider,
            current: RwLock::new(Arc::new(snapshot)),
            follow,
        })
    }

    /// Looks at the files at most this often (default one second; zero: on every use).
    pub fn check_every(mut self, every: Duration) -> Self {
        self.follow = Follow::new(
            self.sources.iter().map(|s| s.path().to_owned()).collect(),
            every,
        );
        self
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.refresh();
        self.current()
    }

    /// The bundles as last read (no look at the files).
    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the bundles again if a file changed since they were last read.
    pub fn refresh(&self) {
        let previous = self.current();
        self.follow.refresh(
            "trust bundles",
            || Snapshot::build(&self.sources, &self.provider, Some(&previous)),
            |fresh| {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
            },
        );
    }

    /// The trust domains held now, sorted, with their CA counts and sequences.
    pub fn domains(&self) -> Vec<DomainSummary> {
        self.snapshot().domains.clone()
    }

    /// The trust domains held now, sorted.
    pub fn trust_domains(&self) -> Vec<TrustDomain> {
        self.domains().into_iter().map(|d| d.trust_domain).collect()
    }

    /// Whether trust domain `td` has a bundle here (an SVID of it can be verified).
    pub fn holds(&self, td: &str) -> bool {
        self.snapshot()
            .domains
            .iter()
            .any(|d| d.trust_domain.as_str() == td)
    }

    /// Times changed bundles were taken in.
    pub fn reloads(&self) -> u64 {
        self.follow.reloads()
    }

    /// Times changed bundles could not be used (the previous ones stayed).
    pub fn reload_failures(&self) -> u64 {
        self.follow.failures()
    }

    /// The identity a client certificate chain (leaf first, as rustls hands it over)
    /// establishes at `now`.
    pub fn identify(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> PeerIdentity {
        match check(&self.snapshot(), &self.provider, chain, now) {
            Ok(id) => PeerIdentity::Spiffe(id),
            Err(refused) => PeerIdentity::Refused(refused),
        }
    }
}

fn check(
    bundles: &Snapshot,
    provider: &CryptoProvider,
    chain: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<SpiffeId, IdentityRefused> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(IdentityRefused::Unparsable("no certificate".into()));
    };
    let (_, x) =
        X509Certificate::from_der(leaf).map_err(|e| IdentityRefused::Unparsable(e.to_string()))?;
    if x.is_ca()
        || x.key_usage()
            .ok()
            .flatten()
            .is_some_and(|ku| ku.value.key_cert_sign() || ku.value.crl_sign())
    {
        return Err(IdentityRefused::NotLeaf);
    }
    let uris = crate::bundle::uri_sans_of(&x).map_err(IdentityRefused::Unparsable)?;
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
    let algs = provider.signature_verification_algorithms.all;
    // Path building tries every path to every anchor; only a path ending at a CA of the
    // SVID's own trust domain counts.
    let own_domain = |path: &webpki::VerifiedPath<'_>| {
        if bundles.speaks_for(path.anchor(), id.trust_domain()) {
            Ok(())
        } else {
            Err(webpki::Error::UnknownIssuer)
        }
    };
    let verify = |filter: Option<PathFilter<'_>>| {
        ee.verify_for_usage(
            algs,
            &bundles.anchors,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            filter,
        )
        .map(|path| bundles.domains_of(path.anchor()))
    };
    match verify(Some(&own_domain)) {
        Ok(_) => Ok(id),
        Err(first) => match verify(None) {
            Ok(issued_by) => Err(IdentityRefused::ForeignTrustDomain {
                id: shorten(id.as_str()),
                claimed: shorten(id.trust_domain()),
                issued_by,
            }),
            Err(_) => Err(IdentityRefused::Chain(first.to_string())),
        },
    }
}

/// rustls asks the bundles in use (after looking at their files) on every handshake.
impl ClientCertVerifier for TrustBundles {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Optional: bearer tokens keep working beside SVIDs.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: the bundles can change between handshakes, and SVID clients present their
    /// SVID whatever the hints say.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.snapshot()
            .verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The bundles the handshake's certificate was verified under: no second look.
        self.current()
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The bundles the handshake's certificate was verified under: no second look.
        self.current()
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().verifier.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::test_pki::{write_bundle, Ca, Validity};
    use rustls_pki_types::pem::PemObject;
    use std::path::{Path, PathBuf};

    fn chain(leaf: &crate::test_pki::Leaf) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn bundle(dir: &Path, cas: &[&Ca]) -> Result<TrustBundles, TlsError> {
        TrustBundles::load(
            &[BundleSource::SelfNamed(write_bundle(
                &dir.join("bundle.pem"),
                cas,
            ))],
            crate::provider(),
        )
    }

    #[test]
    fn a_bundle_names_one_trust_domain_per_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Ca::spiffe("td-a.test"), Ca::spiffe("td-b.test"));
        let ok = bundle(tmp.path(), &[&a, &b, &Ca::spiffe("td-a.test")]).unwrap();
        let tds: Vec<String> = ok.trust_domains().iter().map(|t| t.to_string()).collect();
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

    fn domain(td: &str, path: PathBuf) -> BundleSource {
        BundleSource::Domain {
            trust_domain: TrustDomain::new(td).unwrap(),
            path,
        }
    }

    #[test]
    fn federated_domains_each_verify_only_their_own_svids() {
        let tmp = tempfile::tempdir().unwrap();
        // td-a: an ordinary PKI's CA (no URI SAN) as PEM; td-b: a SPIFFE bundle.
        let (a, b) = (Ca::plain("corp root"), Ca::plain("partner root"));
        let a_pem = write_bundle(&tmp.path().join("a.pem"), &[&a]);
        let b_json =
            crate::test_pki::write_spiffe_bundle(&tmp.path().join("b.json"), &[&b], Some(1));
        let bundles = TrustBundles::load(
            &[domain("td-a.test", a_pem), domain("td-b.test", b_json)],
            crate::provider(),
        )
        .unwrap();
        assert_eq!(
            bundles
                .domains()
                .iter()
                .map(|d| (d.trust_domain.to_string(), d.cas, d.sequence))
                .collect::<Vec<_>>(),
            [
                ("td-a.test".to_owned(), 1, None),
                ("td-b.test".to_owned(), 1, Some(1))
            ]
        );
        assert!(bundles.holds("td-b.test") && !bundles.holds("td-c.test"));
        let now = UnixTime::now();
        let id = |leaf| bundles.identify(&chain(&leaf), now);
        for (ca, uri) in [
            (&a, "spiffe://td-a.test/agent"),
            (&b, "spiffe://td-b.test/agent"),
        ] {
            assert_eq!(
                id(ca.svid(&[uri], Validity::Now)),
                PeerIdentity::Spiffe(SpiffeId::parse(uri).unwrap())
            );
        }
        // td-b's CA cannot speak for td-a, nor for a domain without a bundle.
        for uri in ["spiffe://td-a.test/agent", "spiffe://td-c.test/agent"] {
            match id(b.svid(&[uri], Validity::Now)) {
                PeerIdentity::Refused(IdentityRefused::ForeignTrustDomain {
                    issued_by, ..
                }) => {
                    assert_eq!(issued_by, "td-b.test")
                }
                other => panic!("{uri}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_ca_certificate_is_not_an_identity() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Ca::spiffe("td-a.test");
        let bundles = bundle(tmp.path(), &[&a]).unwrap();
        // A CA under td-a that names a workload ID: not a leaf.
        let sub = Ca::with_uris("sub", &["spiffe://td-a.test/agent"]);
        let der = CertificateDer::from(sub.der().to_vec());
        assert_eq!(
            bundles.identify(&[der], UnixTime::now()),
            PeerIdentity::Refused(IdentityRefused::NotLeaf)
        );
    }

    #[test]
    fn bundles_follow_their_files_and_refuse_an_older_sequence() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (Ca::plain("old root"), Ca::plain("new root"));
        let path = tmp.path().join("b.json");
        crate::test_pki::write_spiffe_bundle(&path, &[&old], Some(5));
        let bundles = TrustBundles::load(&[domain("td-b.test", path.clone())], crate::provider())
            .unwrap()
            .check_every(Duration::ZERO);
        let now = UnixTime::now();
        let svid = |ca: &Ca| chain(&ca.svid(&["spiffe://td-b.test/wl"], Validity::Now));
        assert!(bundles.identify(&svid(&old), now).spiffe_id().is_some());
        assert!(bundles.identify(&svid(&new), now).spiffe_id().is_none());
        // A rotation: the new root joins, sequence 6.
        let write = |cas: &[&Ca], seq| {
            // A different length or inode makes the change visible within the same second.
            let tmp_path = tmp.path().join("next.json");
            crate::test_pki::write_spiffe_bundle(&tmp_path, cas, seq);
            std::fs::rename(&tmp_path, &path).unwrap();
        };
        write(&[&old, &new], Some(6));
        assert!(bundles.identify(&svid(&new), now).spiffe_id().is_some());
        assert_eq!(bundles.reloads(), 1);
        // An older bundle put back (sequence 4, without the new root): refused, kept.
        write(&[&old], Some(4));
        assert!(bundles.identify(&svid(&new), now).spiffe_id().is_some());
        assert_eq!(bundles.reload_failures(), 1);
        // A broken file: kept too.
        std::fs::write(tmp.path().join("next.json"), "{").unwrap();
        std::fs::rename(tmp.path().join("next.json"), &path).unwrap();
        assert!(bundles.identify(&svid(&new), now).spiffe_id().is_some());
        assert_eq!(bundles.reload_failures(), 2);
        // The old root removed at sequence 7: its SVIDs stop verifying.
        write(&[&new], Some(7));
        assert!(bundles.identify(&svid(&old), now).spiffe_id().is_none());
        assert_eq!(bundles.reloads(), 2);
    }
}
