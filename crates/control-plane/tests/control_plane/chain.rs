//! The chain under load and under failure: one writer, no fork, nothing allowed that is not
//! durable.

use std::sync::Arc;
use std::time::Duration;

use zt_control_plane::signer::{LocalKey, Signer};
use zt_control_plane::Options;
use zt_core::Hash32;

use crate::{
    act, count, get, open_opts, post, register, start, start_with, verify_store, Fault,
    FaultySigner,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_decisions_from_16_clients_leave_one_unforked_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = crate::open_with(
        tmp.path(),
        "agent-load",
        serde_json::json!({"action": "load.even"}),
    )
    .await;
    let b = cp.base.clone();
    let mut tasks = Vec::new();
    for c in 0..16 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..63 {
                let action = if (c + i) % 2 == 0 {
                    "load.even"
                } else {
                    "load.odd"
                };
                let (s, v) = act(&b, None, "agent-load", action, &format!("r/{c}/{i}")).await;
                assert!(s == 200 || s == 403, "{s} {v}");
                assert_eq!(s == 200, action == "load.even");
                seqs.push(v["audit"]["seq"].as_u64().unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1008).collect::<Vec<u64>>(),
        "every seq once, none skipped (the registration is on the admin chain)"
    );
    let db = cp.dir.join("decisions.db");
    let keyring = cp.keyring();
    let summary = cp.stop();
    assert_eq!(summary.decisions, 1009);
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.records, 1009);
    // 1,008 decisions on one chain, the registration on the control plane's own
    assert_eq!(report.chains.len(), 2);
    let decisions = report
        .chains
        .iter()
        .find(|c| !c.chain.ends_with(".admin"))
        .unwrap();
    assert_eq!(decisions.records, 1008);
    assert_eq!(
        zt_store::Store::open(&db).unwrap().count_forks().unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_cannot_commit_answers_503_and_allows_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        store_busy_timeout: Duration::from_millis(200),
        ..open_opts()
    };
    let cp = start(tmp.path(), opts);
    let b = cp.base.clone();
    register(&b, None, "agent-hello").await;
    post(
        &b,
        "/policies",
        None,
        &serde_json::json!({"action": "hello"}),
    )
    .await;
    let (s, _) = act(&b, None, "agent-hello", "hello", "").await;
    assert_eq!(s, 200);

    // Another process holds the database's write lock: the commit cannot happen.
    let db = cp.dir.join("decisions.db");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (s, v) = act(&b, None, "agent-hello", "hello", "").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["ok"], false);
    assert!(
        v.get("decision").is_none() && v.get("audit").is_none(),
        "{v}"
    );
    assert!(
        v["error"].as_str().unwrap().contains("nothing is allowed"),
        "{v}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);

    // The chain resumes where the store says it is: no gap, no fork.
    let (s, v) = act(&b, None, "agent-hello", "hello", "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["seq"], 1, "after one decision");
    let keyring = cp.keyring();
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.records, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_or_faulty_signer_answers_503_and_stores_nothing() {
    for which in ["down", "faulty"] {
        let tmp = tempfile::tempdir().unwrap();
        let key = LocalKey::load_or_create(&tmp.path().join("signing-key.pem")).unwrap();
        let fault = match which {
            "down" => Fault::Down,
            _ => Fault::WrongDigest,
        };
        let signer: Arc<dyn Signer> = Arc::new(FaultySigner { key, fault });
        let cp = start_with(tmp.path(), open_opts(), Some(signer));
        // A registration is a sealed record too: without a signature, nothing changes.
        let (s, v) = post(
            &cp.base,
            "/agents",
            None,
            &serde_json::json!({"actor": "agent-hello"}),
        )
        .await;
        assert_eq!(s, 503, "{which}: {v}");
        assert!(v.get("token").is_none(), "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("nothing changed"),
            "{v}"
        );
        let (_, listed) = get(&cp.base, "/agents", None).await;
        assert_eq!(listed["agents"], serde_json::json!([]));
        post(
            &cp.base,
            "/policies",
            None,
            &serde_json::json!({"action": "hello"}),
        )
        .await;
        let (s, v) = act(&cp.base, None, "agent-hello", "hello", "").await;
        assert_eq!(s, 503, "{which}: {v}");
        assert!(v.get("audit").is_none());
        let db = cp.dir.join("decisions.db");
        cp.stop();
        assert_eq!(count(&db), 0, "{which}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_continues_the_chain_with_its_agents_and_policies() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = serde_json::json!({"action": "hello"});
    let cp = crate::open_with(tmp.path(), "agent-hello", hello).await;
    for _ in 0..3 {
        assert_eq!(act(&cp.base, None, "agent-hello", "hello", "").await.0, 200);
    }
    let keyring = cp.keyring();
    cp.stop();
    let cp = start(tmp.path(), open_opts());
    assert_eq!(cp.keyring(), keyring, "same key after a restart");
    let (s, v) = act(&cp.base, None, "agent-hello", "hello", "").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["audit"]["seq"], 3, "three decisions before the restart");
    let db = cp.dir.join("decisions.db");
    cp.stop();
    let report = verify_store(&db, &keyring);
    assert!(report.ok, "{:?}", report.errors);
    assert_eq!(report.records, 5);
    // a different chain id for the same directory is refused
    let err = zt_control_plane::ControlPlane::open(
        tmp.path(),
        Options {
            chain_id: Some("other".into()),
            ..open_opts()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("not other"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_mode_refuses_a_non_loopback_address() {
    let tmp = tempfile::tempdir().unwrap();
    let cp = zt_control_plane::ControlPlane::open(tmp.path(), open_opts()).unwrap();
    // 0.0.0.0 is not loopback; bind it on port 0 and check serve refuses before serving.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = cp.serve(listener, async {}).await.unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

/// A record nobody's key verified is evidence of an attempt, never part of a chain's truth, so
/// it cannot cost a genuine decision. Anyone who can write to the control plane's store (a
/// shared store fed by a receiver, say) plants unsigned records at the next seqs of its chain:
/// one naming the head, one naming nothing held. The store used to flag both claimants of a
/// predecessor and every record at one seq as forks, so the control plane, which refuses a
/// commit in which its own record is a fork, answered each of the next decisions 503.
#[tokio::test(flavor = "multi_thread")]
async fn forged_records_at_the_next_seqs_refuse_no_decision() {
    use zt_core::envelope::Envelope;
    use zt_core::Profile;
    let tmp = tempfile::tempdir().unwrap();
    let cp = crate::open_with(
        tmp.path(),
        "agent-f",
        serde_json::json!({"action": "f.run"}),
    )
    .await;
    let b = cp.base.clone();
    let (s, first) = act(&b, None, "agent-f", "f.run", "r/0").await;
    assert_eq!(s, 200, "{first}");
    // The answer flattened (`audit`'s members beside the others, `ok` dropped) is the record.
    let mut head = first.clone();
    let m = head.as_object_mut().unwrap();
    m.remove("ok");
    let audit = m.remove("audit").unwrap();
    for (k, v) in audit.as_object().unwrap() {
        m.insert(k.clone(), v.clone());
    }
    let seq = head["seq"].as_u64().unwrap();

    // Unsigned records, hashed right, at seq+1 (naming the head) and seq+2 (naming nothing).
    let forge = |seq: u64, previous: &str, resource: &str| {
        let mut v = head.clone();
        let m = v.as_object_mut().unwrap();
        m.remove("kms_signature");
        m.insert("seq".into(), seq.into());
        m.insert("previous_hash".into(), previous.into());
        m.insert("resource".into(), resource.into());
        m.insert("current_hash".into(), Hash32::ZERO.to_hex().into());
        let e = Envelope::from_json(v.to_string().as_bytes()).unwrap();
        let h = e.compute_hash(Profile::V1).unwrap();
        v["current_hash"] = h.to_hex().into();
        v.to_string()
    };
    let planted = [
        forge(seq + 1, head["current_hash"].as_str().unwrap(), "forged/1"),
        forge(
            seq + 2,
            &Hash32::digest(b"nothing held").to_hex(),
            "forged/2",
        ),
    ];
    let db = cp.dir.join("decisions.db");
    {
        let mut other = zt_store::Store::open(&db).unwrap();
        let envs: Vec<Envelope> = planted
            .iter()
            .map(|t| Envelope::from_json(t.as_bytes()).unwrap())
            .collect();
        let records: Vec<zt_store::NewRecord<'_>> = planted
            .iter()
            .zip(&envs)
            .map(|(t, e)| zt_store::NewRecord {
                raw: t.as_bytes(),
                envelope: e,
                profile: Profile::V1,
                status: zt_core::chain::SigStatus::Unsigned,
                source: "import:forged.jsonl",
                sender: None,
                received_at_ms: 0,
            })
            .collect();
        other.insert_batch(&records, &[]).unwrap();
    }

    let mut last = String::new();
    for i in 1..=3 {
        let (s, v) = act(&b, None, "agent-f", "f.run", &format!("r/{i}")).await;
        assert_eq!(s, 200, "decision {i} after the forged records: {v}");
        assert_eq!(v["audit"]["seq"].as_u64(), Some(seq + i));
        last = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    }
    let keyring = cp.keyring();
    cp.stop();
    // The genuine records are the chain's main line; the forged one that claims the head's
    // place is the one fork, the other waits, both kept.
    let store = zt_store::Store::open(&db).unwrap();
    assert_eq!(store.count_forks().unwrap(), 1);
    let report = verify_store(&db, &keyring);
    let decisions = report
        .chains
        .iter()
        .find(|c| !c.chain.ends_with(".admin"))
        .unwrap();
    assert_eq!(
        decisions.head.as_deref(),
        Some(last.as_str()),
        "{:?}",
        report.chains
    );
}
