//! The control plane's route bodies, through the real server.
//!
//! Every body parser of the control plane (`parse_action`, the admin bodies of `/agents`,
//! `/agents/{actor}/token`, `/brokers`, `/capabilities` and `/policies`, the broker's filing
//! on `/executions`) is private to the crate and reached only through its router, which
//! `ControlPlane::serve` builds and runs. So the target runs one control plane per process
//! (open mode, loopback, rate limits off, its data directory under `/dev/shm`) and sends each
//! input as a request body over one keep-alive HTTP/1.1 connection. Its state carries over
//! from one input to the next (agents, brokers, the chain), so a crash may need the inputs
//! before it to reproduce; a panic on any of its threads aborts the process (libFuzzer's
//! panic hook), so it is caught either way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value as Json;
use zt_control_plane::{ControlPlane, Options, RateLimit};
use zt_core::chain::{inspect, SigStatus};
use zt_core::keyring::Keyring;
use zt_core::time::Timestamp;
use zt_core::Profile;

use crate::schema::{check, Def};
use crate::shown::shown;

/// Which route an input goes to: its first byte, modulo the number of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /actions`.
    Actions,
    /// `POST /agents`.
    Agents,
    /// `POST /agents/fuzz-agent/token`.
    Rotate,
    /// `POST /capabilities`.
    Capabilities,
    /// `POST /executions`.
    Executions,
    /// `POST /brokers`.
    Brokers,
    /// `POST /policies`, `application/json`.
    PoliciesJson,
    /// `POST /policies`, Cedar text.
    PoliciesCedar,
}

impl Route {
    /// In first-byte order.
    pub const ALL: [Route; 8] = [
        Route::Actions,
        Route::Agents,
        Route::Rotate,
        Route::Capabilities,
        Route::Executions,
        Route::Brokers,
        Route::PoliciesJson,
        Route::PoliciesCedar,
    ];

    fn path(self) -> &'static str {
        match self {
            Route::Actions => "/actions",
            Route::Agents => "/agents",
            Route::Rotate => "/agents/fuzz-agent/token",
            Route::Capabilities => "/capabilities",
            Route::Executions => "/executions",
            Route::Brokers => "/brokers",
            Route::PoliciesJson | Route::PoliciesCedar => "/policies",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Route::PoliciesCedar => "text/plain",
            _ => "application/json",
        }
    }

    /// The input that sends `body` to this route.
    pub fn input(self, body: &[u8]) -> Vec<u8> {
        let i = Route::ALL.iter().position(|r| *r == self).unwrap_or(0);
        let mut v = vec![u8::try_from(i).unwrap_or(0)];
        v.extend_from_slice(body);
        v
    }
}

/// One HTTP/1.1 connection to the control plane, opened again when the server closed it.
struct Client {
    port: u16,
    conn: Option<TcpStream>,
}

/// An answer: status and body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Client {
    fn connect(&mut self) -> std::io::Result<&mut TcpStream> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port))?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            s.set_nodelay(true)?;
            self.conn = Some(s);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection"))
    }

    fn once(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<Answer> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\nX-ZT-Admin: 1\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        let s = self.connect()?;
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 8192];
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed before an answer",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let mut body = buf[end..].to_vec();
        match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            Some(len) => {
                while body.len() < len {
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "body cut short",
                        ));
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(len);
            }
            None => {
                // No length: the body runs to the end of the connection.
                s.read_to_end(&mut body)?;
                self.conn = None;
            }
        }
        if close {
            self.conn = None;
        }
        Ok(Answer { status, body })
    }

    /// A request; a connection the server closed meanwhile (idle timeout) is opened again
    /// once.
    fn request(&mut self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
        match self.once(method, path, content_type, body) {
            Ok(a) => a,
            Err(_) => {
                self.conn = None;
                self.once(method, path, content_type, body)
                    .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
            }
        }
    }
}

struct Server {
    client: Client,
    keyring: Keyring,
    /// Runs the control plane; kept for the life of the process.
    _runtime: tokio::runtime::Runtime,
}

/// The data directory: `/dev/shm` when there is one (commits are `synchronous=FULL`).
fn data_dir() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    // Directories of fuzzing processes that are gone (libFuzzer exits without dropping).
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("zt-fuzz-cp-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = base.join(format!("zt-fuzz-cp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

fn start() -> Server {
    let dir = data_dir();
    let cp = ControlPlane::open(
        &dir,
        Options {
            open: true,
            unauthenticated_rate: RateLimit::OFF,
            actor_rate: RateLimit::OFF,
            summary_window: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(60),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("control plane in {}: {e}", dir.display()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("bound: {e}"))
        .port();
    runtime.spawn(async move {
        if let Err(e) = cp.serve(listener, std::future::pending()).await {
            panic!("the control plane stopped: {e}");
        }
    });
    let mut client = Client { port, conn: None };
    let keyring_json = client.request("GET", "/keyring.json", "application/json", b"");
    assert_eq!(keyring_json.status, 200);
    let keyring = Keyring::from_json(&keyring_json.body)
        .unwrap_or_else(|e| panic!("the control plane's keyring: {e}"));
    let a = client.request(
        "POST",
        "/agents",
        "application/json",
        br#"{"actor":"fuzz-agent"}"#,
    );
    assert_eq!(a.status, 201, "{}", shown(&a.body));
    let p = client.request(
        "POST",
        "/policies",
        "text/plain",
        b"permit(principal, action, resource);",
    );
    assert_eq!(p.status, 201, "{}", shown(&p.body));
    Server {
        client,
        keyring,
        _runtime: runtime,
    }
}

fn server() -> &'static Mutex<Server> {
    static S: OnceLock<Mutex<Server>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(start()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `control_plane_http`: the first byte picks the route ([`Route::ALL`]), the rest is the
/// body.
///
/// - No answer is a 5xx, and every answer is JSON; a refusal is `{"ok": false, "error"}`.
/// - `/actions`: 400, or a decision: the answer reads as a v1 envelope whose hash recomputes
///   and whose signature verifies under the control plane's own keyring, allow exactly when
///   the status is 200. A body the action-request schema calls valid is never a 400.
/// - `/capabilities`: an issued token verifies under the control plane's keyring.
/// - `/policies`: what was added can be deleted again (which also keeps the policy set, and
///   so every decision's cost, from growing over a run).
pub fn http(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let route = Route::ALL[usize::from(first) % Route::ALL.len()];
    let mut s = server().lock().unwrap_or_else(PoisonError::into_inner);
    let a = s
        .client
        .request("POST", route.path(), route.content_type(), body);
    let what = || {
        format!(
            "{route:?} answered {}: {}\nbody sent: {}",
            a.status,
            shown(&a.body),
            shown(body)
        )
    };
    assert!(a.status < 500, "{}", what());
    let v: Json = serde_json::from_slice(&a.body)
        .unwrap_or_else(|e| panic!("an answer that is not JSON ({e}): {}", what()));
    if a.status >= 400 && v.get("error").is_some() {
        assert_eq!(v["ok"], Json::Bool(false), "{}", what());
        assert!(v["error"].is_string(), "{}", what());
    }
    match route {
        Route::Actions => {
            if a.status == 400 {
                let schema_valid = zt_core::json::parse(body).is_ok()
                    && serde_json::from_slice::<Json>(body)
                        .is_ok_and(|b| check(Def::ActionRequest, &b).is_ok());
                assert!(
                    !schema_valid,
                    "a body the action-request schema accepts was refused: {}",
                    what()
                );
                return;
            }
            assert!(matches!(a.status, 200 | 401 | 403), "{}", what());
            let ins = inspect(&a.body, &s.keyring, None)
                .unwrap_or_else(|e| panic!("a decision that does not read ({e}): {}", what()));
            assert_eq!(ins.matched, Some(Profile::V1), "{}", what());
            assert_eq!(ins.signature.status(), SigStatus::Verified, "{}", what());
            assert_eq!(
                ins.envelope.decision == "allow",
                a.status == 200,
                "{}",
                what()
            );
        }
        Route::Capabilities if a.status == 201 => {
            let token = v["token"]
                .as_str()
                .unwrap_or_else(|| panic!("an issuance without a token: {}", what()));
            if let Err(e) = zt_core::capability::verify(token, &s.keyring, Timestamp::now()) {
                panic!("an issued token does not verify ({e}): {}", what());
            }
        }
        Route::PoliciesJson | Route::PoliciesCedar if a.status == 201 => {
            for id in v["added"].as_array().into_iter().flatten() {
                let id = id
                    .as_str()
                    .unwrap_or_else(|| panic!("a policy id that is not text: {}", what()));
                let path = format!("/policies/{}", percent_encode(id));
                let d = s.client.request("DELETE", &path, "application/json", b"");
                assert_eq!(
                    d.status,
                    200,
                    "added policy {id:?} could not be deleted: {}",
                    shown(&d.body)
                );
            }
        }
        _ => {}
    }
}
