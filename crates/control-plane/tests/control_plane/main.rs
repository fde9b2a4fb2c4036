//! The control plane over real HTTP on loopback, its store read back by the real verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod api;
mod capabilities;
mod chain;
mod export;
mod federation;
mod flood;
mod lifecycle;
mod open_mode;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use zt_control_plane::export::ExportWatch;
use zt_control_plane::signer::Signer;
use zt_control_plane::{ControlPlane, ControlPlaneError, Options, Summary};

/// A control plane serving on 127.0.0.1 in its own runtime thread; stopped on drop.
#[derive(Debug)]
pub struct Running {
    pub base: String,
    pub dir: PathBuf,
    pub admin_token: Option<String>,
    pub watch: Option<Arc<ExportWatch>>,
    shutdown: Option<oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<Result<Summary, ControlPlaneError>>>,
}

pub fn start(dir: &Path, opts: Options) -> Running {
    start_with(dir, opts, None)
}

pub fn start_with(dir: &Path, opts: Options, signer: Option<Arc<dyn Signer>>) -> Running {
    let tls = opts.tls.is_some();
    let cp = match signer {
        Some(s) => ControlPlane::with_signer(dir, opts, s).unwrap(),
        None => ControlPlane::open(dir, opts).unwrap(),
    };
    let admin_token = cp
        .admin_token_file()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned());
    let (tx, rx) = oneshot::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let join = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr: SocketAddr = listener.local_addr().unwrap();
            let shutdown = async {
                let _ = rx.await;
            };
            cp.serve_with(listener, shutdown, move |w| {
                ready_tx.send((addr, w)).unwrap();
            })
            .await
        })
    });
    let (addr, watch) = ready_rx.recv().unwrap();
    Running {
        // TLS: the server certificate names localhost.
        base: if tls {
            format!("https://localhost:{}", addr.port())
        } else {
            format!("http://{addr}")
        },
        dir: dir.to_owned(),
        admin_token,
        watch,
        shutdown: Some(tx),
        join: Some(join),
    }
}

impl Running {
    /// Stops, drains, and returns the run's summary.
    pub fn stop(mut self) -> Summary {
        self.stop_inner().unwrap()
    }

    fn stop_inner(&mut self) -> Option<Summary> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.join.take().map(|j| j.join().unwrap().unwrap())
    }

    pub fn keyring(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("keyring.json")).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

pub fn open_opts() -> Options {
    Options {
        open: true,
        ..Options::default()
    }
}

/// `POST path` with a JSON body and an optional bearer token: (status, body as JSON).
pub async fn post(base: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    post_raw(
        base,
        path,
        token,
        "application/json",
        body.to_string().into_bytes(),
    )
    .await
}

pub async fn post_raw(
    base: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .body(body);
    let (status, v) = send(req, token).await;
    schema_checked(path, status, &v);
    (status, v)
}

/// Every decision and capability answer these tests see must match its JSON Schema
/// (`docs/schema/`): a shape change the schemas do not describe fails here.
pub fn schema_checked(path: &str, status: u16, v: &Value) {
    use zt_conformance::schema::{check, Schema};
    let schema = match (path, status) {
        ("/actions", 200 | 401 | 403) => Schema::DecisionAnswer,
        ("/capabilities", 201) => Schema::CapabilityIssueAnswer,
        (p, 200 | 410) if p.starts_with("/capabilities/") && v.get("state").is_some() => {
            Schema::CapabilityStatus
        }
        _ => return,
    };
    if let Err(errors) = check(schema, v) {
        panic!("{path} answered {status} off its schema {schema:?}: {errors:?}\n{v:#}");
    }
    if let Some(c) = v
        .pointer("/audit/context/capability")
        .filter(|c| c.get("grants").is_some() && c.get("op").is_none())
    {
        if let Err(errors) = check(Schema::DecisionCapability, c) {
            panic!("context.capability off its schema: {errors:?}\n{c:#}");
        }
    }
}

/// `POST /policies` with Cedar text: `text/plain` and the header a cross-site form cannot
/// send.
pub async fn post_cedar(base: &str, token: Option<&str>, cedar: &str) -> (u16, Value) {
    let req = reqwest::Client::new()
        .post(format!("{base}/policies"))
        .header("content-type", "text/plain")
        .header("x-zt-admin", "1")
        .body(cedar.to_owned());
    send(req, token).await
}

/// `DELETE path` with an optional bearer token: (status, body as JSON).
pub async fn delete(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let req = reqwest::Client::new().delete(format!("{base}{path}"));
    send(req, token).await
}

pub async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let req = reqwest::Client::new().get(format!("{base}{path}"));
    let (status, v) = send(req, token).await;
    schema_checked(path, status, &v);
    (status, v)
}

/// Sends `req` with an optional bearer token: (status, body as JSON, or as a string when it is
/// not JSON).
async fn send(mut req: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn register(base: &str, admin: Option<&str>, actor: &str) -> String {
    let (s, v) = post(base, "/agents", admin, &json!({"actor": actor})).await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

pub async fn act(
    base: &str,
    token: Option<&str>,
    actor: &str,
    action: &str,
    resource: &str,
) -> (u16, Value) {
    post(
        base,
        "/actions",
        token,
        &json!({"actor": actor, "action": action, "resource": resource}),
    )
    .await
}

/// Verifies a store with the real verifier under `keyring`.
pub fn verify_store(db: &Path, keyring: &[u8]) -> zt_verifier::Report {
    let ring = zt_core::keyring::Keyring::from_json(keyring).unwrap();
    zt_ingest::verify_db(db, &ring).unwrap()
}

/// Records in the store at `db`.
pub fn count(db: &Path) -> u64 {
    zt_store::Store::open(db).unwrap().count_records().unwrap()
}

/// Every record of the control plane's store, in chain order, as JSON.
pub fn records(db: &Path) -> Vec<Value> {
    let store = zt_store::Store::open(db).unwrap();
    let mut out = Vec::new();
    for c in store.chains().unwrap() {
        let mut after = None;
        loop {
            let page = store.page_chain(&c.chain, after, 500).unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            out.extend(page.iter().map(|r| serde_json::from_slice(&r.raw).unwrap()));
        }
    }
    out
}

/// One HTTP/1.1 request written by hand, so a test controls every header (`Host` included):
/// (status, head, body).
pub fn raw_http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}
