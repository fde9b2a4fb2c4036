//! Where things are: the repository, its fixtures, paths as the `&str` arguments take.

use std::path::{Path, PathBuf};

/// The repository's root (this crate lives in `tests/harness`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fixtures/`.
pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// A file under `fixtures/`, e.g. `fixture("v1/keyring.json")`.
pub fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// A path as UTF-8, for an argument list (every path the tests make is UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
