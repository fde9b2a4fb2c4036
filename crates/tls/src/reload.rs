//! A certificate chain and key that follow their files.
//!
//! SPIRE rotates X.509-SVIDs about every hour (spiffe-helper rewrites the files), and ACME
//! certificates every few weeks: a server or client that read its certificate once would
//! present an expired one. [`ReloadingKey`] is asked for the key on every handshake (it is
//! rustls' certificate resolver, server side and client side); at most once per interval it
//! looks at the files' metadata (modification time, length, inode), and when they changed it
//! reads the pair again. A pair that cannot be used (unreadable, not PEM, a key that does not
//! match the certificate: spiffe-helper writes the two files one after the other) leaves the
//! current pair in place, and says why once per change of the files; the next change is tried
//! again. Connections already open keep the certificate they were made with.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::error::TlsError;

/// How often the files are looked at, at most (on a handshake).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a file looked like when it was read: modification time, length, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp_of(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

#[derive(Debug)]
struct Checked {
    at: Instant,
    /// The files as last read, successfully or not.
    seen: Vec<Stamp>,
}

/// Files that something was made from, looked at again at most once per interval: the one
/// rule of "read it again when it changed" for certificates and trust bundles. A change that
/// cannot be used keeps what is in use, says why once per change, and is counted.
#[derive(Debug)]
pub(crate) struct Follow {
    paths: Vec<PathBuf>,
    checked: Mutex<Checked>,
    every: Duration,
    reloads: AtomicU64,
    failures: AtomicU64,
}

impl Follow {
    /// Follows `paths` as they are now (call right after reading them).
    pub(crate) fn new(paths: Vec<PathBuf>, every: Duration) -> Self {
        let seen = paths.iter().map(|p| stamp_of(p)).collect();
        Self {
            paths,
            checked: Mutex::new(Checked {
                at: Instant::now(),
                seen,
            }),
            every,
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// When it is time to look and the files changed: `read` them again and, when that
    /// worked, `take` the result (`what` names them in the message). Another thread already
    /// looking is enough: this one goes on with what is in use.
    pub(crate) fn refresh<T>(
        &self,
        what: &str,
        read: impl FnOnce() -> Result<T, TlsError>,
        take: impl FnOnce(T),
    ) {
        let Ok(mut checked) = self.checked.try_lock() else {
            return;
        };
        if checked.at.elapsed() < self.every {
            return;
        }
        checked.at = Instant::now();
        let now: Vec<Stamp> = self.paths.iter().map(|p| stamp_of(p)).collect();
        if now == checked.seen {
            return;
        }
        checked.seen = now;
        match read() {
            Ok(fresh) => {
                take(fresh);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                eprintln!("zt-tls: {} reloaded", zt_core::text::escape(what));
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "zt-tls: {} changed but cannot be used, keeping the current one: {}",
                    zt_core::text::escape(what),
                    zt_core::text::escape(&e.to_string())
                );
            }
        }
    }
}

/// A certificate chain and private key read from two PEM files, read again when they change.
#[derive(Debug)]
pub struct ReloadingKey {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    follow: Follow,
}

impl ReloadingKey {
    /// Reads the pair now; an error when it cannot be used (there is nothing to fall back
    /// on yet).
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let follow = Follow::new(vec![cert.to_owned(), key.to_owned()], CHECK_EVERY);
        let loaded = crate::pem::certified_key(cert, key, &provider)?;
        Ok(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(loaded),
            follow,
        })
    }

    /// Looks at the files at most this often (default [`CHECK_EVERY`]; zero: on every use).
    pub fn check_every(mut self, every: Duration) -> Self {
        self.follow.every = every;
        self
    }

    /// The pair in use now, after looking at the files if it is time to.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.refresh();
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Times a changed pair was taken in.
    pub fn reloads(&self) -> u64 {
        self.follow.reloads()
    }

    /// Times a changed pair could not be used (the previous one stayed).
    pub fn reload_failures(&self) -> u64 {
        self.follow.failures()
    }

    /// Reads the pair again if the files changed since they were last read.
    pub fn refresh(&self) {
        self.follow.refresh(
            &format!("certificate {}", self.cert.display()),
            || crate::pem::certified_key(&self.cert, &self.key, &self.provider),
            |fresh| *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh,
        );
    }
}

impl rustls::server::ResolvesServerCert for ReloadingKey {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for ReloadingKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
