//! PEM files in: certificate chains, private keys (PKCS#8, SEC1 or PKCS#1), CA bundles.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file, in order; an error when there is none.
pub fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates_in(what, path, &read(what, path)?)
}

/// Every certificate in the PEM text `bytes` (read from `path`, named in errors), in order;
/// an error when there is none.
pub fn certificates_in(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |reason: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err("holds no PEM CERTIFICATE".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn private_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(what, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: format!("holds no usable PEM private key: {e}"),
    })
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates("certificate", cert)?;
    let der = private_key("private key", key)?;
    let loaded = CertifiedKey::from_der(chain, der, provider).map_err(|reason| TlsError::Key {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    })?;
    Ok(Arc::new(loaded))
}
