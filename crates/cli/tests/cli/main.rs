//! The `zt-audit` commands that run once over files (verify, import, keygen, capability,
//! prove and verify-proof): their exit codes, reports and output. The services (serve,
//! control-plane, demo, tui) are end-to-end tests under the repository's `tests/e2e/`; the
//! harness is `zt-testkit` (tests/harness).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod bad_input;
mod capability;
mod interop;
mod keygen;
mod keys;
mod numbers;
mod proof;
mod secrets;
mod store;
mod sumdb;
mod surface;
mod terminal_injection;
mod v1;

use std::path::Path;
use std::process::Output;

pub use zt_testkit::keys::{fixture_key, interop_dir, interop_keyring, v1_keyring, valid_lines};
pub use zt_testkit::report::first_finding;
use zt_testkit::Bin;
pub use zt_testkit::{fixtures, repo, s};

/// The `zt-audit` under test.
pub fn bin() -> Bin {
    Bin::under_test(env!("CARGO_BIN_EXE_zt-audit"))
}

/// Runs `zt-audit` with `args`; asserts it did not panic.
pub fn zt(args: &[&str]) -> Output {
    bin().run(args)
}

/// Runs `zt-audit verify --format json ...` and parses the report.
pub fn verify_json(args: &[&str]) -> (i32, serde_json::Value) {
    bin().verify_json(args)
}

/// `zt-audit verify --db DB --keyring <interop keyring> --format json`.
pub fn verify_db(db: &Path) -> (i32, serde_json::Value) {
    verify_json(&["--db", s(db), "--keyring", s(&interop_keyring())])
}
