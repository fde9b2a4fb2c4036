//! Terminal injection (issue 11): chain ids, key ids, file names and other text that comes
//! from the evidence reach a person's terminal escaped, so a record cannot erase, overwrite or
//! reorder the FAIL lines of a report; `--format json` keeps every value exact.

use std::path::Path;

use zt_core::envelope::V1Draft;
use zt_core::Hash32;
use zt_testkit::text::{raw_chars, HOSTILE};

use crate::{fixture_key, fixtures, s, v1_keyring, verify_json, zt};

/// A chain id that erases its own FAIL line, prints a verdict of its own under it, then hides
/// more behind a zero-width space and a C1 control sequence introducer.
fn hostile_chain() -> String {
    format!("cp{HOSTILE}\nOK: 2 records in 1 chain verify\n\u{200b}\u{9b}2J")
}

/// Asserts `text` holds nothing a terminal acts on or hides; the line breaks of the report
/// itself are the only control characters allowed in its output.
fn assert_inert(what: &str, text: &str) {
    let bad = raw_chars(text, true);
    assert!(
        bad.is_empty(),
        "{what} reaches the terminal raw: {bad:?} in\n{}",
        text.escape_debug()
    );
}

/// Two records of the hostile chain: the first signed under a hostile key id the keyring does
/// not hold (`unknown_key`, whose `found` is that key id), the second not linked to it
/// (`broken_link`). Actor, action, resource and reason carry the same sequences.
fn hostile_records() -> Vec<String> {
    let key = fixture_key("test-only-a");
    let kid = format!("test-only-a{HOSTILE}");
    let draft = |seq: u64, previous_hash: Hash32| V1Draft {
        chain_id: hostile_chain(),
        seq,
        actor: format!("agent{HOSTILE}"),
        action: format!("hello{HOSTILE}"),
        resource: format!("demo\t/{seq}\u{7f}"),
        decision: "allow".into(),
        reason: format!("fine\u{2066}{HOSTILE}\u{feff}"),
        timestamp: format!("2026-10-01T08:00:0{seq}.000Z"),
        previous_hash,
        context: None,
    };
    let first = draft(0, Hash32::ZERO).seal(Some((&key, &kid)));
    let second = draft(1, Hash32::digest(b"not the first record")).seal(Some((&key, &kid)));
    vec![first.json, second.json]
}

/// The evidence file, under a name that carries the sequences too.
fn hostile_file(dir: &Path) -> String {
    let path = dir.join(format!("evidence{HOSTILE}.jsonl"));
    std::fs::write(&path, hostile_records().join("\n") + "\n").unwrap();
    path.to_str().unwrap().to_owned()
}

fn keyring() -> String {
    v1_keyring().display().to_string()
}

#[test]
fn verify_text_shows_hostile_evidence_escaped_and_keeps_its_fail_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let file = hostile_file(tmp.path());
    let out = zt(&["verify", "--keyring", &keyring(), &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_inert("verify's report", &text);
    // Nothing the record says can become a line of the report.
    assert!(
        text.lines().all(|l| !l.starts_with("OK")),
        "a forged verdict line:\n{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("FAIL  cp")), "{text}");
    assert!(text.contains("unknown_key"), "{text}");
    assert!(text.contains("broken_link"), "{text}");
    assert!(text.contains("FAILED: 3 findings"), "{text}");
    // The sequences are shown, not dropped: a reader sees that something is there.
    assert!(
        text.contains(r"cp\u{1b}[2K\u{d}\u{202e}\u{a}OK: "),
        "{text}"
    );
    assert!(
        text.contains(r"test-only-a\u{1b}[2K\u{d}\u{202e}"),
        "{text}"
    );
    assert!(
        text.contains(r"evidence\u{1b}[2K\u{d}\u{202e}.jsonl"),
        "{text}"
    );
}

#[test]
fn verify_json_keeps_hostile_values_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let file = hostile_file(tmp.path());
    let (code, report) = verify_json(&["--keyring", &keyring(), &file]);
    assert_eq!(code, 1);
    assert_eq!(report["chains"][0]["chain"], hostile_chain());
    let unknown = &report["findings"][0];
    assert_eq!(unknown["kind"], "unknown_key");
    assert_eq!(unknown["found"], format!("test-only-a{HOSTILE}"));
    assert_eq!(unknown["file"], file);
}

#[test]
fn import_and_verify_db_show_hostile_evidence_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let file = hostile_file(tmp.path());
    let db = tmp.path().join("store.db");
    let db = db.to_str().unwrap();
    let out = zt(&["import", "--db", db, "--keyring", &keyring(), &file]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_inert("import's summary", &text);
    assert!(
        text.contains(r"evidence\u{1b}[2K\u{d}\u{202e}.jsonl: 2 new"),
        "{text}"
    );

    let out = zt(&["verify", "--db", db, "--keyring", &keyring()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_inert("verify --db's report", &text);
    assert!(text.lines().all(|l| !l.starts_with("OK")), "{text}");
    assert!(text.contains("FAILED:"), "{text}");
}

#[test]
fn errors_name_hostile_paths_escaped() {
    let missing = format!("/nonexistent/keyring{HOSTILE}.json");
    let out = zt(&["verify", "--keyring", &missing, "-"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_inert("the error line", &err);
    assert!(err.contains(r"keyring\u{1b}[2K\u{d}\u{202e}.json"), "{err}");
}

/// A proof bundle is whoever wrote the file's text: its one record holds (under a key given
/// by the hostile key id it names), but the leaf names another chain, and the INVALID line
/// quotes that name. Under a keyring without that key id, the INVALID line quotes the id.
#[test]
fn verify_proof_shows_a_hostile_bundle_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let record = hostile_records().swap_remove(0);
    let head = zt_core::Envelope::from_json(record.as_bytes())
        .unwrap()
        .current_hash;
    let bundle = serde_json::json!({
        "format": zt_anchor::proof::FORMAT,
        "record": record,
        "chain": hostile_chain(),
        "position": 0,
        "links": [],
        "leaf": {"chain": format!("other{HOSTILE}\nVALID"), "position": 0, "head": head.to_hex()},
        "leaf_index": 0,
        "tree_size": 1,
        "inclusion_proof": [],
        "root": head.to_hex(),
        "log": format!("log{HOSTILE}"),
        "owner": format!("0x{HOSTILE}"),
        "log_id": "0x00",
        "epoch": 1,
        "contract": format!("0x{HOSTILE}"),
        "chain_id": 84532,
        "transaction": format!("0x{HOSTILE}"),
        "block_number": 2,
        "block_hash": "0x01",
        "state": "finalized",
    });
    let path = tmp.path().join("bundle.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let out = zt(&["verify-proof", s(&path), "--keyring", &keyring()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_inert("verify-proof's verdict", &text);
    assert!(text.starts_with("INVALID: record: record 0 "), "{text}");
    assert!(
        text.contains(
            r#"unknown_key: key "test-only-a\u{1b}[2K\u{d}\u{202e}" is not in the keyring"#
        ),
        "{text}"
    );

    let key = format!(
        "test-only-a{HOSTILE}={}",
        fixtures().join("keys/test-only-a.pub.pem").display()
    );
    let out = zt(&["verify-proof", s(&path), "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_inert("verify-proof's verdict", &text);
    assert!(text.starts_with("INVALID: leaf: "), "{text}");
    assert!(
        text.contains(r"the leaf is (other\u{1b}[2K\u{d}\u{202e}\u{a}VALID, 0)"),
        "{text}"
    );
    assert!(text.lines().all(|l| l != "VALID"), "{text}");
}
