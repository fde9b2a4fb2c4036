//! The machine-readable surface scripts rely on, pinned by snapshot, and standard input.

use std::io::Write;
use std::process::Stdio;

use crate::{fixtures, verify_json};

/// The whole `--format json` report of a broken chain. Paths are made relative so the
/// snapshot does not depend on where the repository lives.
#[test]
fn json_report_shape_is_stable() {
    let dir = fixtures().join("interop/zt-infra-full");
    let (code, mut report) = verify_json(&[
        "--keyring",
        dir.join("keyring.json").to_str().unwrap(),
        dir.join("fork.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let root = format!("{}/", fixtures().display());
    let text = serde_json::to_string(&report)
        .unwrap()
        .replace(&root, "fixtures/");
    report = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("fork_report", report);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let dir = fixtures().join("interop/zt-infra-full");
    let mut child = crate::bin()
        .command(["verify", "--format", "json", "--keyring"])
        .arg(dir.join("keyring.json"))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(dir.join("valid.jsonl")).unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 12);
    // A lineage chain is named after its genesis, whichever input it is read from.
    assert_eq!(report["chains"][0]["chain"], "lineage-f2cd5d9e431f4aa4");
    assert_eq!(report["chains"][0]["files"][0], "<stdin>");
}
