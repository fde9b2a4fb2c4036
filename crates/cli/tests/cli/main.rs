//! End-to-end tests of the `zt-audit` binary: one test binary, shared helpers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod bad_input;
mod interop;
mod keygen;
mod otel_python;
mod otel_rust;
mod serve;
mod store;
mod surface;
mod v1;

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
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
