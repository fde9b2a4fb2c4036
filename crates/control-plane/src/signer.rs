//! Who signs decisions: a [`Signer`] signs 32-byte digests with ECDSA P-256. [`LocalKey`] keeps
//! a PKCS#8 key in the data directory (created on first run, mode 0600); a KMS or HSM signer
//! implements the same trait (`MessageType=DIGEST`).

use std::io::Write;
use std::path::{Path, PathBuf};

use zt_core::crypto::{PublicKey, SigningKey};
use zt_core::Hash32;

use crate::error::{ControlPlaneError, SignError};

/// Signs decision digests.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The key id recorded in envelopes (`signer.key_id`, `kms_signature.key_id`).
    fn key_id(&self) -> &str;
    /// The public key, to check each signature before it is stored.
    fn public_key(&self) -> &PublicKey;
    /// DER ECDSA P-256 over `digest`. An error means the decision is not sealed.
    fn sign(&self, digest: &Hash32) -> Result<Vec<u8>, SignError>;
}

/// A P-256 key held in a file.
#[derive(Debug)]
pub struct LocalKey {
    key: SigningKey,
    public: PublicKey,
    key_id: String,
    path: PathBuf,
}

/// The key id of a public key: `cp-` and 16 hex digits of the SHA-256 of its SEC1 point.
pub fn key_id_of(public: &PublicKey) -> String {
    format!(
        "cp-{}",
        &Hash32::digest(&public.sec1_uncompressed()).to_hex()[..16]
    )
}

impl LocalKey {
    /// Loads `path`, or creates a fresh key there (mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, ControlPlaneError> {
        let io = |source| ControlPlaneError::Io {
            what: "signing key",
            path: path.to_owned(),
            source,
        };
        let key = if path.exists() {
            let pem = std::fs::read_to_string(path).map_err(io)?;
            SigningKey::from_pkcs8_pem(&pem).map_err(|source| ControlPlaneError::Key {
                path: path.to_owned(),
                source,
            })?
        } else {
            let key = SigningKey::generate();
            let pem = key
                .to_pkcs8_pem()
                .map_err(|source| ControlPlaneError::Key {
                    path: path.to_owned(),
                    source,
                })?;
            write_private(path, pem.as_bytes()).map_err(io)?;
            key
        };
        let public = key.public_key();
        Ok(Self {
            key_id: key_id_of(&public),
            key,
            public,
            path: path.to_owned(),
        })
    }

    /// Where the key lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Signer for LocalKey {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, digest: &Hash32) -> Result<Vec<u8>, SignError> {
        Ok(self.key.sign_digest(digest))
    }
}

/// Creates `path` with mode 0600 (on Unix) and writes `bytes`; refuses to overwrite.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_reloaded_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signing-key.pem");
        let a = LocalKey::load_or_create(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = LocalKey::load_or_create(&p).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let d = Hash32::digest(b"x");
        let sig = b.sign(&d).unwrap();
        a.public_key().verify_digest(&d, &sig).unwrap();
    }

    #[test]
    fn a_garbage_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signing-key.pem");
        std::fs::write(&p, "not a key").unwrap();
        let err = LocalKey::load_or_create(&p).unwrap_err();
        assert!(err.to_string().contains("signing-key.pem"), "{err}");
    }
}
