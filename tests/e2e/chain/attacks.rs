//! Issue 11 on chain: only verified evidence counts, and every "valid" names a trust root the
//! person verifying gave. Each test is an attack that worked before.

use std::path::Path;
use std::process::Output;

use zt_core::Hash32;

use crate::{
    address, allowed, anchor_once, anchor_once_with, anchored_events, assert_exit,
    assert_exit_saying, both, deploy, import, prove, reconcile, sql, stdout, v1_chain,
    verify_proof, zt, Anvil, Setup,
};

const LOG: &str = "prod-audit";

/// `verify-proof` of `bundle` on `anvil` with `contract` and `writer` pinned, and `extra`.
fn pinned(anvil: &Anvil, bundle: &Path, contract: &str, writer: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--rpc",
        &anvil.url,
        "--contract",
        contract,
        "--writer",
        writer,
    ];
    args.extend_from_slice(extra);
    verify_proof(bundle, &args)
}

/// Asserts `out` exited 1 and its stdout says `want`.
fn assert_invalid(out: &Output, want: &str) {
    assert_exit(out, 1);
    assert!(stdout(out).contains(want), "{}", both(out));
}

/// An attacker with their own key and their own node account anchors the operator's log name
/// first. Before, the first writer of `keccak("prod-audit")` owned it and the operator's job
/// failed for ever.
#[test]
fn an_attacker_cannot_take_the_operators_log_first() {
    let t = Setup::start();
    let attacker = t.anvil.funded_key();
    let (op, att) = (address(&t.key), address(&attacker));

    let theirs = t.path("attacker.db");
    import(&theirs, &allowed("junk", 0, 2, Hash32::ZERO));
    assert_exit(
        &anchor_once(&t.anvil.url, &attacker, &theirs, &t.contract, LOG),
        0,
    );

    let ours = t.path("operator.db");
    let chain = allowed("cp-a", 0, 3, Hash32::ZERO);
    import(&ours, &chain);
    let out = t.anchor(&ours, LOG);
    assert!(stdout(&out).contains("epoch 1:"), "{}", both(&out));
    assert_eq!(
        anchored_events(&t.anvil, &t.contract).len(),
        2,
        "one per owner"
    );

    // Reconcile reads only the operator's log: the attacker's epoch under the same name is
    // neither confirmed nor unknown_on_chain.
    let (code, report) = t.reconcile(&ours, LOG);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["chain_epochs"], 1, "{report:#}");
    assert_eq!(report["owner"], op);
    // Asked about the attacker's log instead, the operator's store matches nothing on it.
    let (code, report) = reconcile(&t.anvil, &ours, &t.contract, &att, LOG);
    assert_eq!(code, 1, "{report:#}");

    // A proof of the operator's record holds with the operator pinned, not with the attacker.
    let bundle = t.path("proof.json");
    assert_exit(&prove(&ours, &chain[0].1, &bundle), 0);
    let with = |w: &str, extra: &[&str]| pinned(&t.anvil, &bundle, &t.contract, w, extra);
    assert_exit(&with(&op, &[]), 0);
    assert_invalid(&with(&att, &[]), "INVALID: owner:");
    // Pinning the attacker as the owner too: the transaction is still the operator's.
    assert_invalid(&with(&att, &["--owner", &op]), "INVALID: writer:");
}

/// A writer the owner authorized anchors the owner's log with `--owner`; proofs name the owner,
/// and the writer is pinned as the sender.
#[test]
fn an_authorized_writer_anchors_for_its_owner() {
    let t = Setup::start();
    let (owner, writer) = (&t.key, t.anvil.funded_key());
    let db = t.path("evidence.db");
    let chain = allowed("cp-a", 0, 2, Hash32::ZERO);
    import(&db, &chain);
    let run = |key: &str, extra: &[&str]| {
        anchor_once_with(&t.anvil.url, key, &db, &t.contract, LOG, extra)
    };
    let for_owner = ["--owner", &address(owner)];
    // Not authorized yet: refused before anything is stored or sent.
    let out = run(&writer, &for_owner);
    assert_exit_saying(&out, 2, "anchor set-writer");
    assert!(anchored_events(&t.anvil, &t.contract).is_empty());
    let out = zt(
        Some(owner),
        &[
            "anchor",
            "set-writer",
            "--rpc",
            &t.anvil.url,
            "--contract",
            &t.contract,
            "--log",
            LOG,
            "--writer",
            &address(&writer),
        ],
    );
    assert_exit(&out, 0);
    let out = run(&writer, &for_owner);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("epoch 1:"), "{}", both(&out));
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 0, "{report:#}");

    let bundle = t.path("proof.json");
    assert_exit(&prove(&db, &chain[0].1, &bundle), 0);
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(b["owner"], address(owner));
    let with = |w: &str, extra: &[&str]| pinned(&t.anvil, &bundle, &t.contract, w, extra);
    assert_exit(&with(&address(&writer), &for_owner), 0);
    // The writer alone is not the owner; the owner alone did not send it.
    assert_exit(&with(&address(&writer), &[]), 1);
    assert_exit(&with(&address(owner), &[]), 1);

    // The same store under another owner is refused: its epochs are the first owner's.
    let out = run(&writer, &[]);
    assert_exit_saying(&out, 2, "was anchored as owner");
}

/// A store edited by hand: a record on the proof's path replaced by an unsigned copy (the
/// signature is outside the hash, so every link still holds) and left on the main line.
#[test]
fn prove_refuses_a_path_through_a_record_that_does_not_count() {
    let t = Setup::start();
    let db = t.path("evidence.db");
    let chain = allowed("cp-a", 0, 4, Hash32::ZERO);
    import(&db, &chain);
    t.anchor(&db, LOG);

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
    let bundle = t.path("proof.json");
    let out = prove(&db, &chain[1].1, &bundle);
    assert_exit(&out, 2);
    assert!(!bundle.exists());
    let err = both(&out);
    assert!(
        err.contains(&chain[2].1.to_hex()),
        "names the record: {err}"
    );
    assert!(err.contains("position 2"), "{err}");
    assert!(err.contains("unsigned"), "{err}");
    // The record itself, too.
    assert_exit(&prove(&db, &chain[2].1, &bundle), 2);
    // Record 0's path, with record 2 deleted instead: a hole, not a proof.
    let holed = t.path("holed.db");
    std::fs::copy(&db, &holed).unwrap();
    sql(
        &holed,
        "DELETE FROM records WHERE chain = 'cp-a' AND position = 2",
    );
    let out = prove(&holed, &chain[0].1, &bundle);
    assert_exit_saying(&out, 2, "no single main-line record at position 2");
    assert!(!bundle.exists());
}

/// An epoch whose owner the store does not know (anchored before logs had owners, or the
/// column cleared): no proof can name the log it is in.
#[test]
fn prove_refuses_an_epoch_without_an_owner() {
    let t = Setup::start();
    let db = t.path("evidence.db");
    let chain = allowed("cp-a", 0, 2, Hash32::ZERO);
    import(&db, &chain);
    t.anchor(&db, LOG);
    sql(&db, "UPDATE anchor_epochs SET owner = NULL");
    let out = prove(&db, &chain[0].1, &t.path("proof.json"));
    assert_exit_saying(&out, 2, "anchored before logs had owners");
    // And the job will not continue that log under an owner it cannot tell.
    import(&db, &allowed("cp-a", 2, 1, chain[1].1));
    let out = anchor_once(&t.anvil.url, &t.key, &db, &t.contract, LOG);
    assert_exit_saying(&out, 2, "before logs had owners");
}

/// A key holder rewrites a record, anchors the rewrite on a contract of their own, and hands
/// out a bundle that names that contract and transaction. Every hash, signature and on-chain
/// fact in it holds, against the contract the bundle itself names.
#[test]
fn a_bundle_anchored_on_the_attackers_own_contract_is_invalid() {
    let t = Setup::start();
    let attacker = t.anvil.funded_key();
    let db = t.path("operator.db");
    let genuine = v1_chain("cp-a", 0, 2, Hash32::ZERO, |_| "deny");
    import(&db, &genuine);
    t.anchor(&db, LOG);

    // The rewrite: the same chain, its deny turned into an allow, signed with the real key,
    // anchored by the attacker on their own deployment.
    let forged_db = t.path("forged.db");
    let rewrite = allowed("cp-a", 0, 2, Hash32::ZERO);
    import(&forged_db, &rewrite);
    let theirs = deploy(&t.anvil, &attacker);
    assert_exit(
        &anchor_once(&t.anvil.url, &attacker, &forged_db, &theirs, LOG),
        0,
    );
    let bundle = t.path("forged-proof.json");
    assert_exit(&prove(&forged_db, &rewrite[0].1, &bundle), 0);

    // Checked against the bundle's own claims, everything holds: the verifier must pin.
    let out = verify_proof(&bundle, &["--rpc", &t.anvil.url]);
    assert_exit(&out, 2);
    assert!(!stdout(&out).contains("VALID"), "{}", both(&out));
    let op = address(&t.key);
    let with = |w: &str, extra: &[&str]| pinned(&t.anvil, &bundle, &t.contract, w, extra);
    assert_invalid(&with(&op, &[]), "INVALID: contract:");
    // The bundle edited to name the operator's contract and owner: the transaction is the
    // attacker's, on another contract.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    edited["contract"] = t.contract.clone().into();
    edited["owner"] = op.clone().into();
    edited["log_id"] = format!("{:#x}", zt_anchor::tree::log_id(op.parse().unwrap(), LOG)).into();
    std::fs::write(&bundle, edited.to_string()).unwrap();
    assert_invalid(&with(&op, &[]), "INVALID: writer:");
    // The attacker's transaction, pinned as the attacker: still not on the pinned contract.
    let out = with(&address(&attacker), &["--owner", &op]);
    assert_invalid(&out, "INVALID: transaction:");

    // A bundle for another network, or a transaction the chain never saw.
    for (field, value, want) in [
        ("chain_id", serde_json::json!(8453), "INVALID: chain_id:"),
        (
            "transaction",
            serde_json::json!(format!("0x{}", "ee".repeat(32))),
            "is not in the chain",
        ),
    ] {
        let mut b = edited.clone();
        b[field] = value;
        std::fs::write(&bundle, b.to_string()).unwrap();
        let out = with(&op, &[]);
        assert_eq!(out.status.code(), Some(1), "{field}: {}", both(&out));
        assert!(stdout(&out).contains(want), "{field}: {}", both(&out));
    }
}

/// Sends the lines with the OpenTelemetry Python SDK's OTLP/HTTP exporter.
fn send(py: &str, endpoint: &str, file: &Path) {
    let (code, out, err) =
        zt_testkit::tools::send_envelopes(py, endpoint, file, &["--timeout", "10"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// The leaves `(chain, position, head)` of one epoch of the store's log.
fn leaves(db: &Path, epoch: u64) -> Vec<(String, u64, Vec<u8>)> {
    zt_testkit::store::rows(
        db,
        &format!(
            "SELECT chain, position, head FROM anchor_leaves WHERE epoch = {epoch} ORDER BY idx"
        ),
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)),
    )
}

/// Attack 1 of issue 11, end to end: nobody's key, only the receiver's address. An unsigned
/// record naming the real chain at seq 2^53-1 (and an unsigned successor of its head) sent
/// through the real Python OTel exporter into `zt-audit serve` became the main line's head;
/// `anchor run` anchored it, and no genuine record after it could ever be anchored again.
#[test]
fn an_unsigned_record_sent_to_serve_is_never_anchored() {
    use zt_core::envelope::{V1Draft, MAX_SEQ};
    let t = Setup::start();
    let db = t.path("serve.db");
    let py = zt_testkit::tools::python();
    let srv = zt_testkit::Server::serve(crate::bin(), &db, &crate::v1_keyring(), &[]);

    let genuine = allowed("cp-prod", 0, 4, Hash32::ZERO);
    let forged = |seq: u64, prev: Hash32| {
        V1Draft {
            chain_id: "cp-prod".into(),
            seq,
            actor: "agent-hello".into(),
            action: "aws.ec2.terminate_instances".into(),
            resource: "i-0prod".into(),
            decision: "allow".into(),
            reason: "forged".into(),
            timestamp: "2026-10-01T09:59:00.000Z".into(),
            previous_hash: prev,
            ..V1Draft::default()
        }
        .seal(None)
    };
    let hijack = forged(MAX_SEQ, Hash32::digest(b"no such record"));
    let squat = forged(4, genuine[3].1);
    let mut lines: Vec<String> = genuine.iter().map(|g| g.0.clone()).collect();
    lines.push(hijack.json.clone());
    lines.push(squat.json.clone());
    let file = t.path("round1.jsonl");
    zt_testkit::keys::write_lines(&file, &lines);
    send(&py, &srv.url, &file);

    t.anchor(&db, LOG);
    assert_eq!(
        leaves(&db, 1),
        [("cp-prod".to_owned(), 3, genuine[3].1.as_bytes().to_vec())],
        "only the genuine head is anchored"
    );
    // The forgeries are kept as evidence, and proofs refuse them.
    let kept = zt_testkit::store::rows(
        &db,
        "SELECT COUNT(*) FROM records WHERE status = 'unsigned'",
        |r| r.get::<_, i64>(0),
    );
    assert_eq!(kept, [2]);
    for (name, forgery) in [("h.json", &hijack), ("s.json", &squat)] {
        let out = prove(&db, &forgery.current_hash, &t.path(name));
        assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    }

    // Genuine records after the forged successor still anchor.
    let more = allowed("cp-prod", 4, 2, genuine[3].1);
    let file = t.path("round2.jsonl");
    zt_testkit::keys::write_records(&file, &more);
    send(&py, &srv.url, &file);
    t.anchor(&db, LOG);
    assert_eq!(
        leaves(&db, 2),
        [("cp-prod".to_owned(), 5, more[1].1.as_bytes().to_vec())]
    );
    assert_exit(&prove(&db, &more[1].1, &t.path("p.json")), 0);
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 0, "{report:#}");
    drop(srv);
    // The store still shows the attempt: verify --db fails on the two unsigned records.
    let (code, report) = crate::verify_db(&db);
    assert_eq!(code, 1, "{report:#}");
    let kinds = zt_testkit::report::kinds(&report);
    assert!(kinds.contains(&"unsigned"), "{kinds:?}");
}
