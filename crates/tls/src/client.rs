//! Client-side TLS: which CAs a client trusts, and the identity it presents for mTLS.
//!
//! There is no setting that skips verification: a server whose certificate does not chain to
//! the trusted CAs, or does not name the host asked for, is refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::TlsError;
use crate::reload::ReloadingKey;

/// A client certificate chain and key (an X.509-SVID), PEM files, reloaded when they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// What a client trusts and who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA certificates to trust instead of the system's roots (a SPIFFE trust bundle, a
    /// private CA).
    pub ca: Option<PathBuf>,
    /// The identity presented when a server asks for one (mTLS).
    pub identity: Option<ClientIdentity>,
}

impl ClientTls {
    /// From the files a command line names: the CA bundle, and the certificate and key of an
    /// identity (both, or no identity).
    pub fn from_files(ca: Option<&PathBuf>, cert: Option<&PathBuf>, key: Option<&PathBuf>) -> Self {
        Self {
            ca: ca.cloned(),
            identity: match (cert, key) {
                (Some(cert), Some(key)) => Some(ClientIdentity {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
        }
    }
}

fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Certificates the system has that rustls cannot use are skipped: a server chaining
        // to one of them is refused, which is the safe side.
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = roots.add(c);
        }
        Arc::new(roots)
    }))
}

impl ClientTls {
    /// A rustls client configuration (AWS-LC): the roots of [`ca`](Self::ca) or the
    /// system's, and the identity, if any, read again whenever its files change.
    pub fn config(&self) -> Result<ClientConfig, TlsError> {
        let provider = crate::provider::provider();
        let roots = match &self.ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for (index, c) in crate::pem::certificates("CA file", path)?
                    .into_iter()
                    .enumerate()
                {
                    roots.add(c).map_err(|e| TlsError::Pem {
                        what: "CA file",
                        path: path.clone(),
                        reason: format!("certificate {index} is not a usable trust anchor: {e}"),
                    })?;
                }
                Arc::new(roots)
            }
            None => system_roots(),
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        Ok(match &self.identity {
            Some(id) => builder.with_client_cert_resolver(Arc::new(ReloadingKey::load(
                &id.cert, &id.key, provider,
            )?)),
            None => builder.with_no_client_auth(),
        })
    }
}

/// A rustls client configuration (AWS-LC) without a client identity that trusts the system's
/// roots and, beside them, the CA certificates of the PEM file `extra` (named `what` in
/// errors): what a database client needs (the PostgreSQL store, `sslmode=require` or
/// stricter, with `PGSSLROOTCERT`). As with the system's roots, certificates in `extra` that
/// rustls cannot use are skipped; a server chaining to none of the trusted CAs is refused.
pub fn system_roots_and(
    what: &'static str,
    extra: Option<&Path>,
) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::clone(&system_roots());
    if let Some(path) = extra {
        let bytes = crate::pem::read(what, path)?;
        for c in CertificateDer::pem_slice_iter(&bytes).flatten() {
            let _ = roots.add(c);
        }
    }
    Ok(
        ClientConfig::builder_with_provider(crate::provider::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}
