//! The file through which the sandbox helper says why it refused to start a command: made by
//! the broker before the helper starts (only this user can read it), read when the helper
//! ends, removed with the run. Shared by `run.rs`, which makes it, and `supervise.rs`, which
//! reads it when the helper exits.

use std::path::PathBuf;

use crate::error::BrokerError;

/// Where the helper writes why it refused, if it does: a file only this user can read,
/// removed with the run.
#[derive(Debug)]
pub struct RefusalFile(PathBuf);

impl RefusalFile {
    pub(crate) fn create() -> Result<Self, BrokerError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut bytes = [0u8; 12];
        rand_bytes(&mut bytes);
        let path = std::env::temp_dir().join(format!(
            "zt-broker-{}-{}",
            std::process::id(),
            hex_of(&bytes)
        ));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| BrokerError::Spawn {
                command: path.clone(),
                source,
            })?;
        Ok(Self(path))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// The helper's side: writes `why` into the file at `path` (never through a link).
    pub fn write(path: &std::path::Path, why: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nofollow)
            .open(path)
        {
            let _ = f.write_all(why.as_bytes());
        }
    }

    /// What the helper wrote, if anything.
    pub fn read(&self) -> Option<String> {
        std::fs::read_to_string(&self.0)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }
}

impl Drop for RefusalFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn rand_bytes(out: &mut [u8]) {
    use rand_core::RngCore;
    rand_core::OsRng.fill_bytes(out);
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
