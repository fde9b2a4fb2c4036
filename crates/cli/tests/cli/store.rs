//! `zt-audit import` and `zt-audit verify --db`: the store path, through the binary.

use std::path::Path;

use zt_testkit::report::{chain_names, kinds};

use crate::{bin, first_finding, interop_dir, interop_keyring, s, verify_db, verify_json, zt};

fn import(db: &Path, files: &[&Path]) -> std::process::Output {
    bin().import(db, &interop_keyring(), files)
}

/// Imports the interop vectors `names` into the store at `db` (it must succeed), then verifies
/// the store: (exit code, report).
fn imported(db: &Path, names: &[&str]) -> (i32, serde_json::Value) {
    let files: Vec<_> = names.iter().map(|n| interop_dir().join(n)).collect();
    let out = import(db, &files.iter().map(|f| f.as_path()).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", zt_testkit::stderr(&out));
    verify_db(db)
}

#[test]
fn imported_chain_verifies_and_reimport_is_a_no_op() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("a.db");
    let valid = interop_dir().join("valid.jsonl");
    let out = import(&db, &[&valid]);
    assert!(out.status.success(), "{}", zt_testkit::stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("12 new, 0 duplicates"));
    let out = import(&db, &[&valid]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 new, 12 duplicates"));
    let (code, report) = verify_db(&db);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 12);
    assert_eq!(report["chains"].as_array().unwrap().len(), 1);
}

#[test]
fn records_arriving_backwards_are_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("b.db");
    let text = std::fs::read_to_string(interop_dir().join("valid.jsonl")).unwrap();
    let reversed: Vec<&str> = text.lines().rev().collect();
    let rev = tmp.path().join("reversed.jsonl");
    std::fs::write(&rev, reversed.join("\n")).unwrap();
    assert!(import(&db, &[&rev]).status.success());
    let (code, report) = verify_db(&db);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn a_fork_in_the_store_is_one_fork_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("c.db");
    // valid.jsonl and rotated-key.jsonl share records 0..5, then diverge: a real fork
    let (code, report) = imported(&db, &["valid.jsonl", "rotated-key.jsonl"]);
    assert_eq!(code, 1);
    assert_eq!(kinds(&report), ["fork"], "{report:#}");
    assert_eq!(report["records"], 18);
}

/// A split view: the same two logs read as files, not through a store. They share one
/// genesis, so they are one lineage chain (named after it, as the store names it), and the
/// verifier must find the same one fork the store does, at the record where they diverge; the
/// records both files hold are read twice, not reported twice. It used to read two chains, one
/// per file, and say OK: an operator could show two auditors two histories.
#[test]
fn a_split_view_read_as_files_is_the_same_one_fork() {
    let (valid, rotated) = (
        interop_dir().join("valid.jsonl"),
        interop_dir().join("rotated-key.jsonl"),
    );
    let (code, report) = verify_json(&["--keyring", s(&interop_keyring()), s(&valid), s(&rotated)]);
    assert_eq!(code, 1, "{report:#}");
    let findings: Vec<(String, u64, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            (
                file.rsplit('/').next().unwrap().to_owned(),
                f["index"].as_u64().unwrap(),
                f["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        findings,
        [("rotated-key.jsonl".to_owned(), 6, "fork")],
        "{report:#}"
    );
    assert_eq!(
        chain_names(&report),
        ["lineage-f2cd5d9e431f4aa4"],
        "{report:#}"
    );
}

#[test]
fn rejected_envelopes_are_kept_and_fail_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("d.db");
    let files = [
        interop_dir().join("malformed.jsonl"),
        interop_dir().join("edited-decision.jsonl"),
    ];
    let out = import(&db, &[&files[0], &files[1]]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 quarantined"), "{stdout}");
    let (code, report) = verify_db(&db);
    assert_eq!(code, 1);
    let q: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "db:quarantine")
        .map(|f| (f["kind"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect();
    assert_eq!(q.len(), 2, "{report:#}");
    assert_eq!(q[0].0, "malformed");
    assert_eq!(q[1].0, "hash_mismatch");
}

#[test]
fn pretty_printed_responses_round_trip_through_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("e.db");
    let (code, report) = imported(&db, &["http-responses.json"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 5);
}

#[test]
fn missing_inputs_and_stores_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("f.db");
    let out = import(&db, &[&tmp.path().join("nope.jsonl")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.jsonl"));
    let out = zt(&["verify", "--db", s(&tmp.path().join("absent.db"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
}

#[test]
fn unknown_keys_are_stored_and_flagged_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("g.db");
    let (code, report) = imported(&db, &["unknown-key.jsonl"]);
    assert_eq!(code, 1);
    assert_eq!(report["records"], 12);
    assert_eq!(first_finding(&report), Some((11, "unknown_key".into())));
}

/// Attack 3 of issue 11 through the binary: a copy of record 9 with a broken signature is
/// imported first, then the genuine log. The genuine copy supersedes it (the chain verifies
/// to its head, all 12 signatures good), and the broken copy is kept and reported.
#[test]
fn a_broken_copy_sent_first_is_superseded_and_still_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("c.db");
    let out = import(&db, &[&interop_dir().join("forged-signature.jsonl")]);
    assert!(out.status.success(), "{}", zt_testkit::stderr(&out));
    let out = import(&db, &[&interop_dir().join("valid.jsonl")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("0 new, 11 duplicates") && text.contains("1 superseded"),
        "{text}"
    );
    let (code, report) = verify_db(&db);
    assert_eq!(code, 1, "{report:#}");
    let chain = &report["chains"].as_array().unwrap()[0];
    assert_eq!(chain["verified_signatures"], 12, "{report:#}");
    assert_eq!(chain["findings"], 0, "{report:#}");
    let last = crate::valid_lines().last().cloned().unwrap();
    let head: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(chain["head"], head["current_hash"]);
    let f = &report["findings"].as_array().unwrap()[0];
    assert_eq!(
        (f["file"].as_str(), f["kind"].as_str()),
        (Some("db:copies"), Some("bad_signature")),
        "{report:#}"
    );
    assert_eq!(
        report["findings"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
}
