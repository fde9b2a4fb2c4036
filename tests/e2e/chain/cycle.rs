//! The full cycle on a local chain with chain id 84532: deploy, anchor, a clean reconcile, proofs;
//! then the attacks anchoring exists for.

use std::path::{Path, PathBuf};

use zt_core::Hash32;

use crate::{
    address, allowed, anchor_once, anchored_events, assert_exit, assert_exit_saying, both, import,
    prove, sql, stdout, v1_chain, verify_db, verify_proof, Setup,
};

const LOG: &str = "zt-test";

/// A store with two v1 chains (6 and 3 records), anchored in epoch 1.
struct Anchored {
    t: Setup,
    db: PathBuf,
    chain_a: Vec<(String, Hash32)>,
}

fn anchored() -> Anchored {
    let t = Setup::start();
    let db = t.path("evidence.db");
    let chain_a = v1_chain("cp-a", 0, 6, Hash32::ZERO, |s| {
        if s == 1 {
            "deny"
        } else {
            "allow"
        }
    });
    import(&db, &chain_a);
    import(&db, &allowed("cp-b", 0, 3, Hash32::ZERO));
    let out = t.anchor(&db, LOG);
    assert!(
        stdout(&out).contains("epoch 1: 2 chain head(s)"),
        "{}",
        both(&out)
    );
    assert!(stdout(&out).contains("included"), "{}", both(&out));
    Anchored { t, db, chain_a }
}

impl Anchored {
    /// A copy of the anchored store, as `name`, edited by `statements`.
    fn edited(&self, name: &str, statements: &str) -> PathBuf {
        let to = self.db.with_file_name(name);
        std::fs::copy(&self.db, &to).unwrap();
        sql(&to, statements);
        to
    }

    /// `reconcile` of `db` against the anchored log: (exit code, report).
    fn reconcile(&self, db: &Path) -> (i32, serde_json::Value) {
        self.t.reconcile(db, LOG)
    }
}

/// (kind, position) of each finding of a reconcile report.
fn kinds(report: &serde_json::Value) -> Vec<(String, Option<u64>)> {
    zt_testkit::report::findings(report)
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["position"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn deploy_anchor_reconcile_prove_and_anchor_again() {
    let a = anchored();
    let t = &a.t;
    let (code, report) = a.reconcile(&a.db);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["confirmed_epochs"], 1);
    assert_eq!(report["records_checked"], 9);

    // Nothing moved: no second anchor.
    let out = anchor_once(&t.anvil.url, &t.key, &a.db, &t.contract, LOG);
    assert!(stdout(&out).contains("nothing moved"), "{}", both(&out));
    assert_eq!(anchored_events(&t.anvil, &t.contract).len(), 1);

    // A proof for record 2 of cp-a: record, links 3..5, inclusion, root, tx.
    let bundle = a.db.with_file_name("proof.json");
    assert_exit(&prove(&a.db, &a.chain_a[2].1, &bundle), 0);
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(b["links"].as_array().unwrap().len(), 3);
    assert_eq!(b["chain_id"], 84532);
    let writer = address(&t.key);
    let pinned = |file: &Path| {
        let pins = [
            "--rpc",
            &t.anvil.url,
            "--contract",
            &t.contract,
            "--writer",
            &writer,
        ];
        verify_proof(file, &pins)
    };
    let out = pinned(&bundle);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("the 4 record(s) are signed by test-only-a"),
        "{text}"
    );
    assert!(text.contains("keyring.json"), "{text}");
    assert!(
        text.contains(&format!(
            "tx {} sent by writer {writer} (pinned)",
            b["transaction"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains("network chain id 84532"), "{text}");
    assert!(text.lines().last() == Some("VALID"), "{text}");
    // Offline only, it says so.
    let out = verify_proof(&bundle, &[]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("VALID (offline only"),
        "{}",
        both(&out)
    );

    // An edited bundle does not verify, offline already.
    let edited = std::fs::read_to_string(&bundle)
        .unwrap()
        .replace("demo/3", "demo/9");
    let bad = a.db.with_file_name("proof-edited.json");
    std::fs::write(&bad, edited).unwrap();
    let out = verify_proof(&bad, &[]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("INVALID"));
    // The same bundle under a keyring that binds the key to another chain: its records do not
    // count for cp-a, so nothing is proven.
    let bound = a.db.with_file_name("bound-keyring.json");
    let pem =
        std::fs::read_to_string(crate::repo().join("fixtures/keys/test-only-a.pub.pem")).unwrap();
    std::fs::write(
        &bound,
        serde_json::json!({"keys": [{"key_id": "test-only-a", "public_key_pem": pem, "chains": ["cp-other"]}]})
            .to_string(),
    )
    .unwrap();
    let out = crate::zt(
        None,
        &[
            "verify-proof",
            crate::s(&bundle),
            "--keyring",
            crate::s(&bound),
        ],
    );
    assert_exit_saying(&out, 1, "unauthorized_signer");
    // A bundle pointing at another epoch's root fails on chain.
    let mut other: serde_json::Value = b.clone();
    other["epoch"] = 7.into();
    let wrong = a.db.with_file_name("proof-epoch.json");
    std::fs::write(&wrong, other.to_string()).unwrap();
    assert_exit(&pinned(&wrong), 1);

    // Chain a grows: epoch 2 anchors only the chain that moved.
    let last = a.chain_a.last().unwrap().1;
    import(&a.db, &allowed("cp-a", 6, 2, last));
    let out = anchor_once(&t.anvil.url, &t.key, &a.db, &t.contract, LOG);
    assert!(
        stdout(&out).contains("epoch 2: 1 chain head(s)"),
        "{}",
        both(&out)
    );
    let (code, report) = a.reconcile(&a.db);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["confirmed_epochs"], 2);
    assert_eq!(anchored_events(&t.anvil, &t.contract).len(), 2);
}

#[test]
fn a_truncated_copy_verifies_on_its_own_but_fails_reconciliation() {
    let a = anchored();
    let cut = a.edited(
        "truncated.db",
        "DELETE FROM records WHERE chain = 'cp-a' AND position >= 4",
    );
    let (code, report) = verify_db(&cut);
    assert_eq!(
        code, 0,
        "the truncated chain is a valid chain on its own: {report:#}"
    );
    let (code, report) = a.reconcile(&cut);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("truncated".to_owned(), Some(5))]);
}

#[test]
fn a_key_holders_resigned_rewrite_verifies_on_its_own_but_fails_reconciliation() {
    let a = anchored();
    // The key holder changes record 1's deny into an allow and re-signs everything after it
    // with the real key, then swaps the store's records for the rewritten ones.
    let rewritten = allowed("cp-a", 1, 5, a.chain_a[0].1);
    assert_ne!(rewritten[0].1, a.chain_a[1].1);
    let forged = a.edited(
        "rewritten.db",
        "DELETE FROM records WHERE chain = 'cp-a' AND position >= 1",
    );
    import(&forged, &rewritten);
    let (code, report) = verify_db(&forged);
    assert_eq!(
        code, 0,
        "every hash, link and signature of the rewrite is valid: {report:#}"
    );
    let (code, report) = a.reconcile(&forged);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("rewritten".to_owned(), Some(5))]);
    let f = &report["findings"][0];
    assert_eq!(f["expected"], a.chain_a[5].1.to_hex());
    assert_eq!(f["found"], rewritten[4].1.to_hex());
}

#[test]
fn tampered_records_and_tampered_anchors_fail_reconciliation() {
    let a = anchored();
    // A record's bytes edited in place, its hash column left alone.
    let tampered = a.edited(
        "tampered.db",
        "UPDATE records SET raw = CAST(replace(CAST(raw AS TEXT), '\"deny\"', '\"allow\"') AS BLOB) \
         WHERE chain = 'cp-a' AND position = 1",
    );
    let (code, _) = verify_db(&tampered);
    assert_eq!(code, 1);
    let (code, report) = a.reconcile(&tampered);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("rewritten".to_owned(), Some(1))]);

    // The stored leaves edited to match a rewrite: they no longer hash to the anchored root.
    let l = a.edited(
        "leaves.db",
        "UPDATE anchor_leaves SET head = zeroblob(32) WHERE chain = 'cp-a'",
    );
    let (code, report) = a.reconcile(&l);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report)[0].0, "root_differs");

    // The anchors deleted from the store: the chain still knows them.
    let d = a.edited(
        "no-anchors.db",
        "DELETE FROM anchor_leaves; DELETE FROM anchor_epochs;",
    );
    let (code, report) = a.reconcile(&d);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("unknown_on_chain".to_owned(), None)]);
}

/// A main line edited into the store before it was anchored: record 3 is a genuine, signed
/// record whose seq is 5 (the store kept it off the main line; a hand edit put it on). Every
/// link and signature holds and the anchored head is the record itself; the chain model's seq
/// rule is what catches it.
#[test]
fn a_main_line_that_breaks_a_chain_rule_fails_reconciliation_even_as_anchored() {
    let t = Setup::start();
    let db = t.path("evidence.db");
    let chain = allowed("cp-a", 0, 3, Hash32::ZERO);
    import(&db, &chain);
    let jump = allowed("cp-a", 5, 1, chain[2].1);
    import(&db, &jump);
    sql(
        &db,
        &format!(
            "UPDATE records SET branch = 0, position = 3 WHERE current_hash = X'{}'",
            jump[0].1.to_hex()
        ),
    );
    t.anchor(&db, LOG);
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), [("rewritten".to_owned(), Some(3))]);
    let f = &report["findings"][0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("seq jumps from 2 to 5"),
        "{report:#}"
    );
    assert_eq!(
        (f["expected"].as_str(), f["found"].as_str()),
        (Some("3"), Some("5"))
    );
}
