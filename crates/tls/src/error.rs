//! TLS errors: files that cannot be used (start-up and reload), and client certificates that
//! verified at the TLS layer but are not an acceptable SPIFFE identity.

use std::path::PathBuf;

use crate::spiffe::SpiffeIdError;

/// A certificate, key or CA bundle file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{what} {}: {source}", .path.display())]
    Read {
        /// What the file is for.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not PEM, or holds none of what it should.
    #[error("{what} {}: {reason}", .path.display())]
    Pem {
        /// What the file is for.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate chain and key (they do not match, or the key type is
    /// not supported).
    #[error("certificate {} and key {}: {reason}", .cert.display(), .key.display())]
    Key {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        reason: rustls::Error,
    },
    /// A CA certificate in a trust bundle cannot be used (see [`CaProblem`]).
    #[error("trust bundle {}: certificate {index}: {problem}", .path.display())]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// The certificate's index in the file (0-based).
        index: usize,
        /// What is wrong with it.
        problem: CaProblem,
    },
    /// A SPIFFE bundle (JWK Set) that cannot be used.
    #[error("SPIFFE bundle {} for {trust_domain}: {problem}", .path.display())]
    SpiffeBundle {
        /// The file.
        path: PathBuf,
        /// The trust domain it was given for.
        trust_domain: String,
        /// What is wrong with it.
        problem: SpiffeBundleError,
    },
    /// A SPIFFE bundle whose `spiffe_sequence` went down: an older bundle put back.
    #[error("SPIFFE bundle {} for {trust_domain}: spiffe_sequence went from {was} to {now}; a bundle's sequence only goes up (an older bundle?)", .path.display())]
    SequenceWentBack {
        /// The file.
        path: PathBuf,
        /// Its trust domain.
        trust_domain: String,
        /// The sequence in use.
        was: u64,
        /// The file's.
        now: u64,
    },
    /// rustls could not build a verifier or configuration from what was loaded.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A `--trust-bundle` value that is not `spiffe://TRUST-DOMAIN=FILE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleSourceError {
    /// No `=` between the trust domain and the file.
    #[error("expected spiffe://TRUST-DOMAIN=FILE, got {0:?}")]
    Shape(String),
    /// What comes before `=` is not a trust domain's SPIFFE ID.
    #[error("{id:?} is not a trust domain's SPIFFE ID: {source}")]
    TrustDomain {
        /// What was given (shortened).
        id: String,
        /// Why.
        #[source]
        source: SpiffeIdError,
    },
    /// Nothing after `=`.
    #[error("no file after {id}=")]
    NoFile {
        /// The trust domain's ID as given.
        id: String,
    },
}

/// Why a SPIFFE bundle (a JWK Set, SPIFFE Trust Domain and Bundle specification section 4)
/// cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpiffeBundleError {
    /// Not a JSON object with a `keys` array (or a member given twice).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An entry of `keys` is not an object.
    #[error("keys[{index}] is not an object")]
    NotObject {
        /// The entry.
        index: usize,
    },
    /// An `x509-svid` entry's `x5c` is not an array.
    #[error("keys[{index}].x5c is not an array: {found}")]
    X5cNotArray {
        /// The entry.
        index: usize,
        /// What `x5c` holds, as JSON.
        found: String,
    },
    /// An `x509-svid` entry's first `x5c` value is not a string.
    #[error("keys[{index}].x5c[0] is not a string")]
    X5cNotString {
        /// The entry.
        index: usize,
    },
    /// An `x509-svid` entry's first `x5c` value is not base64.
    #[error("keys[{index}].x5c[0] is not base64: {source}")]
    NotBase64 {
        /// The entry.
        index: usize,
        /// Why.
        source: base64::DecodeError,
    },
    /// No `x509-svid` entry carries a certificate.
    #[error("no x509-svid entry with a certificate: the trust domain does not support X509-SVIDs")]
    NoX509Svid,
}

/// Why a CA certificate cannot be part of a client CA bundle. The rule: each CA carries
/// exactly one URI SAN, its trust domain's SPIFFE ID `spiffe://<trust-domain>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaProblem {
    /// The certificate does not parse.
    #[error("not an X.509 certificate: {0}")]
    Unparsable(String),
    /// Not a CA (basic constraints).
    #[error("not a CA certificate (basicConstraints cA is not true)")]
    NotCa,
    /// No URI SAN, where the CA has to name its trust domain (`--client-ca`).
    #[error("no URI SAN naming its trust domain (spiffe://<trust-domain>); name the trust domain yourself with --trust-bundle spiffe://<trust-domain>=FILE")]
    NoTrustDomain,
    /// The CA names another trust domain than the one it was given for.
    #[error("it names trust domain {named} but was given as the bundle of {configured}")]
    OtherTrustDomain {
        /// The trust domain its URI SAN names.
        named: String,
        /// The one the configuration gave.
        configured: String,
    },
    /// More than one URI SAN.
    #[error("{0} URI SANs; a CA names exactly one trust domain")]
    ManyUris(usize),
    /// A URI SAN that is not a trust domain's SPIFFE ID.
    #[error("URI SAN {uri:?} is not a trust domain's SPIFFE ID: {error}")]
    BadTrustDomain {
        /// The URI (shortened).
        uri: String,
        /// Why.
        error: SpiffeIdError,
    },
    /// rustls' root store refused it.
    #[error("not usable as a trust anchor: {0}")]
    Anchor(String),
}

/// Why a client certificate that verified at the TLS layer is still not an identity. Each
/// of these refuses the request, and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityRefused {
    /// The leaf does not parse (or its SAN extension does not).
    #[error("the client certificate does not parse: {0}")]
    Unparsable(String),
    /// No URI SAN at all.
    #[error("the client certificate has no URI SAN (an X.509-SVID has exactly one SPIFFE ID)")]
    NoUri,
    /// More than one URI SAN.
    #[error("the client certificate has {0} URI SANs (an X.509-SVID has exactly one SPIFFE ID)")]
    ManyUris(usize),
    /// The URI SAN is not a workload's SPIFFE ID.
    #[error("the client certificate's URI SAN {uri:?} is not a SPIFFE ID: {error}")]
    BadSpiffeId {
        /// The URI (shortened).
        uri: String,
        /// Why.
        error: SpiffeIdError,
    },
    /// The SVID names a trust domain that none of the CAs it chains to holds.
    #[error(
        "the SVID {id} names trust domain {claimed}, but it was issued under trust domain {issued_by}'s CA"
    )]
    ForeignTrustDomain {
        /// The SVID's SPIFFE ID.
        id: String,
        /// Its trust domain.
        claimed: String,
        /// The trust domain of the CA it chains to.
        issued_by: String,
    },
    /// The certificate is a CA's (keyCertSign or cRLSign), not a workload's leaf.
    #[error("the client certificate may sign certificates (keyCertSign/cRLSign): an X.509-SVID is a leaf")]
    NotLeaf,
    /// The chain did not verify again for the identity check (it did in the handshake: a
    /// certificate that expired in between, say).
    #[error("the client certificate chain does not verify: {0}")]
    Chain(String),
}

/// Shortens an attacker-influenced string before it goes into an error.
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
