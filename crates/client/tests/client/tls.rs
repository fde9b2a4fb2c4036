//! The guarded client over mTLS with X.509-SVIDs against a real control plane over TLS, and
//! both exporting to a real receiver that requires SVIDs and records who sent each envelope.

use std::sync::Arc;
use std::time::Duration;

use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options};
use zt_export::ExportConfig;
use zt_testkit::pki::{reqwest_client, Pki};
use zt_testkit::wait_until;
use zt_tls::test_pki::{write_bundle, Ca, Validity};
use zt_tls::{ClientIdentity, ClientTls};

use crate::{admin_post, assert_refused, call, client, start, Ingest, SideEffect};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-a.test/agent/b";
const CP: &str = "spiffe://td-a.test/control-plane";

fn identity_of(envelope: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(envelope).unwrap();
    v["context"]["identity"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn over_mtls_the_svid_is_who_asks_and_only_a_verified_allow_runs() {
    let pki = Pki::new();
    let ingest_db = pki.path("ingest.db");
    // The control plane's keyring is needed by ingest before it starts: open it once first.
    let cp_dir = pki.path("cp");
    drop(ControlPlane::open(&cp_dir, Options::default()).unwrap());
    let keyring = std::fs::read(cp_dir.join("keyring.json")).unwrap();
    // A zt-ingest receiver over TLS requiring SVIDs.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!(
        "https://localhost:{}/v1/logs",
        l.local_addr().unwrap().port()
    );
    let config = zt_ingest::server::Config {
        tls: Some(pki.server(&[&pki.td_a])),
        ..zt_ingest::server::Config::default()
    };
    let ingest = Ingest::start(l, &ingest_db, &keyring, config);
    // The control plane exports to ingest over mTLS with an SVID of its own.
    let mut export = ExportConfig::new(endpoint.clone());
    export.tls = pki.client_tls(Some(("cp", &[CP], Validity::Now)));
    let cp = start(
        &cp_dir,
        Options {
            tls: Some(pki.server(&[&pki.td_a])),
            export: Some(export),
            ..Options::default()
        },
    );
    let plain = pki.client_tls(None);
    let http = reqwest_client(&plain);
    for (path, body) in [
        (
            "/agents",
            serde_json::json!({"actor": "agent-a", "spiffe_id": A}),
        ),
        (
            "/agents",
            serde_json::json!({"actor": "agent-b", "spiffe_id": B}),
        ),
        ("/policies", serde_json::json!({"action": "x.run"})),
    ] {
        admin_post(&cp, &http, path, body).await;
    }
    let run_a = ActionRequest::new("agent-a", "x.run");

    // A's SVID, re-exporting what it verified to ingest with the same SVID
    let mut tls_a = pki.client_tls(Some(("a", &[A], Validity::Now)));
    let client_a = {
        let mut cfg = ClientConfig::new(
            cp.base.clone(),
            PinnedKey::from_keyring_json(&cp.keyring()).unwrap(),
        );
        cfg.tls = tls_a.clone();
        let mut export = ExportConfig::new(endpoint.clone());
        export.tls = tls_a.clone();
        cfg.export = Some(export);
        GuardedClient::new(cfg).unwrap()
    };
    let effect = SideEffect::default();
    let done = call(&client_a, &run_a, &effect).await.unwrap();
    assert_eq!(effect.count(), 1);
    assert_eq!(identity_of(&done.decision.envelope), A);
    let allow_hash = done.decision.current_hash;

    // B's SVID claiming to be A: a signed, verified deny; nothing runs
    let client_b = client(&cp, pki.client_tls(Some(("b", &[B], Validity::Now))), None);
    let spoof_hash = match assert_refused(&client_b, &run_a, "denied").await {
        Refusal::Denied {
            reason,
            status,
            current_hash,
        } => {
            assert_eq!(status, 403);
            assert!(reason.contains("actor mismatch"), "{reason}");
            current_hash
        }
        other => panic!("{other}"),
    };
    // no identity, no token: denied as ever
    match assert_refused(&client(&cp, plain.clone(), None), &run_a, "denied").await {
        Refusal::Denied { status, .. } => assert_eq!(status, 401),
        other => panic!("{other}"),
    }
    // td-a's CA speaking for td-b: refused, the reason on record
    let client_ftd = client(
        &cp,
        pki.client_tls(Some((
            "ftd",
            &["spiffe://td-b.test/agent/a"],
            Validity::Now,
        ))),
        None,
    );
    match assert_refused(&client_ftd, &run_a, "denied").await {
        Refusal::Denied { reason, status, .. } => {
            assert_eq!(status, 401);
            assert!(reason.contains("client certificate refused"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // refused in the handshake: no answer at all, nothing runs
    for (name, validity) in [("exp", Validity::Expired), ("nyv", Validity::NotYetValid)] {
        let c = client(&cp, pki.client_tls(Some((name, &[A], validity))), None);
        assert_refused(&c, &run_a, "connect").await;
    }
    let foreign = ClientTls {
        identity: Some({
            let (cert, key) = Ca::spiffe("td-a.test")
                .svid(&[A], Validity::Now)
                .write(pki.dir.path(), "foreign");
            ClientIdentity { cert, key }
        }),
        ..plain.clone()
    };
    assert_refused(&client(&cp, foreign, None), &run_a, "connect").await;
    // a client that does not trust the server
    tls_a.ca = Some(write_bundle(
        &pki.path("other.pem"),
        &[&Ca::spiffe("x.test")],
    ));
    assert_refused(&client(&cp, tls_a, None), &run_a, "connect").await;

    let c = Arc::new(client_a);
    let c2 = Arc::clone(&c);
    assert!(
        tokio::task::spawn_blocking(move || c2.flush_export(Duration::from_secs(20)))
            .await
            .unwrap()
    );
    let db = cp.db.clone().unwrap();
    // 2 registrations and 4 decisions reached the chain; the control plane exports them
    // before it stops
    let arrived = ingest_db.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("the export to arrive", Duration::from_secs(20), || {
            zt_testkit::store::count(&arrived) >= 6
        });
        cp.stop();
        ingest.stop();
    })
    .await
    .unwrap();

    let ring = zt_core::keyring::Keyring::from_json(&keyring).unwrap();
    for store_path in [&db, &ingest_db] {
        let store = zt_store::Store::open(store_path).unwrap();
        assert_eq!(store.count_records().unwrap(), 6);
        let report = zt_ingest::verify_db(store_path, &ring).unwrap();
        assert!(report.ok, "{:?}", report.errors);
    }
    // who sent it, as ingest saw it: only the control plane sent the deny; the allow came
    // from both (the client's re-export and the control plane's), whichever was first
    let store = zt_store::Store::open(&ingest_db).unwrap();
    assert_eq!(store.sender(&spoof_hash).unwrap().as_deref(), Some(CP));
    let sender = store.sender(&allow_hash).unwrap().unwrap();
    assert!(sender == A || sender == CP, "{sender}");
}
