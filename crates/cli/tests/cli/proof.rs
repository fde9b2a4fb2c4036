//! `verify-proof` against forged bundles (issue 11): a bundle is whoever wrote the file, so
//! nothing in it may vouch for itself. These need no node: every forgery here fails offline.

use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::{merkle, Hash32};

use crate::{fixtures, zt};

fn key(name: &str) -> SigningKey {
    let pem = std::fs::read_to_string(fixtures().join(format!("keys/{name}.key.pem"))).unwrap();
    SigningKey::from_pkcs8_pem(&pem).unwrap()
}

/// One v1 record of chain `prod`, signed by `signer` (`None`: unsigned).
fn record(signer: Option<(&SigningKey, &str)>) -> (String, Hash32) {
    let s = V1Draft {
        chain_id: "prod".into(),
        seq: 0,
        actor: "agent-forger".into(),
        action: "aws.ec2.terminate_instances".into(),
        resource: "arn:aws:ec2:us-east-2:111122223333:instance/i-0abc".into(),
        decision: "allow".into(),
        reason: "forged".into(),
        timestamp: "2026-10-01T09:00:00.000Z".into(),
        previous_hash: Hash32::ZERO,
        context: None,
    }
    .seal(signer);
    (s.json, s.current_hash)
}

/// A bundle that proves `record` by itself: a one-leaf tree whose root is the record's own leaf,
/// an invented contract and transaction. Every hash in it is consistent.
fn forged_bundle(record: &(String, Hash32)) -> serde_json::Value {
    let root = merkle::leaf_hash(&merkle::head_leaf_bytes("prod", 0, &record.1));
    serde_json::json!({
        "format": zt_anchor::proof::FORMAT,
        "record": record.0,
        "chain": "prod",
        "position": 0,
        "links": [],
        "leaf": {"chain": "prod", "position": 0, "head": record.1.to_hex()},
        "leaf_index": 0,
        "tree_size": 1,
        "inclusion_proof": [],
        "root": root.to_hex(),
        "log": "prod-audit",
        "log_id": format!("{:#x}", zt_anchor::tree::log_id("prod-audit")),
        "epoch": 1,
        "contract": "0x000000000000000000000000000000000000dead",
        "chain_id": 84532,
        "transaction": format!("0x{}", "ab".repeat(32)),
        "block_number": 7,
        "block_hash": format!("0x{}", "cd".repeat(32)),
        "state": "finalized",
    })
}

fn write(dir: &std::path::Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_owned()
}

fn keyring() -> String {
    fixtures()
        .join("v1/keyring.json")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_proof_is_not_checked_without_a_trust_root() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = record(Some((&key("test-only-a"), "test-only-a")));
    let path = write(tmp.path(), "bundle.json", &forged_bundle(&signed));
    let out = zt(&["verify-proof", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(!stdout.contains("VALID"), "{stdout}");
    assert!(
        stderr.contains("--keyring") && stderr.contains("only as good as the keys"),
        "{stderr}"
    );
}

#[test]
fn a_forged_bundle_of_one_unsigned_record_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "unsigned.json", &forged_bundle(&record(None)));
    let out = zt(&["verify-proof", &path, "--keyring", &keyring()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("INVALID"), "{stdout}");
    assert!(stdout.contains("unsigned"), "{stdout}");
}

#[test]
fn a_record_signed_outside_its_keys_window_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    // test-only-b-expired is valid until 2026-09-30; the record says 2026-10-01.
    let late = record(Some((&key("test-only-b"), "test-only-b-expired")));
    let path = write(tmp.path(), "expired.json", &forged_bundle(&late));
    let out = zt(&["verify-proof", &path, "--keyring", &keyring()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("key_not_valid"), "{stdout}");
}

#[test]
fn an_offline_check_says_the_anchor_was_not_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = record(Some((&key("test-only-a"), "test-only-a")));
    let path = write(tmp.path(), "bundle.json", &forged_bundle(&signed));
    let out = zt(&["verify-proof", &path, "--keyring", &keyring()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Offline, a self-consistent bundle signed under the keyring holds, but only as far as it
    // goes: the output must say the anchor itself was not checked, and what was trusted.
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("not checked on chain"), "{stdout}");
    assert!(stdout.contains("test-only-a"), "{stdout}");
    assert!(stdout.contains("keyring.json"), "{stdout}");
}
