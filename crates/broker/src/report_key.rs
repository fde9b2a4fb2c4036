//! The key a broker signs its execution reports with: whoever reads it signs as the broker,
//! so it is refused unless only its owner can read it. Its path is kept, canonical, so the
//! sandbox can keep every command away from it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zt_core::crypto::SigningKey;

/// Why a report key was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportKeyError {
    /// It cannot be read.
    #[error("cannot read report key {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error("report key {} is readable by others (mode {mode:o}): whoever reads it signs as this broker; chmod 600 it", path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a PKCS#8 PEM P-256 private key.
    #[error("report key {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: zt_core::error::KeyError,
    },
}

/// A loaded report key, and where it lives.
#[derive(Debug)]
pub struct ReportKey {
    /// The key.
    pub key: SigningKey,
    /// The file, canonical (the sandbox protects it).
    pub path: PathBuf,
}

impl ReportKey {
    /// Loads the key at `path`, refusing one that group or others may read or write.
    ///
    /// # Errors
    /// See [`ReportKeyError`].
    pub fn load(path: &Path) -> Result<Self, ReportKeyError> {
        let read = |source| ReportKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let canonical = std::fs::canonicalize(path).map_err(read)?;
        let mode = std::fs::metadata(&canonical)
            .map_err(read)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(ReportKeyError::Exposed {
                path: canonical,
                mode: mode & 0o777,
            });
        }
        let pem = std::fs::read_to_string(&canonical).map_err(read)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|source| ReportKeyError::Key {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            key,
            path: canonical,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_others_can_read_is_refused_and_a_private_one_loads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("report.pem");
        let pem = SigningKey::generate().to_pkcs8_pem().expect("pem");
        std::fs::write(&path, pem.as_bytes()).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = ReportKey::load(&path).expect_err("group-readable");
        assert!(
            matches!(err, ReportKeyError::Exposed { mode: 0o640, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let k = ReportKey::load(&path).expect("private key loads");
        assert_eq!(k.path, path.canonicalize().expect("canonical"));
        assert!(matches!(
            ReportKey::load(&dir.path().join("missing.pem")),
            Err(ReportKeyError::Read { .. })
        ));
    }
}
