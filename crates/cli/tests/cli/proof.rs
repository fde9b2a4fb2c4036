//! `verify-proof` against forged bundles (issue 11): a bundle is whoever wrote the file, so
//! nothing in it may vouch for itself. These need no node: every forgery here fails offline.

use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::{merkle, Hash32};

use crate::{fixture_key as key, v1_keyring, zt};

const OWNER: alloy::primitives::Address = alloy::primitives::Address::repeat_byte(0x0a);

/// One v1 record of chain `prod`, signed by `signer` (`None`: unsigned).
pub(crate) fn record(signer: Option<(&SigningKey, &str)>) -> (String, Hash32) {
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
pub(crate) fn forged_bundle(record: &(String, Hash32)) -> serde_json::Value {
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
        "owner": format!("{OWNER:#x}"),
        "log_id": format!("{:#x}", zt_anchor::tree::log_id(OWNER, "prod-audit")),
        "epoch": 1,
        "contract": "0x000000000000000000000000000000000000dead",
        "chain_id": 84532,
        "transaction": format!("0x{}", "ab".repeat(32)),
        "block_number": 7,
        "block_hash": format!("0x{}", "cd".repeat(32)),
        "state": "finalized",
    })
}

pub(crate) fn write(dir: &std::path::Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_owned()
}

pub(crate) fn keyring() -> String {
    v1_keyring().to_str().unwrap().to_owned()
}

/// `verify-proof` under the v1 keyring of the bundle that proves `record` by itself, written
/// as `name` in `dir`: (exit code, stdout).
fn verify_forged(
    dir: &std::path::Path,
    name: &str,
    record: &(String, Hash32),
) -> (Option<i32>, String) {
    let path = write(dir, name, &forged_bundle(record));
    let out = zt(&["verify-proof", &path, "--keyring", &keyring()]);
    (out.status.code(), zt_testkit::stdout(&out))
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
    let (code, stdout) = verify_forged(tmp.path(), "unsigned.json", &record(None));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("INVALID"), "{stdout}");
    assert!(stdout.contains("unsigned"), "{stdout}");
}

#[test]
fn a_record_signed_outside_its_keys_window_is_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    // test-only-b-expired is valid until 2026-09-30; the record says 2026-10-01.
    let late = record(Some((&key("test-only-b"), "test-only-b-expired")));
    let (code, stdout) = verify_forged(tmp.path(), "expired.json", &late);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("key_not_valid"), "{stdout}");
}

#[test]
fn an_offline_check_says_the_anchor_was_not_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = record(Some((&key("test-only-a"), "test-only-a")));
    let (code, stdout) = verify_forged(tmp.path(), "bundle.json", &signed);
    // Offline, a self-consistent bundle signed under the keyring holds, but only as far as it
    // goes: the output must say the anchor itself was not checked, and what was trusted.
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("not checked on chain"), "{stdout}");
    assert!(stdout.contains("test-only-a"), "{stdout}");
    assert!(stdout.contains("keyring.json"), "{stdout}");
}

/// Forged bundles, each named after what it lies about: none verifies offline.
#[test]
fn forged_bundles_are_invalid_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let a = key("test-only-a");
    let signed = record(Some((&a, "test-only-a")));
    let draft = |seq: u64, chain: &str, previous_hash: Hash32| V1Draft {
        chain_id: chain.into(),
        seq,
        actor: "agent-forger".into(),
        action: "hello-world.say_hello".into(),
        resource: format!("demo/{seq}"),
        decision: "allow".into(),
        reason: "forged".into(),
        timestamp: "2026-10-01T09:00:00.000Z".into(),
        previous_hash,
        context: None,
    };
    let mock =
        draft(0, "prod", Hash32::ZERO).seal_with("MOCK_ECDSA_SHA_256", "test-only-a", |_| {
            Ok::<_, std::convert::Infallible>(vec![0x30, 0x00])
        });
    let mock = mock.unwrap();
    let unlinked =
        draft(1, "prod", Hash32::digest(b"not record 0")).seal(Some((&a, "test-only-a")));
    let other_chain = draft(0, "staging", Hash32::ZERO).seal(Some((&a, "test-only-a")));
    type Forge = Box<dyn Fn(&mut serde_json::Value)>;
    let with_link = |link: String, head: Hash32| -> Forge {
        Box::new(move |b: &mut serde_json::Value| {
            b["links"] = serde_json::json!([link.clone()]);
            b["leaf"]["position"] = 1.into();
            b["leaf"]["head"] = head.to_hex().into();
            let root = merkle::leaf_hash(&merkle::head_leaf_bytes("prod", 1, &head));
            b["root"] = root.to_hex().into();
        })
    };
    let cases: Vec<(&str, Forge, &str)> = vec![
        (
            "mock-signature",
            Box::new(move |b| b["record"] = mock.json.clone().into()),
            "(mock: a proof's records must be signed",
        ),
        (
            "unlinked-link",
            with_link(unlinked.json.clone(), unlinked.current_hash),
            "INVALID: links: record 1",
        ),
        (
            "record-of-another-chain",
            Box::new(move |b| b["record"] = other_chain.json.clone().into()),
            "is of chain \"staging\", the bundle says \"prod\"",
        ),
        (
            "position-not-its-seq",
            Box::new(|b| {
                b["position"] = 4.into();
                b["leaf"]["position"] = 4.into();
            }),
            "seq jumps from 3 to 0",
        ),
        (
            "old-format",
            Box::new(|b| b["format"] = "zt-audit-proof/1".into()),
            "INVALID: format:",
        ),
        (
            "log-id-of-another-owner",
            Box::new(|b| {
                b["owner"] = format!("{:#x}", alloy::primitives::Address::repeat_byte(0x0b)).into()
            }),
            "INVALID: log_id:",
        ),
        (
            "owner-not-an-address",
            Box::new(|b| b["owner"] = "prod-audit-owner".into()),
            "INVALID: owner:",
        ),
    ];
    for (name, forge, want) in cases {
        let mut b = forged_bundle(&signed);
        forge(&mut b);
        let path = write(tmp.path(), &format!("{name}.json"), &b);
        let out = zt(&["verify-proof", &path, "--keyring", &keyring()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {stdout}");
        assert!(stdout.starts_with("INVALID"), "{name}: {stdout}");
        assert!(stdout.contains(want), "{name}: want {want:?} in {stdout}");
    }
}

/// Pins come with --rpc or not at all, and must be addresses: a usage error (2), before the
/// bundle is read.
#[test]
fn on_chain_pins_are_required_together_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = record(Some((&key("test-only-a"), "test-only-a")));
    let path = write(tmp.path(), "bundle.json", &forged_bundle(&signed));
    let ring = keyring();
    let addr = "0x000000000000000000000000000000000000dead";
    let cases: &[&[&str]] = &[
        &["--rpc", "http://127.0.0.1:1"],
        &["--rpc", "http://127.0.0.1:1", "--contract", addr],
        &["--rpc", "http://127.0.0.1:1", "--writer", addr],
        &["--contract", addr, "--writer", addr],
        &[
            "--rpc",
            "http://127.0.0.1:1",
            "--contract",
            "nope",
            "--writer",
            addr,
        ],
        &[
            "--rpc",
            "http://127.0.0.1:1",
            "--contract",
            addr,
            "--writer",
            addr,
            "--owner",
            "x",
        ],
    ];
    for extra in cases {
        let mut args = vec!["verify-proof", &path, "--keyring", &ring];
        args.extend_from_slice(extra);
        let out = zt(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stdout}");
        assert!(!stdout.contains("VALID"), "{extra:?}: {stdout}");
    }
    // Without --keyring, the unsigned forgery of the issue is not VALID either.
    let unsigned = write(tmp.path(), "unsigned.json", &forged_bundle(&record(None)));
    let out = zt(&["verify-proof", &unsigned]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("VALID"));
}
