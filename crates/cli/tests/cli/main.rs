//! The `zt-audit` commands that run once over files: their exit codes, reports and output.
//! The services (serve, control-plane, demo, tui) are end-to-end tests in `tests/e2e/`.
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
mod surface;
mod terminal_injection;
mod v1;

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "../../../../tests/e2e/support/mod.rs"]
mod support;
pub use support::repo;

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// The shared interop vectors.
pub fn interop_dir() -> PathBuf {
    fixtures().join("interop/zt-infra-full")
}

/// The records of `valid.jsonl`, split on `\n` only.
pub fn valid_lines() -> Vec<String> {
    std::fs::read_to_string(interop_dir().join("valid.jsonl"))
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `zt-audit verify --db DB --keyring <interop keyring> --format json`.
pub fn verify_db(db: &Path) -> (i32, serde_json::Value) {
    let ring = interop_dir().join("keyring.json");
    verify_json(&[
        "--db",
        db.to_str().unwrap(),
        "--keyring",
        ring.to_str().unwrap(),
    ])
}

/// The processes alive now whose environment holds `ZT_TEST_MARKER=marker` (a process started
/// with that marker, and everything it started): `(pid, command line)`.
pub fn marked_processes(marker: &str) -> Vec<(u32, String)> {
    let want = format!("ZT_TEST_MARKER={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Gone, or not ours to read: not one of ours either way.
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

/// Runs `zt-audit` with `args`; asserts it did not panic.
pub fn zt(args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zt-audit"))
        .args(args)
        .output()
        .expect("run zt-audit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "zt-audit panicked: {stderr}");
    out
}

/// Runs `zt-audit verify --format json ...` and parses the report.
pub fn verify_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut full = vec!["verify", "--format", "json"];
    full.extend_from_slice(args);
    let out = zt(&full);
    let code = out.status.code().expect("exit code");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, v)
}

/// (index, kind) of the first finding.
pub fn first_finding(report: &serde_json::Value) -> Option<(u64, String)> {
    let f = report["findings"].as_array()?.first()?;
    Some((f["index"].as_u64()?, f["kind"].as_str()?.to_owned()))
}
