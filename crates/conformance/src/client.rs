//! A guarded client's conformance suite: a scripted control plane that misbehaves one way per
//! case, and a runner that asks the client under test once per case.
//!
//! The scripted control plane listens on 127.0.0.1 and signs with a key of its own; its
//! keyring (one key, `conf-cp`) is what the client pins. Each case has its own base URL,
//! `http://127.0.0.1:PORT/case/NAME` (the client posts to `{URL}/actions`):
//!
//! | case | what the control plane does | the client must |
//! |---|---|---|
//! | `allow` | a correct, signed allow | run the action (the positive control) |
//! | `deny` | a correct, signed deny (403) | not run it |
//! | `http_4xx` | 400 with an error | not run it |
//! | `http_5xx` | 503 with an error | not run it |
//! | `timeout` | answers nothing for 30 s | give up within its timeout; not run it |
//! | `unreachable` | nobody listens at the URL | not run it |
//! | `bad_signature` | an allow whose signature does not verify | not run it |
//! | `unknown_key` | an allow signed by a key outside the keyring | not run it |
//! | `other_action` | a signed allow for another action | not run it |
//! | `other_resource` | a signed allow for another resource | not run it |
//! | `other_actor` | a signed allow for another actor | not run it |
//! | `replayed_allow` | the allow of the `allow` case again, byte for byte | not run it |
//!
//! "Running the action" is creating a marker file the runner names, so the verdict does not
//! depend on what the client prints. Any client, any language, is driven through
//! [`run_command`]: the command runs once per case with `ZT_CONFORMANCE_URL`,
//! `ZT_CONFORMANCE_KEYRING`, `ZT_CONFORMANCE_ACTOR`, `ZT_CONFORMANCE_ACTION`,
//! `ZT_CONFORMANCE_RESOURCE`, `ZT_CONFORMANCE_TIMEOUT_MS` and `ZT_CONFORMANCE_MARKER` in its
//! environment. A Rust client is driven through [`run`] directly.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::json::{self, Map, Value};
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::time::Timestamp;
use zt_core::Hash32;

use crate::error::{Broken, RunError};
use crate::Report;

/// The cases, in the order they run (`allow` first: `replayed_allow` replays its answer).
pub const CASES: [&str; 12] = [
    "allow",
    "deny",
    "http_4xx",
    "http_5xx",
    "timeout",
    "unreachable",
    "bad_signature",
    "unknown_key",
    "other_action",
    "other_resource",
    "other_actor",
    "replayed_allow",
];

/// The key id the scripted control plane signs with (the one in its keyring).
pub const KEY_ID: &str = "conf-cp";
/// The actor, action and resource every case asks about.
pub const ACTOR: &str = "agent-conformance";
/// See [`ACTOR`].
pub const ACTION: &str = "conformance.run";
/// See [`ACTOR`].
pub const RESOURCE: &str = "conformance/target";
/// The timeout the client is asked to use, in milliseconds.
pub const TIMEOUT_MS: u64 = 1500;

/// What one case gives the client under test.
#[derive(Debug, Clone)]
pub struct CaseEnv {
    /// The case.
    pub case: String,
    /// The control plane's base URL for this case.
    pub url: String,
    /// The keyring to pin (one key).
    pub keyring: PathBuf,
    /// Who asks.
    pub actor: String,
    /// For what.
    pub action: String,
    /// On what.
    pub resource: String,
    /// The client's timeout for the exchange.
    pub timeout_ms: u64,
    /// Running the action = creating this file.
    pub marker: PathBuf,
}

#[derive(Debug)]
struct Script {
    key: SigningKey,
    other: SigningKey,
    /// The chain the scripted control plane writes: (next seq, previous hash).
    head: Mutex<(u64, Hash32)>,
    /// The `allow` case's answer, for `replayed_allow`.
    allowed: Mutex<Option<Vec<u8>>>,
}

/// The scripted control plane, serving until dropped.
#[derive(Debug)]
pub struct Scripted {
    base: String,
    unreachable: String,
    keyring: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// Starts it on 127.0.0.1 (a free port) and writes its keyring.
    pub async fn start() -> Result<Self, RunError> {
        let dir = tempfile::tempdir().map_err(setup("temp dir"))?;
        let script = Arc::new(Script {
            key: SigningKey::generate(),
            other: SigningKey::generate(),
            head: Mutex::new((0, Hash32::ZERO)),
            allowed: Mutex::new(None),
        });
        let mut ring = Keyring::new();
        ring.insert(KeyEntry::new(KEY_ID, script.key.public_key()))?;
        let keyring = dir.path().join("keyring.json");
        std::fs::write(&keyring, format!("{:#}\n", ring.to_json()))
            .map_err(setup("writing the keyring"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(setup("listening"))?;
        let addr = listener.local_addr().map_err(setup("listening"))?;
        // A port nobody listens on: bound, then let go.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(setup("a free port"))?;
        let app = Router::new()
            .route("/case/{case}/actions", post(actions))
            .with_state(script);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base: format!("http://{addr}"),
            unreachable: format!("http://{closed}/case/unreachable"),
            keyring,
            _dir: dir,
            task,
        })
    }

    /// The base URL of `case`.
    pub fn url(&self, case: &str) -> String {
        if case == "unreachable" {
            self.unreachable.clone()
        } else {
            format!("{}/case/{case}", self.base)
        }
    }

    /// The keyring to pin.
    pub fn keyring(&self) -> &std::path::Path {
        &self.keyring
    }
}

/// A set-up step that failed.
fn setup(step: &'static str) -> impl FnOnce(std::io::Error) -> RunError {
    move |source| RunError::Setup { step, source }
}

fn s(x: &str) -> Value {
    Value::String(x.to_owned())
}

/// The lineage's answer shape around a sealed envelope.
fn answer(env_json: &str) -> Vec<u8> {
    match json::parse(env_json.as_bytes()) {
        Ok(Value::Object(env)) => zt_core::envelope::lineage_answer(&env),
        _ => Vec::new(),
    }
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn actions(
    State(script): State<Arc<Script>>,
    Path(case): Path<String>,
    body: Bytes,
) -> Response {
    let req = match json::parse(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            return reply(
                StatusCode::BAD_REQUEST,
                br#"{"ok":false,"error":"request body is not a JSON object"}"#.to_vec(),
            )
        }
    };
    let field = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (mut actor, mut action, mut resource) =
        (field("actor"), field("action"), field("resource"));
    let mut allow = true;
    let mut status = StatusCode::OK;
    match case.as_str() {
        "allow" => {}
        "deny" => {
            allow = false;
            status = StatusCode::FORBIDDEN;
        }
        "http_4xx" => {
            return reply(
                StatusCode::BAD_REQUEST,
                br#"{"ok":false,"error":"conformance: a 400"}"#.to_vec(),
            )
        }
        "http_5xx" => {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                br#"{"ok":false,"error":"conformance: a 503"}"#.to_vec(),
            )
        }
        "timeout" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return reply(StatusCode::SERVICE_UNAVAILABLE, Vec::new());
        }
        "replayed_allow" => {
            let earlier = script
                .allowed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(b) = earlier {
                return reply(StatusCode::OK, b);
            }
        }
        "other_action" => action.push_str(".other"),
        "other_resource" => resource.push_str("/other"),
        "other_actor" => actor.push_str("-other"),
        "bad_signature" | "unknown_key" => {}
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                br#"{"ok":false,"error":"no such conformance case"}"#.to_vec(),
            )
        }
    }
    let mut ctx = Map::new();
    ctx.push(
        "request_id".into(),
        req.get("request_id").cloned().unwrap_or_else(|| s("")),
    );
    ctx.push("identity".into(), s("conformance"));
    ctx.push("broker".into(), s("zt-conformance"));
    if let Some(c @ Value::Object(_)) = req.get("context") {
        ctx.push("request".into(), c.clone());
    }
    let (seq, prev) = {
        let mut h = script.head.lock().unwrap_or_else(PoisonError::into_inner);
        let out = *h;
        h.0 += 1;
        out
    };
    let draft = V1Draft {
        chain_id: "conformance".into(),
        seq,
        actor,
        action,
        resource,
        decision: if allow { "allow" } else { "deny" }.into(),
        reason: format!("conformance case {case}"),
        timestamp: Timestamp::now().to_rfc3339_millis(),
        previous_hash: prev,
        context: Some(ctx),
    };
    let sealed = match case.as_str() {
        "unknown_key" => draft.seal(Some((&script.other, "conf-other"))),
        "bad_signature" => draft
            .seal_with("ECDSA_SHA_256", KEY_ID, |_| {
                Ok::<_, ()>(script.key.sign_digest(&Hash32::digest(b"something else")))
            })
            .unwrap_or_else(|()| draft.seal(None)),
        _ => draft.seal(Some((&script.key, KEY_ID))),
    };
    if let Some(h) = script.head.lock().ok().as_mut() {
        h.1 = sealed.current_hash;
    }
    let body = answer(&sealed.json);
    if case == "allow" {
        *script
            .allowed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(body.clone());
    }
    reply(status, body)
}

/// Runs every case: `client` is asked once per case and must create the case's marker only on
/// a verified allow.
pub async fn run<F, Fut>(mut client: F) -> Result<Report, RunError>
where
    F: FnMut(CaseEnv) -> Fut,
    Fut: Future<Output = String>,
{
    let scripted = Scripted::start().await?;
    let markers = tempfile::tempdir().map_err(setup("temp dir"))?;
    let mut report = Report::default();
    for case in CASES {
        let env = CaseEnv {
            case: case.to_owned(),
            url: scripted.url(case),
            keyring: scripted.keyring().to_owned(),
            actor: ACTOR.to_owned(),
            action: ACTION.to_owned(),
            resource: RESOURCE.to_owned(),
            timeout_ms: TIMEOUT_MS,
            marker: markers.path().join(format!("ran-{case}")),
        };
        let marker = env.marker.clone();
        let said = client(env).await;
        let ran = marker.exists();
        let said = said.trim().to_owned();
        let result = match (case == "allow", ran) {
            (true, true) => Ok(format!("ran on the verified allow ({said})")),
            (true, false) => Err(Broken::AllowNotRun { said }),
            (false, false) => Ok(format!("not run ({said})")),
            (false, true) => Err(Broken::Ran { said }),
        };
        report.push(case, result);
    }
    Ok(report)
}

/// Runs every case against an external client: `command` (program and arguments) runs once
/// per case with the case in its environment (see the module docs); its first line of
/// output is quoted in the report. A command that does not end within 30 s is killed (and
/// fails the case if it ran the action).
pub async fn run_command(command: &[std::ffi::OsString]) -> Result<Report, RunError> {
    let Some((program, args)) = command.split_first() else {
        return Err(RunError::NoCommand);
    };
    let program = program.clone();
    let args = args.to_vec();
    run(move |env: CaseEnv| {
        let program = program.clone();
        let args = args.clone();
        async move {
            let mut cmd = tokio::process::Command::new(&program);
            cmd.args(&args)
                .env("ZT_CONFORMANCE_CASE", &env.case)
                .env("ZT_CONFORMANCE_URL", &env.url)
                .env("ZT_CONFORMANCE_KEYRING", &env.keyring)
                .env("ZT_CONFORMANCE_ACTOR", &env.actor)
                .env("ZT_CONFORMANCE_ACTION", &env.action)
                .env("ZT_CONFORMANCE_RESOURCE", &env.resource)
                .env("ZT_CONFORMANCE_TIMEOUT_MS", env.timeout_ms.to_string())
                .env("ZT_CONFORMANCE_MARKER", &env.marker)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            match tokio::time::timeout(Duration::from_secs(30), cmd.output()).await {
                Ok(Ok(out)) => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let line = text.lines().next().unwrap_or("").to_owned();
                    if line.is_empty() {
                        format!("exit {:?}", out.status.code())
                    } else {
                        line
                    }
                }
                Ok(Err(e)) => format!("the client command did not start: {e}"),
                Err(_) => "the client command did not end within 30 s (killed)".to_owned(),
            }
        }
    })
    .await
}
