//! The binary's services as processes: `serve` with real OTLP exporters (Rust, Python), over
//! TLS and mTLS, `control-plane` and `demo`, the go-spiffe client, `conformance` against a
//! control plane, and the browser (`tui`) in a real tmux. The harness is `zt-testkit`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod conformance;
mod control_plane;
mod otel_python;
mod otel_rust;
mod serve;
mod spiffe_go;
mod tls;
mod tui;

use std::path::Path;
use std::process::Output;

pub use zt_testkit::keys::{fixture_key, interop_dir, interop_keyring, valid_lines};
pub use zt_testkit::{fixtures, repo, s, Bin, ControlPlane, Server};

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

/// Asserts the store at `db` verifies under the interop keyring and holds `records` records.
pub fn assert_store_verifies(db: &Path, records: u64) {
    let (code, report) = verify_db(db);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], records);
}

/// `zt-audit serve` on `db` under the interop keyring, with `extra` arguments.
pub fn serve(db: &Path, extra: &[&str]) -> Server {
    Server::serve(bin(), db, &interop_keyring(), extra)
}

/// `zt-audit control-plane --dir DIR`, with `extra` arguments.
pub fn control_plane(dir: &Path, extra: &[&str]) -> ControlPlane {
    ControlPlane::start(bin(), dir, extra)
}
