//! The guarded client over mTLS with X.509-SVIDs against a real control plane over TLS, and
//! both exporting to a real receiver that requires SVIDs and records who sent each envelope.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options};
use zt_export::ExportConfig;
use zt_tls::test_pki::{write_bundle, Ca, Validity};
use zt_tls::{ClientIdentity, ClientTls, ServerFiles, TlsServer};

use crate::{assert_refused, call, SideEffect};

const A: &str = "spiffe://td-a.test/agent/a";
const B: &str = "spiffe://td-a.test/agent/b";
const CP: &str = "spiffe://td-a.test/control-plane";

struct Pki {
    dir: tempfile::TempDir,
    td_a: Ca,
    server_ca: Ca,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self) -> Arc<TlsServer> {
        let (cert, key) = self.server_ca.server().write(self.dir.path(), "server");
        let bundle = write_bundle(&self.path("bundle.pem"), &[&self.td_a]);
        Arc::new(TlsServer::load(&ServerFiles::new(cert, key).client_ca(bundle)).unwrap())
    }

    fn client_tls(&self, svid: Option<(&str, &[&str], Validity)>) -> ClientTls {
        ClientTls {
            ca: Some(write_bundle(
                &self.path("server-ca.pem"),
                &[&self.server_ca],
            )),
            identity: svid.map(|(name, uris, validity)| {
                let (cert, key) = self.td_a.svid(uris, validity).write(self.dir.path(), name);
                ClientIdentity { cert, key }
            }),
        }
    }
}

/// A control plane over TLS in its own runtime thread; stopped on drop.
struct Cp {
    base: String,
    admin: String,
    keyring: Vec<u8>,
    db: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl Cp {
    fn start(dir: &Path, opts: Options) -> Cp {
        let cp = ControlPlane::open(dir, opts).unwrap();
        let admin = std::fs::read_to_string(cp.admin_token_file().unwrap())
            .unwrap()
            .trim()
            .to_owned();
        let keyring = std::fs::read(dir.join("keyring.json")).unwrap();
        let db = cp.decisions_db().as_path().map(Path::to_path_buf).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let join = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send(l.local_addr().unwrap().port()).unwrap();
                cp.serve(l, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let port = ready_rx.recv().unwrap();
        Cp {
            base: format!("https://localhost:{port}"),
            admin,
            keyring,
            db,
            stop: Some(tx),
            join: Some(join),
        }
    }

    fn client(&self, tls: ClientTls, token: Option<String>) -> GuardedClient {
        let mut cfg = ClientConfig::new(
            self.base.clone(),
            PinnedKey::from_keyring_json(&self.keyring).unwrap(),
        );
        cfg.tls = tls;
        cfg.token = token.map(Into::into);
        GuardedClient::new(cfg).unwrap()
    }

    async fn admin_post(&self, tls: &ClientTls, path: &str, body: serde_json::Value) {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls.config().unwrap())
            .build()
            .unwrap();
        let resp = http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            j.join().unwrap();
        }
    }
}

impl Drop for Cp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// A zt-ingest receiver over TLS requiring SVIDs, on this runtime.
async fn ingest(
    pki: &Pki,
    db: &Path,
    keyring: &[u8],
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<zt_ingest::server::Summary>>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!(
        "https://localhost:{}/v1/logs",
        l.local_addr().unwrap().port()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(zt_ingest::server::serve(
        l,
        zt_store::Store::open(db).unwrap(),
        zt_core::keyring::Keyring::from_json(keyring).unwrap(),
        zt_ingest::server::Config {
            tls: Some(pki.server()),
            ..zt_ingest::server::Config::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    (endpoint, stop, join)
}

fn identity_of(envelope: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(envelope).unwrap();
    v["context"]["identity"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn over_mtls_the_svid_is_who_asks_and_only_a_verified_allow_runs() {
    let pki = Pki {
        dir: tempfile::tempdir().unwrap(),
        td_a: Ca::spiffe("td-a.test"),
        server_ca: Ca::spiffe("servers.test"),
    };
    let ingest_db = pki.path("ingest.db");
    // The control plane's keyring is needed by ingest before it starts: open it once first.
    let cp_dir = pki.path("cp");
    drop(ControlPlane::open(&cp_dir, Options::default()).unwrap());
    let keyring = std::fs::read(cp_dir.join("keyring.json")).unwrap();
    let (endpoint, stop_ingest, ingest_join) = ingest(&pki, &ingest_db, &keyring).await;
    // The control plane exports to ingest over mTLS with an SVID of its own.
    let mut export = ExportConfig::new(endpoint.clone());
    export.tls = pki.client_tls(Some(("cp", &[CP], Validity::Now)));
    let cp = Cp::start(
        &cp_dir,
        Options {
            tls: Some(pki.server()),
            export: Some(export),
            ..Options::default()
        },
    );
    let plain = pki.client_tls(None);
    cp.admin_post(
        &plain,
        "/agents",
        serde_json::json!({"actor": "agent-a", "spiffe_id": A}),
    )
    .await;
    cp.admin_post(
        &plain,
        "/agents",
        serde_json::json!({"actor": "agent-b", "spiffe_id": B}),
    )
    .await;
    cp.admin_post(&plain, "/policies", serde_json::json!({"action": "x.run"}))
        .await;
    let run_a = ActionRequest::new("agent-a", "x.run");

    // A's SVID, re-exporting what it verified to ingest with the same SVID
    let mut tls_a = pki.client_tls(Some(("a", &[A], Validity::Now)));
    let client_a = {
        let mut cfg = ClientConfig::new(
            cp.base.clone(),
            PinnedKey::from_keyring_json(&cp.keyring).unwrap(),
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
    let client_b = cp.client(pki.client_tls(Some(("b", &[B], Validity::Now))), None);
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
    match assert_refused(&cp.client(plain.clone(), None), &run_a, "denied").await {
        Refusal::Denied { status, .. } => assert_eq!(status, 401),
        other => panic!("{other}"),
    }
    // td-a's CA speaking for td-b: refused, the reason on record
    let client_ftd = cp.client(
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
        let c = cp.client(pki.client_tls(Some((name, &[A], validity))), None);
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
    assert_refused(&cp.client(foreign, None), &run_a, "connect").await;
    // a client that does not trust the server
    tls_a.ca = Some(write_bundle(
        &pki.path("other.pem"),
        &[&Ca::spiffe("x.test")],
    ));
    assert_refused(&cp.client(tls_a, None), &run_a, "connect").await;

    let c = Arc::new(client_a);
    let c2 = Arc::clone(&c);
    assert!(
        tokio::task::spawn_blocking(move || c2.flush_export(Duration::from_secs(20)))
            .await
            .unwrap()
    );
    let db = cp.db.clone();
    // 2 registrations and 4 decisions reached the chain; the control plane exports them
    // before it stops
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while zt_store::Store::open(&ingest_db)
        .unwrap()
        .count_records()
        .unwrap()
        < 6
    {
        assert!(
            std::time::Instant::now() < deadline,
            "export did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(move || cp.stop())
        .await
        .unwrap();
    let _ = stop_ingest.send(());
    ingest_join.await.unwrap().unwrap();

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
