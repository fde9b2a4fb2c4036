//! A real TLS server (`zt_tls::serve`) and real clients (reqwest with `ClientTls`, and curl):
//! identities on requests, refused handshakes counted, certificates reloaded, shutdown drains.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Extension;
use axum::routing::get;
use axum::Router;
use zt_testkit::http::curl;
use zt_testkit::pki::Pki;
use zt_tls::test_pki::{write_bundle, Ca, Validity};
use zt_tls::{
    ClientIdentity, ClientTls, ConnectionLimits, Connections, PeerIdentity, ServerFiles, TlsServer,
};

mod connections;

async fn whoami(peer: Option<Extension<PeerIdentity>>) -> String {
    match peer.map(|Extension(p)| p) {
        Some(PeerIdentity::Spiffe(id)) => format!("svid {id}"),
        Some(PeerIdentity::Anonymous) => "anonymous".into(),
        Some(PeerIdentity::Refused(r)) => format!("refused: {r}"),
        None => "no tls".into(),
    }
}

async fn wait(axum::extract::Path(ms): axum::extract::Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "done"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(600)).await;
    "done"
}

/// Waits (up to 5 s) for the server's counters to show `lines`: a refused client may see its
/// connection close before the server task has counted why.
async fn assert_metrics(tls: &TlsServer, lines: &[&str]) {
    for _ in 0..100 {
        let m = tls.render_metrics();
        if lines.iter().all(|l| m.contains(l)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = tls.render_metrics();
    let missing: Vec<&&str> = lines.iter().filter(|l| !m.contains(**l)).collect();
    panic!("no {missing:?} in\n{m}");
}

struct Running {
    base: String,
    addr: std::net::SocketAddr,
    tls: Arc<TlsServer>,
    connections: Arc<Connections>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(files: &ServerFiles) -> Running {
    start_with(files, ConnectionLimits::default()).await
}

async fn start_with(files: &ServerFiles, limits: ConnectionLimits) -> Running {
    let tls = Arc::new(TlsServer::load(files).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/whoami", get(whoami))
        .route("/slow", get(slow))
        .route("/wait/{ms}", get(wait));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let connections = Connections::new(limits);
    let join = tokio::spawn(zt_tls::serve(
        listener,
        app,
        Some(Arc::clone(&tls)),
        Arc::clone(&connections),
        async {
            let _ = rx.await;
        },
    ));
    Running {
        base: format!("https://localhost:{}", addr.port()),
        addr,
        tls,
        connections,
        stop: Some(tx),
        join,
    }
}

fn client(ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> reqwest::Client {
    let tls = ClientTls {
        ca: Some(ca.to_owned()),
        identity: identity.map(|(cert, key)| ClientIdentity { cert, key }),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.config().unwrap())
        .build()
        .unwrap()
}

async fn ask(c: &reqwest::Client, url: &str) -> Result<String, String> {
    match c.get(url).send().await {
        Ok(r) => Ok(r.text().await.unwrap()),
        Err(e) => {
            let mut s = e.to_string();
            let mut cur = std::error::Error::source(&e);
            while let Some(c) = cur {
                s.push_str(&format!(": {c}"));
                cur = c.source();
            }
            Err(s)
        }
    }
}

/// The server certificate of `pki` for localhost, asking clients for td-a.test SVIDs.
fn files(pki: &Pki) -> ServerFiles {
    pki.server_files("server", &[&pki.td_a])
}

#[tokio::test(flavor = "multi_thread")]
async fn svids_anonymous_clients_and_refused_certificates() {
    let pki = Pki::new();
    let srv = start(&files(&pki)).await;
    let ca = pki.server_ca();
    let url = format!("{}/whoami", srv.base);

    assert_eq!(ask(&client(&ca, None), &url).await.unwrap(), "anonymous");
    let a = pki.svid("a", &["spiffe://td-a.test/agent/a"], Validity::Now);
    assert_eq!(
        ask(&client(&ca, Some(a)), &url).await.unwrap(),
        "svid spiffe://td-a.test/agent/a"
    );
    let two = pki.svid(
        "two",
        &["spiffe://td-a.test/agent/a", "spiffe://td-a.test/agent/b"],
        Validity::Now,
    );
    let got = ask(&client(&ca, Some(two)), &url).await.unwrap();
    assert!(
        got.starts_with("refused: ") && got.contains("2 URI SANs"),
        "{got}"
    );

    // refused in the handshake: nothing reaches a handler. (With TLS 1.3 the client may see
    // the server's alert or only a closed connection; the server's counters say why.)
    let expired = pki.svid(
        "expired",
        &["spiffe://td-a.test/agent/a"],
        Validity::Expired,
    );
    assert!(ask(&client(&ca, Some(expired)), &url).await.is_err());
    // a CA the bundle does not hold
    let foreign = Ca::spiffe("td-x.test")
        .svid(&["spiffe://td-a.test/agent/a"], Validity::Now)
        .write(pki.dir.path(), "foreign");
    assert!(ask(&client(&ca, Some(foreign)), &url).await.is_err());
    // an impostor CA with td-a's name and its own key
    let impostor = Ca::spiffe("td-a.test")
        .svid(&["spiffe://td-a.test/agent/a"], Validity::Now)
        .write(pki.dir.path(), "impostor");
    assert!(ask(&client(&ca, Some(impostor)), &url).await.is_err());
    // a client that does not trust the server's CA
    let other_ca = write_bundle(&pki.path("other.pem"), &[&Ca::spiffe("other.test")]);
    let err = ask(&client(&other_ca, None), &url).await.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");

    assert_metrics(
        &srv.tls,
        &[
            "zt_tls_handshake_failures_total{reason=\"expired\"} 1",
            "zt_tls_handshake_failures_total{reason=\"unknown_issuer\"} 1",
            "zt_tls_handshake_failures_total{reason=\"bad_certificate\"} 1",
            "zt_tls_client_identities_total{outcome=\"svid\"} 1",
            "zt_tls_client_identities_total{outcome=\"refused\"} 1",
        ],
    )
    .await;
    drop(srv.stop);
    srv.join.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_sees_the_identity_and_the_refused_handshake() {
    let pki = Pki::new();
    let srv = start(&files(&pki)).await;
    let (ca, url) = (pki.server_ca(), format!("{}/whoami", srv.base));
    let a = pki.svid("a", &["spiffe://td-a.test/agent/a"], Validity::Now);
    let not_yet = pki.svid(
        "not-yet",
        &["spiffe://td-a.test/agent/a"],
        Validity::NotYetValid,
    );
    let (ok, refused) = tokio::task::spawn_blocking(move || {
        (
            curl(&ca, &url, Some(&a), None, None),
            curl(&ca, &url, Some(&not_yet), None, None),
        )
    })
    .await
    .unwrap();
    let (status, body) = ok.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "svid spiffe://td-a.test/agent/a");
    assert!(refused.is_err(), "no answer: {refused:?}");
    assert_metrics(
        &srv.tls,
        &["zt_tls_handshake_failures_total{reason=\"not_yet_valid\"} 1"],
    )
    .await;
    drop(srv.stop);
    srv.join.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn new_connections_get_the_new_certificate_and_a_broken_one_is_not_taken() {
    let pki = Pki::new();
    let mut files = files(&pki);
    files.check_every = Duration::ZERO;
    let srv = start(&files).await;
    let url = format!("{}/whoami", srv.base);
    let old_ca = pki.server_ca();
    let new_ca = Ca::spiffe("servers-2.test");
    let new_ca_file = write_bundle(&pki.path("new-ca.pem"), &[&new_ca]);
    assert!(ask(&client(&old_ca, None), &url).await.is_ok());
    assert!(ask(&client(&new_ca_file, None), &url).await.is_err());

    // a half-written pair (the key of another certificate): the old pair stays
    let other = new_ca.server();
    std::fs::write(&files.cert, &other.cert_pem).unwrap();
    assert!(ask(&client(&old_ca, None), &url).await.is_ok());
    assert_eq!(srv.tls.key().reload_failures(), 1);
    // the key arrives: new connections get the new certificate
    std::fs::write(&files.key, &other.key_pem).unwrap();
    assert_eq!(
        ask(&client(&new_ca_file, None), &url).await.unwrap(),
        "anonymous"
    );
    assert!(ask(&client(&old_ca, None), &url).await.is_err());
    assert_eq!(srv.tls.key().reloads(), 1);
    drop(srv.stop);
    srv.join.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_the_request_in_flight() {
    let pki = Pki::new();
    let mut srv = start(&files(&pki)).await;
    let c = client(&pki.server_ca(), None);
    let url = format!("{}/slow", srv.base);
    let pending = tokio::spawn(async move { ask(&c, &url).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = srv.stop.take().unwrap().send(());
    assert_eq!(pending.await.unwrap().unwrap(), "done");
    srv.join.await.unwrap().unwrap();
}
