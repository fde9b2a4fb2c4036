//! Issue 11 on chain: only verified evidence counts, and every "valid" names a trust root the
//! person verifying gave. Each test is an attack that worked before.

use std::path::Path;

use zt_core::Hash32;

use crate::{anchor_once, both, deploy, import, reconcile, sql, stdout, v1_chain, zt, Anvil};

const LOG: &str = "prod-audit";

fn allow(_: u64) -> &'static str {
    "allow"
}

fn prove(db: &Path, record: &Hash32, out: &Path) -> std::process::Output {
    zt(
        None,
        &[
            "prove",
            "--db",
            db.to_str().unwrap(),
            "--record",
            &record.to_hex(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
}

/// An attacker with their own key and their own node account anchors the operator's log name
/// first. Before, the first writer of `keccak("prod-audit")` owned it and the operator's job
/// failed for ever.
#[test]
fn an_attacker_cannot_take_the_operators_log_first() {
    let anvil = Anvil::start();
    let operator = anvil.funded_key();
    let attacker = anvil.funded_key();
    let contract = deploy(&anvil, &operator);
    let tmp = tempfile::tempdir().unwrap();

    let theirs = tmp.path().join("attacker.db");
    import(&theirs, &v1_chain("junk", 0, 2, Hash32::ZERO, allow));
    let out = anchor_once(&anvil.url, &attacker, &theirs, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    let ours = tmp.path().join("operator.db");
    import(&ours, &v1_chain("cp-a", 0, 3, Hash32::ZERO, allow));
    let out = anchor_once(&anvil.url, &operator, &ours, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("epoch 1:"), "{}", both(&out));
    let (code, report) = reconcile(&anvil, &ours, &contract, LOG);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["chain_epochs"], 1,
        "only the operator's log: {report:#}"
    );
}

/// A store edited by hand: a record on the proof's path replaced by an unsigned copy (the
/// signature is outside the hash, so every link still holds) and left on the main line.
#[test]
fn prove_refuses_a_path_through_a_record_that_does_not_count() {
    let anvil = Anvil::start();
    let key = anvil.funded_key();
    let contract = deploy(&anvil, &key);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("evidence.db");
    let chain = v1_chain("cp-a", 0, 4, Hash32::ZERO, allow);
    import(&db, &chain);
    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Record 2's signature stripped: same hash, same links, no signature.
    let unsigned = {
        let mut v: serde_json::Value = serde_json::from_str(&chain[2].0).unwrap();
        v["kms_signature"] =
            serde_json::json!({"algorithm": "none", "key_id": "", "signature": ""});
        v.to_string()
    };
    sql(
        &db,
        &format!(
            "UPDATE records SET raw = CAST('{}' AS BLOB), status = 'unsigned', key_id = '' \
             WHERE chain = 'cp-a' AND position = 2",
            unsigned.replace('\'', "''")
        ),
    );
    let bundle = tmp.path().join("proof.json");
    let out = prove(&db, &chain[1].1, &bundle);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(!bundle.exists());
    let err = both(&out);
    assert!(
        err.contains(&chain[2].1.to_hex()),
        "names the record: {err}"
    );
    assert!(err.contains("position 2"), "{err}");
    assert!(err.contains("unsigned"), "{err}");
    // The record itself, too.
    let out = prove(&db, &chain[2].1, &bundle);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

/// A key holder rewrites a record, anchors the rewrite on a contract of their own, and hands
/// out a bundle that names that contract and transaction. Every hash, signature and on-chain
/// fact in it holds, against the contract the bundle itself names.
#[test]
fn a_bundle_anchored_on_the_attackers_own_contract_is_invalid() {
    let anvil = Anvil::start();
    let operator = anvil.funded_key();
    let attacker = anvil.funded_key();
    let contract = deploy(&anvil, &operator);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("operator.db");
    let genuine = v1_chain("cp-a", 0, 2, Hash32::ZERO, |_| "deny");
    import(&db, &genuine);
    let out = anchor_once(&anvil.url, &operator, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // The rewrite: the same chain, its deny turned into an allow, signed with the real key,
    // anchored by the attacker on their own deployment.
    let forged_db = tmp.path().join("forged.db");
    let rewrite = v1_chain("cp-a", 0, 2, Hash32::ZERO, allow);
    import(&forged_db, &rewrite);
    let theirs = deploy(&anvil, &attacker);
    let out = anchor_once(&anvil.url, &attacker, &forged_db, &theirs, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let bundle = tmp.path().join("forged-proof.json");
    let out = prove(&forged_db, &rewrite[0].1, &bundle);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    let ring = crate::repo().join("fixtures/v1/keyring.json");
    let out = zt(
        None,
        &[
            "verify-proof",
            bundle.to_str().unwrap(),
            "--keyring",
            ring.to_str().unwrap(),
            "--rpc",
            &anvil.url,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(stdout(&out).contains("INVALID"), "{}", both(&out));
}
