//! Issue 11 on chain: only verified evidence counts, and every "valid" names a trust root the
//! person verifying gave. Each test is an attack that worked before.

use std::path::Path;

use zt_core::Hash32;

use crate::{
    address, anchor_once, anchored_events, both, deploy, import, reconcile, sql, stdout, v1_chain,
    zt, Anvil,
};

const LOG: &str = "prod-audit";

fn allow(_: u64) -> &'static str {
    "allow"
}

fn keyring() -> String {
    crate::repo()
        .join("fixtures/v1/keyring.json")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `verify-proof FILE --keyring <v1 keyring> ARGS...`.
fn verify_proof(file: &Path, args: &[&str]) -> std::process::Output {
    let ring = keyring();
    let mut all = vec!["verify-proof", file.to_str().unwrap(), "--keyring", &ring];
    all.extend_from_slice(args);
    zt(None, &all)
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
    let chain = v1_chain("cp-a", 0, 3, Hash32::ZERO, allow);
    import(&ours, &chain);
    let out = anchor_once(&anvil.url, &operator, &ours, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("epoch 1:"), "{}", both(&out));
    assert_eq!(anchored_events(&anvil, &contract).len(), 2, "one per owner");

    // Reconcile reads only the operator's log: the attacker's epoch under the same name is
    // neither confirmed nor unknown_on_chain.
    let (code, report) = reconcile(&anvil, &ours, &contract, &address(&operator), LOG);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["chain_epochs"], 1, "{report:#}");
    assert_eq!(report["owner"], address(&operator));
    // Asked about the attacker's log instead, the operator's store matches nothing on it.
    let (code, report) = reconcile(&anvil, &ours, &contract, &address(&attacker), LOG);
    assert_eq!(code, 1, "{report:#}");

    // A proof of the operator's record holds with the operator pinned, not with the attacker.
    let bundle = tmp.path().join("proof.json");
    let out = prove(&ours, &chain[0].1, &bundle);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let pinned = |writer: &str| {
        verify_proof(
            &bundle,
            &[
                "--rpc",
                &anvil.url,
                "--contract",
                &contract,
                "--writer",
                writer,
            ],
        )
    };
    let out = pinned(&address(&operator));
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = pinned(&address(&attacker));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(stdout(&out).contains("INVALID: owner:"), "{}", both(&out));
    // Pinning the attacker as the owner too: the transaction is still the operator's.
    let out = verify_proof(
        &bundle,
        &[
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--writer",
            &address(&attacker),
            "--owner",
            &address(&operator),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(stdout(&out).contains("INVALID: writer:"), "{}", both(&out));
}

/// A writer the owner authorized anchors the owner's log with `--owner`; proofs name the owner,
/// and the writer is pinned as the sender.
#[test]
fn an_authorized_writer_anchors_for_its_owner() {
    let anvil = Anvil::start();
    let owner = anvil.funded_key();
    let writer = anvil.funded_key();
    let contract = deploy(&anvil, &owner);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("evidence.db");
    let chain = v1_chain("cp-a", 0, 2, Hash32::ZERO, allow);
    import(&db, &chain);
    let run = |key: &str| {
        zt(
            Some(key),
            &[
                "anchor",
                "run",
                "--db",
                db.to_str().unwrap(),
                "--rpc",
                &anvil.url,
                "--contract",
                &contract,
                "--log",
                LOG,
                "--owner",
                &address(&owner),
                "--once",
            ],
        )
    };
    // Not authorized yet: refused before anything is stored or sent.
    let out = run(&writer);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("anchor set-writer"), "{}", both(&out));
    assert!(anchored_events(&anvil, &contract).is_empty());
    let out = zt(
        Some(&owner),
        &[
            "anchor",
            "set-writer",
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--log",
            LOG,
            "--writer",
            &address(&writer),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&writer);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stdout(&out).contains("epoch 1:"), "{}", both(&out));
    let (code, report) = reconcile(&anvil, &db, &contract, &address(&owner), LOG);
    assert_eq!(code, 0, "{report:#}");

    let bundle = tmp.path().join("proof.json");
    let out = prove(&db, &chain[0].1, &bundle);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(b["owner"], address(&owner));
    let base = ["--rpc", &anvil.url, "--contract", &contract];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        verify_proof(&bundle, &v)
    };
    let out = with(&["--writer", &address(&writer), "--owner", &address(&owner)]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // The writer alone is not the owner; the owner alone did not send it.
    let out = with(&["--writer", &address(&writer)]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let out = with(&["--writer", &address(&owner)]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));

    // The same store under another owner is refused: its epochs are the first owner's.
    let out = zt(
        Some(&writer),
        &[
            "anchor",
            "run",
            "--db",
            db.to_str().unwrap(),
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--log",
            LOG,
            "--once",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("was anchored as owner"),
        "{}",
        both(&out)
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
    // Record 0's path, with record 2 deleted instead: a hole, not a proof.
    let holed = tmp.path().join("holed.db");
    std::fs::copy(&db, &holed).unwrap();
    sql(
        &holed,
        "DELETE FROM records WHERE chain = 'cp-a' AND position = 2",
    );
    let out = prove(&holed, &chain[0].1, &bundle);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("no single main-line record at position 2"),
        "{}",
        both(&out)
    );
    assert!(!bundle.exists());
}

/// An epoch whose owner the store does not know (anchored before logs had owners, or the
/// column cleared): no proof can name the log it is in.
#[test]
fn prove_refuses_an_epoch_without_an_owner() {
    let anvil = Anvil::start();
    let key = anvil.funded_key();
    let contract = deploy(&anvil, &key);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("evidence.db");
    let chain = v1_chain("cp-a", 0, 2, Hash32::ZERO, allow);
    import(&db, &chain);
    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    sql(&db, "UPDATE anchor_epochs SET owner = NULL");
    let bundle = tmp.path().join("proof.json");
    let out = prove(&db, &chain[0].1, &bundle);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("anchored before logs had owners"),
        "{}",
        both(&out)
    );
    // And the job will not continue that log under an owner it cannot tell.
    import(&db, &v1_chain("cp-a", 2, 1, chain[1].1, allow));
    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("before logs had owners"),
        "{}",
        both(&out)
    );
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

    // Checked against the bundle's own claims, everything holds: the verifier must pin.
    let out = verify_proof(&bundle, &["--rpc", &anvil.url]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(!stdout(&out).contains("VALID"), "{}", both(&out));
    let op = address(&operator);
    let out = verify_proof(
        &bundle,
        &[
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--writer",
            &op,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stdout(&out).contains("INVALID: contract:"),
        "{}",
        both(&out)
    );
    // The bundle edited to name the operator's contract and owner: the transaction is the
    // attacker's, on another contract.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    edited["contract"] = contract.clone().into();
    edited["owner"] = op.clone().into();
    edited["log_id"] = format!("{:#x}", zt_anchor::tree::log_id(op.parse().unwrap(), LOG)).into();
    std::fs::write(&bundle, edited.to_string()).unwrap();
    let out = verify_proof(
        &bundle,
        &[
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--writer",
            &op,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(stdout(&out).contains("INVALID: writer:"), "{}", both(&out));
    // The attacker's transaction, pinned as the attacker: still not on the pinned contract.
    let out = verify_proof(
        &bundle,
        &[
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
            "--writer",
            &address(&attacker),
            "--owner",
            &op,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stdout(&out).contains("INVALID: transaction:"),
        "{}",
        both(&out)
    );

    // A bundle for another network, or a transaction the chain never saw.
    let pins = [
        "--rpc",
        &anvil.url,
        "--contract",
        &contract,
        "--writer",
        &op,
    ];
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
        let out = verify_proof(&bundle, &pins);
        assert_eq!(out.status.code(), Some(1), "{field}: {}", both(&out));
        assert!(stdout(&out).contains(want), "{field}: {}", both(&out));
    }
}

/// A `zt-audit serve` process on a free loopback port; stopped (and reaped) on drop.
struct Serve {
    child: std::process::Child,
    endpoint: String,
}

impl Serve {
    fn start(db: &Path) -> Serve {
        let ring = keyring();
        let (child, url) = crate::spawn_server(&[
            "serve".as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--keyring".as_ref(),
            ring.as_ref(),
        ]);
        Serve {
            child,
            endpoint: format!("{}/v1/logs", url.trim_end_matches("/v1/logs")),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the lines with the OpenTelemetry Python SDK's OTLP/HTTP exporter.
fn send(py: &str, endpoint: &str, file: &Path) {
    let out = std::process::Command::new(py)
        .arg(crate::repo().join("tests/python/send_envelopes.py"))
        .args(["--endpoint", endpoint, "--file", file.to_str().unwrap()])
        .args(["--timeout", "10"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The leaves `(chain, position, head)` of one epoch of the store's log.
fn leaves(db: &Path, epoch: u64) -> Vec<(String, u64, Vec<u8>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT chain, position, head FROM anchor_leaves WHERE epoch = ?1 ORDER BY idx")
        .unwrap();
    st.query_map([epoch as i64], |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Attack 1 of issue 11, end to end: nobody's key, only the receiver's address. An unsigned
/// record naming the real chain at seq 2^53-1 (and an unsigned successor of its head) sent
/// through the real Python OTel exporter into `zt-audit serve` became the main line's head;
/// `anchor run` anchored it, and no genuine record after it could ever be anchored again.
#[test]
fn an_unsigned_record_sent_to_serve_is_never_anchored() {
    use zt_core::envelope::{V1Draft, MAX_SEQ};
    let anvil = Anvil::start();
    let key = anvil.funded_key();
    let contract = deploy(&anvil, &key);
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("serve.db");
    let py = crate::python();
    let srv = Serve::start(&db);

    let genuine = v1_chain("cp-prod", 0, 4, Hash32::ZERO, allow);
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
            context: None,
        }
        .seal(None)
    };
    let hijack = forged(MAX_SEQ, Hash32::digest(b"no such record"));
    let squat = forged(4, genuine[3].1);
    let mut lines: Vec<String> = genuine.iter().map(|g| g.0.clone()).collect();
    lines.push(hijack.json.clone());
    lines.push(squat.json.clone());
    let file = tmp.path().join("round1.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    send(&py, &srv.endpoint, &file);

    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        leaves(&db, 1),
        [("cp-prod".to_owned(), 3, genuine[3].1.as_bytes().to_vec())],
        "only the genuine head is anchored"
    );
    // The forgeries are kept as evidence, and proofs refuse them.
    let c = rusqlite::Connection::open(&db).unwrap();
    let kept: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM records WHERE status = 'unsigned'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 2);
    let out = prove(&db, &hijack.current_hash, &tmp.path().join("h.json"));
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let out = prove(&db, &squat.current_hash, &tmp.path().join("s.json"));
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));

    // Genuine records after the forged successor still anchor.
    let more = v1_chain("cp-prod", 4, 2, genuine[3].1, allow);
    let file = tmp.path().join("round2.jsonl");
    let text: Vec<&str> = more.iter().map(|m| m.0.as_str()).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    send(&py, &srv.endpoint, &file);
    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        leaves(&db, 2),
        [("cp-prod".to_owned(), 5, more[1].1.as_bytes().to_vec())]
    );
    let out = prove(&db, &more[1].1, &tmp.path().join("p.json"));
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (code, report) = reconcile(&anvil, &db, &contract, &address(&key), LOG);
    assert_eq!(code, 0, "{report:#}");
    drop(srv);
    // The store still shows the attempt: verify --db fails on the two unsigned records.
    let (code, report) = crate::verify_db(&db);
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"unsigned"), "{kinds:?}");
}
