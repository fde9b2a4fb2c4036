//! The binary's services as processes: `serve` with real OTLP exporters (Rust, Python), over
//! TLS and mTLS, `control-plane` and `demo`, the go-spiffe client, `conformance` against a
//! control plane, and the browser (`tui`) in a real tmux.
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

use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "../support/mod.rs"]
mod support;
pub use support::{python, repo, spawn_server};

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

/// Asserts the store at `db` verifies and holds `records` records.
pub fn assert_store_verifies(db: &Path, records: u64) {
    let (code, report) = verify_db(db);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], records);
}

/// Sends `sig` (`-TERM`, `-INT`, ...) to `child` and waits up to 20 s for it to exit:
/// (exit code, stderr).
pub fn signal_and_wait(child: &mut std::process::Child, sig: &str) -> (Option<i32>, String) {
    use std::io::Read;
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            return (st.code(), err);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the process did not stop after {sig}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
