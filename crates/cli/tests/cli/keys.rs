//! Keys bound to chains (`"chains"` in a keyring): a control plane's key signing another
//! control plane's chain is `unauthorized_signer`, never counts in a store, and cannot displace
//! the chain's genuine record. Without `chains`, `verify` says any key may sign any chain.

use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::Hash32;

use crate::{bin, fixture_key, fixtures, s, verify_json, zt};

fn record(chain: &str, seq: u64, prev: Hash32, key: &SigningKey, key_id: &str) -> (String, Hash32) {
    let s = V1Draft {
        chain_id: chain.into(),
        seq,
        actor: "agent-a".into(),
        action: "payments.transfer".into(),
        resource: format!("invoice/{seq}"),
        decision: "allow".into(),
        reason: "allowed by policy".into(),
        timestamp: format!("2026-11-01T10:00:0{seq}.000Z"),
        previous_hash: prev,
        context: None,
    }
    .seal(Some((key, key_id)));
    (s.json, s.current_hash)
}

#[test]
fn a_key_signs_only_the_chains_the_keyring_binds_it_to() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (fixture_key("test-only-a"), fixture_key("test-only-b"));
    let pem =
        |n: &str| std::fs::read_to_string(fixtures().join(format!("keys/{n}.pub.pem"))).unwrap();
    let ring = d.path().join("keyring.json");
    std::fs::write(
        &ring,
        serde_json::json!({"keys": [
            {"key_id": "cp-a-key", "public_key_pem": pem("test-only-a"), "chains": ["cp-a", "cp-a.admin"]},
            {"key_id": "cp-b-key", "public_key_pem": pem("test-only-b"), "chains": ["cp-b", "cp-b.admin"]},
        ]})
        .to_string(),
    )
    .unwrap();
    // cp-b's genesis, then cp-a's key signing seq 1 of cp-b, arriving before cp-b's own seq 1
    let b0 = record("cp-b", 0, Hash32::ZERO, &b, "cp-b-key");
    let forged = record("cp-b", 1, b0.1, &a, "cp-a-key");
    let b1 = record("cp-b", 1, b0.1, &b, "cp-b-key");
    let file = d.path().join("b.jsonl");
    std::fs::write(&file, format!("{}\n{}\n{}\n", b0.0, forged.0, b1.0)).unwrap();
    let (code, report) = verify_json(&["--keyring", s(&ring), s(&file)]);
    assert_eq!(code, 1, "{report:#}");
    let f = &report["findings"][0];
    assert_eq!(
        (f["index"].as_u64(), f["kind"].as_str()),
        (Some(1), Some("unauthorized_signer")),
        "{report:#}"
    );
    assert!(
        f["message"].as_str().unwrap().contains("cp-a, cp-a.admin"),
        "{f}"
    );
    // the genuine seq 1 is the head, not the forged one
    assert_eq!(report["chains"][0]["head"], b1.1.to_hex(), "{report:#}");

    // in a store: imported forged first, the genuine record still takes its place
    let db = d.path().join("evidence.db");
    for (i, line) in [&forged.0, &b0.0, &b1.0].iter().enumerate() {
        let one = d.path().join(format!("part-{i}.jsonl"));
        std::fs::write(&one, format!("{line}\n")).unwrap();
        let o = bin().import(&db, &ring, &[&one]);
        assert!(
            o.status.code().is_some_and(|c| c <= 1),
            "{}",
            zt_testkit::stderr(&o)
        );
    }
    let (code, report) = verify_json(&["--db", s(&db), "--keyring", s(&ring)]);
    assert_eq!(code, 1, "{report:#}");
    let b_chain = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chain"] == "cp-b")
        .unwrap()
        .clone();
    assert_eq!(b_chain["head"], b1.1.to_hex(), "{report:#}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "unauthorized_signer"),
        "{report:#}"
    );
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "fork"
                && f["found"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&b1.1.to_hex())),
        "the genuine record is not reported as a fork: {report:#}"
    );

    // without `chains`: the same file verifies only as far as the keys go, and says so
    let open_ring = d.path().join("open.json");
    std::fs::write(
        &open_ring,
        serde_json::json!({"keys": [
            {"key_id": "cp-a-key", "public_key_pem": pem("test-only-a")},
            {"key_id": "cp-b-key", "public_key_pem": pem("test-only-b")},
        ]})
        .to_string(),
    )
    .unwrap();
    let out = zt_testkit::stdout(&zt(&["verify", "--keyring", s(&open_ring), s(&file)]));
    assert!(
        out.contains("binds no key to chains, so any of them may sign any chain"),
        "{out}"
    );
}
