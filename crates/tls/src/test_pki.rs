//! Certificates made on the fly for tests (feature `test-pki`, rcgen): a CA per SPIFFE trust
//! domain carrying its `spiffe://<td>` URI SAN, X.509-SVIDs, server certificates, and the bad
//! ones the tests refuse (expired, not yet valid, two URI SANs, from a foreign CA). Never for
//! production: keys live in memory and in the test's files.
#![allow(
    clippy::expect_used,
    reason = "test support: a certificate that cannot be made is a broken test"
)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From an hour ago to a day from now.
    Now,
    /// Ended yesterday.
    Expired,
    /// Starts tomorrow.
    NotYetValid,
}

impl Validity {
    fn window(self) -> (OffsetDateTime, OffsetDateTime) {
        let now = OffsetDateTime::now_utc();
        match self {
            Self::Now => (now - Duration::hours(1), now + Duration::days(1)),
            Self::Expired => (now - Duration::days(2), now - Duration::days(1)),
            Self::NotYetValid => (now + Duration::days(1), now + Duration::days(2)),
        }
    }
}

fn ia5(s: &str) -> SanType {
    SanType::URI(s.try_into().expect("an ASCII URI"))
}

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: Vec<u8>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A root CA of trust domain `td`: its one URI SAN is `spiffe://td`.
    pub fn spiffe(td: &str) -> Ca {
        Self::with_uris(&format!("{td} root CA"), &[&format!("spiffe://{td}")])
    }

    /// A root CA with these URI SANs (none: a CA that names no trust domain).
    pub fn with_uris(common_name: &str, uris: &[&str]) -> Ca {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, common_name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.subject_alt_names = uris.iter().map(|u| ia5(u)).collect();
        let (from, to) = Validity::Now.window();
        p.not_before = from - Duration::days(1);
        p.not_after = to + Duration::days(30);
        let key = KeyPair::generate().expect("a P-256 key");
        let cert = p.self_signed(&key).expect("self-signed CA");
        Ca {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A root CA of an ordinary PKI: no URI SAN, so it names no trust domain.
    pub fn plain(common_name: &str) -> Ca {
        Self::with_uris(common_name, &[])
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate, PEM (as `Leaf::cert_pem` is named).
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    fn leaf(&self, mut p: CertificateParams, validity: Validity) -> Leaf {
        let (from, to) = validity.window();
        p.not_before = from;
        p.not_after = to;
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("a P-256 key");
        let cert = p.signed_by(&key, &self.issuer).expect("signed leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// An X.509-SVID with these URI SANs (one, for a valid SVID), for client and server use.
    pub fn svid(&self, uris: &[&str], validity: Validity) -> Leaf {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "svid");
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        p.subject_alt_names = uris.iter().map(|u| ia5(u)).collect();
        self.leaf(p, validity)
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Leaf {
        let mut p = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server names");
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.leaf(p, Validity::Now)
    }
}

/// A leaf certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Leaf {
    /// Writes `NAME.pem` and `NAME.key` into `dir`: (certificate, key).
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write certificate");
        std::fs::write(&key, &self.key_pem).expect("write key");
        (cert, key)
    }
}

/// Writes CA certificates into one PEM bundle file.
pub fn write_bundle(path: &Path, cas: &[&Ca]) -> PathBuf {
    let text: String = cas.iter().map(|c| c.pem()).collect();
    std::fs::write(path, text).expect("write bundle");
    path.to_owned()
}

/// Writes CA certificates as a SPIFFE bundle (a JWK Set of `x509-svid` entries, one CA in each
/// `x5c`), with `spiffe_sequence` when given.
pub fn write_spiffe_bundle(path: &Path, cas: &[&Ca], sequence: Option<u64>) -> PathBuf {
    use base64::Engine as _;
    let keys: Vec<String> = cas
        .iter()
        .map(|c| {
            format!(
                r#"{{"use":"x509-svid","kty":"EC","crv":"P-256","x5c":["{}"]}}"#,
                base64::engine::general_purpose::STANDARD.encode(c.der())
            )
        })
        .collect();
    let seq = sequence.map_or(String::new(), |s| format!(r#""spiffe_sequence":{s},"#));
    std::fs::write(path, format!(r#"{{{seq}"keys":[{}]}}"#, keys.join(",")))
        .expect("write SPIFFE bundle");
    path.to_owned()
}
