//! The broker's run: ask, start confined, watch, stop, report.
//!
//! 1. `POST /actions` with the capability token, through the guarded client: only a verified
//!    allow whose signed `context.capability` names the token's id goes on, and the grants
//!    applied are that signed `context.capability.grants`, never the token's.
//! 2. The command starts in its own process group: under [`Sandbox::Nono`] it is this binary
//!    again in its hidden sandbox mode (the launcher), which confines itself and executes the
//!    command; under [`Sandbox::Process`] the command itself.
//! 3. `GET /capabilities/{id}` every [`RunConfig::poll_every`]: 200 `active` keeps it running;
//!    410 `revoked` / `expired` stops it; so does the capability's `not_after` passing locally,
//!    and, failing closed, no successful answer for [`RunConfig::contact_timeout`].
//! 4. `POST /executions` with what happened (three tries), its sealed answer verified under
//!    the pinned key.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use zt_client::{ActionRequest, ClientConfig, ClientError, GuardedClient, SignedCapability};
use zt_core::capability::Grants;
use zt_core::json::{self, Map, Value};
use zt_core::secret::Secret;
use zt_core::time::Timestamp;

use crate::error::BrokerError;
use crate::sandbox::{self, Sandbox};
use crate::supervise::{Outcome, StopReason, Stopper, Supervised};
use zt_core::text::error_chain;

/// Largest status or report answer read, in bytes.
const MAX_BODY: usize = 1 << 20;

/// How the broker re-executes itself in its sandbox mode: `exe args... --grants-json JSON --
/// COMMAND...`.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The binary (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// The arguments that select the hidden mode (for zt-audit: `broker sandbox-exec`).
    pub args: Vec<OsString>,
}

/// A run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The control plane, the pinned key, the bearer token, TLS: the guarded client's
    /// configuration, used for the status polls and the report too.
    pub client: ClientConfig,
    /// The capability token presented.
    pub capability: Secret,
    /// How the command is confined.
    pub sandbox: Sandbox,
    /// For [`Sandbox::Nono`].
    pub launcher: Launcher,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Between status polls (200 ms).
    pub poll_every: Duration,
    /// Per poll, and the longest time without a successful answer before the command is
    /// stopped (1 s).
    pub contact_timeout: Duration,
}

impl RunConfig {
    /// Polls every 200 ms, 1 s without contact stops the command.
    pub fn new(
        client: ClientConfig,
        capability: impl Into<String>,
        sandbox: Sandbox,
        launcher: Launcher,
        command: Vec<OsString>,
    ) -> Self {
        Self {
            client,
            capability: Secret::new(capability),
            sandbox,
            launcher,
            command,
            poll_every: Duration::from_millis(200),
            contact_timeout: Duration::from_secs(1),
        }
    }
}

/// Whether the execution report reached the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 201, and its sealed answer verified under the pinned key: the record's hash.
    Recorded {
        /// `current_hash` of the sealed record.
        hash: String,
    },
    /// 201, but the answer's seal did not verify.
    Unverified {
        /// Why.
        why: String,
    },
    /// Not delivered.
    NotRecorded {
        /// The last error.
        why: String,
    },
}

/// How a run ended.
#[derive(Debug)]
pub enum Finished {
    /// The command never started.
    Refused(BrokerError),
    /// It started (and may have been stopped).
    Ran {
        /// How it ended.
        outcome: Outcome,
        /// The report sent (canonical JSON).
        report: String,
        /// Whether it was recorded.
        delivery: Delivery,
    },
}

impl Finished {
    /// The broker's exit status: 126 refused, 137 stopped, else the command's.
    pub fn exit_status(&self) -> u8 {
        match self {
            Finished::Refused(_) => crate::supervise::EXIT_REFUSED,
            Finished::Ran { outcome, .. } => outcome.exit_status(),
        }
    }
}

fn http_client(config: &ClientConfig) -> Result<reqwest::Client, BrokerError> {
    let tls = config.tls.config().map_err(ClientError::Tls)?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BrokerError::Client(ClientError::Http(e.to_string())))
}

fn url(config: &ClientConfig, path: &str) -> String {
    format!("{}{path}", config.base_url.trim_end_matches('/'))
}

/// Runs the command under the capability. Never an `Err` for a refusal: that is
/// [`Finished::Refused`]. The calling process becomes a child subreaper and treats every child
/// of its own as the command's ([`Supervised::spawn_contained`]): run it in a process of its
/// own, as `zt-audit broker run` does.
pub async fn run(config: RunConfig) -> Finished {
    let started = match start(&config).await {
        Ok(s) => s,
        Err(e) => return Finished::Refused(e),
    };
    let Started {
        supervised,
        http,
        capability,
        not_after,
        decision,
    } = started;
    let watcher = tokio::spawn(watch(
        http.clone(),
        url(&config.client, &format!("/capabilities/{}", capability.id)),
        config.client.token.clone(),
        not_after,
        supervised.stopper(),
        config.poll_every,
        config.contact_timeout,
    ));
    let outcome = tokio::task::spawn_blocking(move || supervised.wait()).await;
    watcher.abort();
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        // The command was started: its status is unknown, so nothing says it ran to the end.
        Ok(Err(e)) => Outcome {
            exit_code: None,
            signal: None,
            duration_ms: 0,
            stopped: Some(StopReason::LostContact {
                detail: format!("the broker lost the command: {e}"),
            }),
        },
        Err(e) => Outcome {
            exit_code: None,
            signal: None,
            duration_ms: 0,
            stopped: Some(StopReason::LostContact {
                detail: format!("the broker's waiter failed: {e}"),
            }),
        },
    };
    let report = report_json(
        &decision,
        &capability,
        config.sandbox,
        &config.command,
        &outcome,
    );
    let delivery = deliver(&http, &config.client, &report).await;
    Finished::Ran {
        outcome,
        report: String::from_utf8_lossy(&report).into_owned(),
        delivery,
    }
}

struct Started {
    supervised: Supervised,
    http: reqwest::Client,
    capability: SignedCapability,
    not_after: Option<Timestamp>,
    decision: String,
}

async fn start(config: &RunConfig) -> Result<Started, BrokerError> {
    let token = config.capability.expose();
    let claims = zt_core::capability::claims(token)?;
    let http = http_client(&config.client)?;
    let client = GuardedClient::new(config.client.clone())?;
    let request = ActionRequest::new(claims.actor, claims.action)
        .resource(claims.resource)
        .capability(token);
    let allowed = client.decide(&request).await?;
    let decision = allowed.decision();
    let capability =
        decision
            .capability
            .clone()
            .ok_or_else(|| BrokerError::NoSignedCapability {
                decision: decision.current_hash.to_hex(),
            })?;
    // The signed expiry when the decision states one; the token's own can only be earlier
    // (attenuations shorten), and taking the earlier of the two never extends anything.
    let not_after = Some(match capability.not_after {
        Some(signed) => signed.min(claims.not_after),
        None => claims.not_after,
    });
    let (_, command) = sandbox::prepare(config.sandbox, &capability.grants, &config.command)?;
    let cmd = match config.sandbox {
        Sandbox::Nono => {
            let mut c = std::process::Command::new(&config.launcher.exe);
            c.args(&config.launcher.args)
                .arg("--grants-json")
                .arg(grants_json(&capability.grants))
                .arg("--")
                .args(&config.command);
            c
        }
        Sandbox::Process => {
            use std::os::unix::process::CommandExt;
            let mut c = std::process::Command::new(&command);
            if let Some(a0) = config.command.first() {
                c.arg0(a0);
            }
            c.args(config.command.iter().skip(1));
            c
        }
    };
    Ok(Started {
        supervised: Supervised::spawn_contained(cmd)?,
        http,
        capability,
        not_after,
        decision: decision.current_hash.to_hex(),
    })
}

/// The grants as the hidden sandbox mode takes them (canonical JSON).
pub fn grants_json(grants: &Grants) -> String {
    String::from_utf8_lossy(&json::canonicalize(&grants.to_value())).into_owned()
}

async fn fetch(
    req: reqwest::RequestBuilder,
    token: Option<&Secret>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let req = match token {
        Some(t) => req.bearer_auth(t.expose()),
        None => req,
    };
    let fut = async {
        let mut resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(format!("answer larger than {MAX_BODY} bytes"));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((status, buf))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}

/// What one status answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still active.
    Active,
    /// Stop.
    Stop(StopReason),
    /// Not a successful answer (counts towards lost contact).
    NoAnswer(String),
}

/// Reads one answer of `GET /capabilities/{id}`.
pub fn read_status(id: &str, status: u16, body: &[u8]) -> Status {
    let parsed = json::parse(body).ok();
    let member = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.as_object())
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .map(zt_core::envelope::shorten)
    };
    let state = member("state");
    let at = member("at").map_or_else(String::new, |a| format!(" at {a}"));
    match (status, state.as_deref()) {
        (200 | 410, Some(s @ ("revoked" | "expired"))) => {
            let detail = format!("capability {id} {s}{at} (control plane, HTTP {status})");
            Status::Stop(if s == "revoked" {
                StopReason::Revoked { detail }
            } else {
                StopReason::Expired { detail }
            })
        }
        (200, Some("active")) => match member("id") {
            Some(other) if other != id => Status::NoAnswer(format!(
                "the status answer is about capability {other}, not {id}"
            )),
            _ => Status::Active,
        },
        // Gone, in a shape not understood: gone all the same.
        (410, _) => Status::Stop(StopReason::Revoked {
            detail: format!("capability {id} is gone (HTTP 410)"),
        }),
        (s, _) => Status::NoAnswer(format!(
            "HTTP {s}: {}",
            zt_core::envelope::shorten(&String::from_utf8_lossy(body))
        )),
    }
}

async fn watch(
    http: reqwest::Client,
    url: String,
    token: Option<Secret>,
    not_after: Option<Timestamp>,
    stopper: Stopper,
    every: Duration,
    contact_timeout: Duration,
) {
    let id = url.rsplit('/').next().unwrap_or_default().to_owned();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    let mut last_err = String::from("no answer yet");
    loop {
        tick.tick().await;
        if let Some(t) = not_after {
            if Timestamp::now() >= t {
                stopper.stop(StopReason::Expired {
                    detail: format!("capability {id} not_after {} passed", t.to_rfc3339_millis()),
                });
                return;
            }
        }
        match fetch(http.get(&url), token.as_ref(), contact_timeout).await {
            Ok((status, body)) => match read_status(&id, status, &body) {
                Status::Active => last_ok = Instant::now(),
                Status::Stop(reason) => {
                    stopper.stop(reason);
                    return;
                }
                Status::NoAnswer(why) => last_err = why,
            },
            Err(why) => last_err = why,
        }
        if last_ok.elapsed() >= contact_timeout {
            stopper.stop(StopReason::LostContact {
                detail: format!(
                    "no successful status answer for {} ms: {last_err}",
                    last_ok.elapsed().as_millis()
                ),
            });
            return;
        }
    }
}

/// The execution report (canonical JSON).
pub fn report_json(
    decision: &str,
    capability: &SignedCapability,
    sandbox: Sandbox,
    command: &[OsString],
    outcome: &Outcome,
) -> Vec<u8> {
    let s = |x: &str| Value::String(x.to_owned());
    let n = |x: Option<i32>| x.map_or(Value::Null, |v| Value::Number(f64::from(v)));
    let mut m = Map::new();
    m.push("decision".into(), s(decision));
    m.push("capability_id".into(), s(&capability.id));
    m.push("sandbox".into(), s(sandbox.as_str()));
    m.push("grants".into(), capability.grants.to_value());
    m.push(
        "command".into(),
        Value::Array(
            command
                .iter()
                .map(|a| Value::String(a.to_string_lossy().into_owned()))
                .collect(),
        ),
    );
    m.push("exit_code".into(), n(outcome.exit_code));
    m.push("signal".into(), n(outcome.signal));
    // Durations fit a double exactly well past any run's length (2^53 ms).
    m.push(
        "duration_ms".into(),
        Value::Number(outcome.duration_ms as f64),
    );
    m.push(
        "stopped".into(),
        match &outcome.stopped {
            None => Value::Null,
            Some(r) => {
                let mut o = Map::new();
                o.push("reason".into(), s(r.as_str()));
                o.push("detail".into(), s(r.detail()));
                Value::Object(o)
            }
        },
    );
    json::canonicalize(&Value::Object(m))
}

async fn deliver(http: &reqwest::Client, config: &ClientConfig, report: &[u8]) -> Delivery {
    let url = url(config, "/executions");
    let mut why = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(report.to_vec());
        match fetch(req, config.token.as_ref(), config.timeout).await {
            Ok((201, body)) => {
                return match zt_client::verify_sealed(&body, &config.pinned, Timestamp::now()) {
                    Ok(h) => Delivery::Recorded { hash: h.to_hex() },
                    Err(e) => Delivery::Unverified { why: e.to_string() },
                }
            }
            Ok((status, body)) => {
                why = format!(
                    "HTTP {status}: {}",
                    zt_core::envelope::shorten(&String::from_utf8_lossy(&body))
                );
                // A refusal of the report itself will not change on a retry.
                if (400..500).contains(&status) {
                    break;
                }
            }
            Err(e) => why = e,
        }
    }
    Delivery::NotRecorded { why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_answers_map_to_keep_going_stop_or_no_answer() {
        let st = |s, b: &str| read_status("cap-1", s, b.as_bytes());
        assert_eq!(
            st(200, r#"{"id":"cap-1","state":"active"}"#),
            Status::Active
        );
        assert!(matches!(
            st(410, r#"{"state":"revoked","at":"T"}"#),
            Status::Stop(StopReason::Revoked { detail }) if detail.contains("revoked at T")
        ));
        assert!(matches!(
            st(410, r#"{"state":"expired"}"#),
            Status::Stop(StopReason::Expired { .. })
        ));
        assert!(matches!(
            st(410, "gone"),
            Status::Stop(StopReason::Revoked { .. })
        ));
        assert!(matches!(st(503, "busy"), Status::NoAnswer(w) if w.contains("503")));
        assert!(matches!(
            st(200, r#"{"id":"cap-2","state":"active"}"#),
            Status::NoAnswer(_)
        ));
        assert!(matches!(st(200, "{}"), Status::NoAnswer(_)));
    }

    #[test]
    fn the_report_has_every_member_and_the_signed_grants() {
        let cap = SignedCapability {
            id: "cap-1".into(),
            grants: Grants {
                read: vec!["/data".into()],
                ..Grants::default()
            },
            not_after: None,
        };
        let outcome = Outcome {
            exit_code: None,
            signal: Some(9),
            duration_ms: 1200,
            stopped: Some(StopReason::Revoked {
                detail: "at T".into(),
            }),
        };
        let r = report_json(
            "ab",
            &cap,
            Sandbox::Nono,
            &["/bin/sleep".into(), "30".into()],
            &outcome,
        );
        assert_eq!(
            String::from_utf8(r).unwrap(),
            r#"{"capability_id":"cap-1","command":["/bin/sleep","30"],"decision":"ab","duration_ms":1200,"exit_code":null,"grants":{"exec":[],"net":false,"read":["/data"],"write":[]},"sandbox":"nono","signal":9,"stopped":{"detail":"at T","reason":"revoked"}}"#
        );
    }
}
