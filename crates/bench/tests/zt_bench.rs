//! `zt-bench` as scripts run it: its own binary (so `cargo test` builds it beside `zt-audit`
//! for `scripts/test.sh`), every benchmark listed, and a clear refusal when the `zt-audit` it
//! measures is missing, before any work is done.

use std::process::Command;

fn zt_bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zt-bench"))
}

#[test]
fn help_lists_every_benchmark_and_hides_the_attackers() {
    let out = zt_bench().arg("--help").output().expect("zt-bench runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["verify", "ingest", "tui", "anchor", "control-plane"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
    // The attacker processes are the benchmarks' own helpers, not benchmarks.
    assert!(
        !text.contains("flood-sender") && !text.contains("slow-sender"),
        "{text}"
    );
}

#[test]
fn a_missing_zt_audit_is_named_and_nothing_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-zt-audit");
    let out = zt_bench()
        .args(["verify", "--records", "10", "--runs", "1"])
        .env("ZT_AUDIT_BIN", &missing)
        .current_dir(dir.path())
        .output()
        .expect("zt-bench runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ZT_AUDIT_BIN") && err.contains(&missing.display().to_string()),
        "{err}"
    );
    // Refused before generating anything.
    assert!(!err.contains("generating"), "{err}");
}
