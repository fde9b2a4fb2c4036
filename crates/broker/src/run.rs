//! One run: ask, start confined, watch, stop, report.
//!
//! 1. `POST /actions` with the capability token, through the guarded client, as the agent (its
//!    token or SVID): only a verified allow whose signed `context.capability` names the token's
//!    id goes on, and the grants applied are that signed `context.capability.grants` (the
//!    sandbox among them), never the token's.
//! 2. The broker checks what it can before anything starts (the sandbox it must provide, the
//!    command exec-granted, every grant opened without links) and starts the helper (this
//!    binary in its hidden `broker sandbox-exec` mode, see [`crate::sandbox`]) with a clean
//!    environment, which confines itself and starts the command as init of its own PID
//!    namespace. A refusal from here on is reported too: the allow was used, nothing ran.
//! 3. `GET /capabilities/{id}` every [`RunConfig::poll_every`]
//!    ([`zt_core::capability::standing::Standing`]): active keeps it running; revoked or
//!    expired stops it; so does the capability's `not_after` passing locally, and, failing
//!    closed, no successful answer for [`RunConfig::contact_timeout`].
//! 4. `POST /executions` with the [`ExecutionReport`]. A broker with an identity of its own
//!    ([`Attest`]: `zt-audit broker serve`) signs it and files it as itself: that is the
//!    evidence of an execution. Without one (`zt-audit broker run`, the local convenience) the
//!    report is filed with the agent's own credentials and the control plane keeps it as what
//!    it is, the agent's claim.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use zt_client::{ActionRequest, ClientConfig, ClientError, GuardedClient, SignedCapability};
use zt_core::capability::report::{
    Attestation, ExecutionReport, Outcome as ReportOutcome, StopKind,
};
use zt_core::capability::standing::Standing;
use zt_core::capability::{Grants, SandboxKind};
use zt_core::crypto::SigningKey;
use zt_core::json::{self, Value};
use zt_core::secret::Secret;
use zt_core::time::Timestamp;

use crate::error::BrokerError;
pub use crate::refusal::RefusalFile;
use crate::sandbox;
use crate::supervise::{Outcome, StopReason, Stopper, Supervised};
use zt_core::text::error_chain;

/// Largest status or report answer read, in bytes.
const MAX_BODY: usize = 1 << 20;

/// How the broker re-executes itself in its sandbox mode: `exe args... --grants-json JSON
/// [--allow-unscoped-landlock] --refusal-file PATH -- COMMAND...`.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The binary (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// The arguments that select the hidden mode (for zt-audit: `broker sandbox-exec`).
    pub args: Vec<OsString>,
}

/// A broker's own identity: the name it is registered under, the key that signs its reports,
/// and its credentials with the control plane (a `ztbr_` token or its SVID).
#[derive(Debug, Clone)]
pub struct Attest {
    /// The registered name.
    pub name: String,
    /// The report key (P-256), whose public half the control plane holds.
    pub key: SigningKey,
    /// The control plane as the broker (status polls and reports).
    pub client: ClientConfig,
}

/// Where the command's standard streams go.
#[derive(Debug, Default)]
pub struct Stdio3 {
    /// Standard input (`None`: `/dev/null`).
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// Standard output (`None`: the broker's).
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// Standard error (`None`: the broker's).
    pub stderr: Option<std::os::fd::OwnedFd>,
}

/// A run.
#[derive(Debug)]
pub struct RunConfig {
    /// The control plane as the agent (its pinned key, bearer token, TLS): the decision, and,
    /// without [`RunConfig::attest`], the status polls and the report.
    pub client: ClientConfig,
    /// The capability token presented.
    pub capability: Secret,
    /// The helper.
    pub launcher: Launcher,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// The command's whole environment (names and values the caller listed).
    pub env: Vec<(OsString, OsString)>,
    /// Its standard streams.
    pub stdio: Stdio3,
    /// Run below Landlock ABI 6 (no signal or socket scopes) when the kernel has nothing
    /// better; recorded on the execution record.
    pub unscoped: bool,
    /// The broker's own identity; `None` for the local convenience (`broker run`).
    pub attest: Option<Attest>,
    /// This run's helper is the only child of this process (`broker run`): every other child
    /// is taken for one of the command's and killed with it. `false` in `broker serve`.
    pub sole: bool,
    /// Files no grant may cover (canonical): the broker's report key. The command runs as the
    /// broker's user, so a grant over its key would let the command sign as the broker.
    pub protected: Vec<PathBuf>,
    /// Between status polls (200 ms).
    pub poll_every: Duration,
    /// Per poll, and the longest time without a successful answer before the command is
    /// stopped (1 s).
    pub contact_timeout: Duration,
}

impl RunConfig {
    /// Polls every 200 ms, 1 s without contact stops the command; no environment, standard
    /// input `/dev/null`, the broker's output streams; the local convenience (no identity).
    pub fn new(
        client: ClientConfig,
        capability: impl Into<String>,
        launcher: Launcher,
        command: Vec<OsString>,
    ) -> Self {
        Self {
            client,
            capability: Secret::new(capability),
            launcher,
            command,
            env: Vec::new(),
            stdio: Stdio3::default(),
            unscoped: false,
            attest: None,
            sole: true,
            protected: Vec::new(),
            poll_every: Duration::from_millis(200),
            contact_timeout: Duration::from_secs(1),
        }
    }
}

/// Checks the caller's environment list: names that are valid, and none the dynamic loader
/// reads (`LD_*`: a library to preload is code the exec grants did not name).
pub fn check_env(env: &[(OsString, OsString)]) -> Result<(), BrokerError> {
    for (name, _) in env {
        let text = name.to_string_lossy();
        let why = if name.is_empty() || text.contains('=') || name.as_encoded_bytes().contains(&0) {
            Some("not a variable name")
        } else if text.starts_with("LD_") {
            Some("the dynamic loader reads it (code the exec grants did not name)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(BrokerError::Env {
                name: text.into_owned(),
                why,
            });
        }
    }
    Ok(())
}

/// Refuses grants that cover (or lie below) one of the broker's own files.
pub fn check_protected(grants: &Grants, protected: &[PathBuf]) -> Result<(), BrokerError> {
    use zt_core::capability::{covers, Access};
    for p in protected {
        let text = p.display().to_string();
        for access in [Access::Read, Access::Write, Access::Exec] {
            if let Some(g) = grants
                .paths(access)
                .iter()
                .find(|g| covers(g, &text) || covers(&text, g))
            {
                return Err(BrokerError::CoversBrokerFile {
                    grant: g.clone(),
                    file: text,
                });
            }
        }
    }
    Ok(())
}

/// Whether the execution report reached the control plane, and as what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 201: sealed as an attested execution, its answer verified under the pinned key.
    Recorded {
        /// `current_hash` of the sealed record.
        hash: String,
    },
    /// Sealed, but not as an attested execution (403: filed with the agent's credentials, a
    /// claim; 409: refused, e.g. a second report for one allow): the record's hash and why.
    Kept {
        /// `current_hash` of the sealed record.
        hash: String,
        /// The HTTP status.
        status: u16,
    },
    /// Answered, but the answer's seal did not verify.
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
    /// No allow: nothing ran and nothing is to report (the decision is the record).
    Refused(BrokerError),
    /// Allowed, and then refused by the broker before the command started: reported.
    NotStarted {
        /// Why.
        error: BrokerError,
        /// The report sent.
        report: String,
        /// Whether it was recorded.
        delivery: Delivery,
    },
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
            Finished::Refused(_) | Finished::NotStarted { .. } => crate::supervise::EXIT_REFUSED,
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

/// What the allow said.
struct Allow {
    decision: zt_core::Hash32,
    actor: String,
    capability: SignedCapability,
    not_after: Timestamp,
}

/// Runs the command under the capability. Never an `Err`: see [`Finished`]. With
/// [`RunConfig::sole`] the calling process becomes a child subreaper and takes every child of
/// its own for the command's: run it in a process of its own, as `zt-audit broker run` does.
pub async fn run(mut config: RunConfig) -> Finished {
    let allow = match ask(&config).await {
        Ok(a) => a,
        Err(e) => return Finished::Refused(e),
    };
    // The broker's own identity, when it has one, is who watches and who reports.
    let (watch_client, attest) = match &config.attest {
        Some(a) => (a.client.clone(), Some((a.name.clone(), a.key.clone()))),
        None => (config.client.clone(), None),
    };
    let http = match http_client(&watch_client) {
        Ok(h) => h,
        Err(e) => return Finished::Refused(e),
    };
    let command: Vec<String> = config
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let unscoped = config.unscoped;
    let report_of = |outcome: ReportOutcome, abi: Option<u32>| ExecutionReport {
        decision: allow.decision,
        capability_id: allow.capability.id.clone(),
        actor: allow.actor.clone(),
        broker: attest.as_ref().map_or_else(
            || "none (zt-audit broker run)".to_owned(),
            |(n, _)| n.clone(),
        ),
        grants: allow.capability.grants.clone(),
        command: command.clone(),
        landlock_abi: abi,
        unscoped: unscoped && abi.is_some_and(|a| a < 6),
        outcome,
    };
    let started = start(&mut config, &allow.capability.grants);
    let (supervised, abi) = match started {
        Ok(s) => s,
        Err(error) => {
            let report = report_of(
                ReportOutcome::Refused {
                    reason: error_chain(&error),
                },
                None,
            );
            let (text, delivery) = deliver(&http, &watch_client, &report, attest.as_ref()).await;
            return Finished::NotStarted {
                error,
                report: text,
                delivery,
            };
        }
    };
    let watcher = tokio::spawn(watch(
        http.clone(),
        url(
            &watch_client,
            &format!("/capabilities/{}", allow.capability.id),
        ),
        watch_client.token.clone(),
        allow.capability.id.clone(),
        allow.not_after,
        supervised.stopper(),
        config.poll_every,
        config.contact_timeout,
    ));
    let outcome = tokio::task::spawn_blocking(move || supervised.wait()).await;
    watcher.abort();
    let outcome = match outcome {
        Ok(Ok(o)) => o,
        // The command was started: its status is unknown, so nothing says it ran to the end.
        Ok(Err(e)) => Outcome::lost(format!("the broker lost the command: {e}")),
        Err(e) => Outcome::lost(format!("the broker's waiter failed: {e}")),
    };
    // The helper's own refusal (a grant swapped while it built the sandbox, say): it wrote
    // why, and exited 126 before the command started.
    if let Some(why) = outcome.refused.clone() {
        let error = BrokerError::HelperRefused { why };
        let report = report_of(
            ReportOutcome::Refused {
                reason: error_chain(&error),
            },
            abi,
        );
        let (text, delivery) = deliver(&http, &watch_client, &report, attest.as_ref()).await;
        return Finished::NotStarted {
            error,
            report: text,
            delivery,
        };
    }
    let report = report_of(
        ReportOutcome::Ran {
            exit_code: outcome.exit_code.map(i64::from),
            signal: outcome.signal.map(i64::from),
            duration_ms: outcome.duration_ms,
            stopped: outcome
                .stopped
                .as_ref()
                .map(|r| (r.kind(), r.detail().to_owned())),
        },
        abi,
    );
    let (text, delivery) = deliver(&http, &watch_client, &report, attest.as_ref()).await;
    Finished::Ran {
        outcome,
        report: text,
        delivery,
    }
}

async fn ask(config: &RunConfig) -> Result<Allow, BrokerError> {
    let token = config.capability.expose();
    let claims = zt_core::capability::claims(token)?;
    let client = GuardedClient::new(config.client.clone())?;
    let request = ActionRequest::new(claims.actor.clone(), claims.action)
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
    let not_after = match capability.not_after {
        Some(signed) => signed.min(claims.not_after),
        None => claims.not_after,
    };
    Ok(Allow {
        decision: decision.current_hash,
        actor: claims.actor,
        capability,
        not_after,
    })
}

/// The broker's own checks, then the helper, started.
fn start(
    config: &mut RunConfig,
    grants: &Grants,
) -> Result<(Supervised, Option<u32>), BrokerError> {
    check_env(&config.env)?;
    check_protected(grants, &config.protected)?;
    let path_var = config
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let (abi, command) = sandbox::prepare(
        grants,
        &config.command,
        path_var.as_deref(),
        config.unscoped,
    )?;
    if grants.sandbox == SandboxKind::Nono {
        // Every grant opens without links here too: a refusal names the path before a helper
        // starts (the helper opens them again, in its own namespace, and that is what counts).
        sandbox::Plan::open(grants, &command)?;
    }
    let refusal = RefusalFile::create()?;
    let mut c = std::process::Command::new(&config.launcher.exe);
    c.args(&config.launcher.args)
        .arg("--grants-json")
        .arg(grants_json(grants))
        .arg("--refusal-file")
        .arg(refusal.path());
    if config.unscoped {
        c.arg("--allow-unscoped-landlock");
    }
    if let Some(cap) = sandbox::abi_cap() {
        c.arg("--landlock-abi-cap").arg(cap.to_string());
    }
    c.arg("--").args(&config.command);
    c.env_clear().envs(config.env.iter().map(|(k, v)| (k, v)));
    c.stdin(match config.stdio.stdin.take() {
        Some(fd) => Stdio::from(fd),
        None => Stdio::null(),
    });
    if let Some(fd) = config.stdio.stdout.take() {
        c.stdout(Stdio::from(fd));
    }
    if let Some(fd) = config.stdio.stderr.take() {
        c.stderr(Stdio::from(fd));
    }
    let supervised = Supervised::spawn_contained(c, config.sole, Some(refusal))?;
    Ok((supervised, abi.map(sandbox::abi_number)))
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

/// Reads one answer of `GET /capabilities/{id}` through the one standing model.
pub fn read_status(id: &str, status: u16, body: &[u8]) -> Status {
    let standing = match status {
        200 | 410 => Standing::from_status(id, body),
        s => {
            return Status::NoAnswer(format!(
                "HTTP {s}: {}",
                zt_core::envelope::shorten(&String::from_utf8_lossy(body))
            ))
        }
    };
    match (status, standing) {
        (200, Ok(Standing::Active { .. })) => Status::Active,
        (_, Ok(Standing::Revoked { at })) => Status::Stop(StopReason::Revoked {
            detail: format!(
                "capability {id} revoked at {} (control plane, HTTP {status})",
                at.to_rfc3339_millis()
            ),
        }),
        (_, Ok(Standing::Expired { at })) => Status::Stop(StopReason::Expired {
            detail: format!(
                "capability {id} expired at {} (control plane, HTTP {status})",
                at.to_rfc3339_millis()
            ),
        }),
        // Gone, in a shape not understood: gone all the same.
        (410, _) => Status::Stop(StopReason::Revoked {
            detail: format!("capability {id} is gone (HTTP 410)"),
        }),
        (_, Ok(other)) => Status::NoAnswer(format!("HTTP {status} saying {other:?}")),
        (_, Err(why)) => Status::NoAnswer(why.to_string()),
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one watch, its parts spelled out"
)]
async fn watch(
    http: reqwest::Client,
    url: String,
    token: Option<Secret>,
    id: String,
    not_after: Timestamp,
    stopper: Stopper,
    every: Duration,
    contact_timeout: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = Instant::now();
    let mut last_err = String::from("no answer yet");
    loop {
        tick.tick().await;
        let local = zt_core::capability::standing::Held {
            actor: String::new(),
            not_after,
            revoked_at: None,
        };
        if let Standing::Expired { at } = Standing::of(Some(&local), Timestamp::now()) {
            stopper.stop(StopReason::Expired {
                detail: format!(
                    "capability {id} not_after {} passed",
                    at.to_rfc3339_millis()
                ),
            });
            return;
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

/// The body of `POST /executions`: the report, and the broker's attestation when it has an
/// identity.
pub fn filed_json(report: &ExecutionReport, attest: Option<&(String, SigningKey)>) -> Vec<u8> {
    let mut m = json::Map::new();
    m.push("report".into(), report.to_value());
    if let Some((name, key)) = attest {
        m.push(
            "attestation".into(),
            Attestation::sign(report, name, key).to_value(),
        );
    }
    json::canonicalize(&Value::Object(m))
}

async fn deliver(
    http: &reqwest::Client,
    config: &ClientConfig,
    report: &ExecutionReport,
    attest: Option<&(String, SigningKey)>,
) -> (String, Delivery) {
    let body = filed_json(report, attest);
    let text = String::from_utf8_lossy(&body).into_owned();
    let url = url(config, "/executions");
    let mut why = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        match fetch(req, config.token.as_ref(), config.timeout).await {
            Ok((status @ (201 | 403 | 409), answer)) => {
                let sealed = zt_client::verify_sealed(&answer, &config.pinned, Timestamp::now());
                let delivery = match (status, sealed) {
                    (201, Ok(h)) => Delivery::Recorded { hash: h.to_hex() },
                    (_, Ok(h)) => Delivery::Kept {
                        hash: h.to_hex(),
                        status,
                    },
                    (_, Err(e)) => Delivery::Unverified {
                        why: format!("HTTP {status}: {e}"),
                    },
                };
                return (text, delivery);
            }
            Ok((status, answer)) => {
                why = format!(
                    "HTTP {status}: {}",
                    zt_core::envelope::shorten(&String::from_utf8_lossy(&answer))
                );
                // A refusal of the report itself will not change on a retry.
                if (400..500).contains(&status) && status != 429 {
                    break;
                }
            }
            Err(e) => why = e,
        }
    }
    (text, Delivery::NotRecorded { why })
}

impl StopReason {
    /// The report's kind of stop.
    pub fn kind(&self) -> StopKind {
        match self {
            Self::Revoked { .. } => StopKind::Revoked,
            Self::Expired { .. } => StopKind::Expired,
            Self::LostContact { .. } => StopKind::LostContact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_body(state: &str, at: &str) -> String {
        let key = if state == "active" { "not_after" } else { "at" };
        format!(r#"{{"id":"cap-1","state":"{state}","{key}":"{at}"}}"#)
    }

    #[test]
    fn status_answers_map_to_keep_going_stop_or_no_answer() {
        let st = |s, b: &str| read_status("cap-1", s, b.as_bytes());
        let t = "2026-12-01T10:00:00.000Z";
        assert_eq!(st(200, &status_body("active", t)), Status::Active);
        assert!(matches!(
            st(410, &status_body("revoked", t)),
            Status::Stop(StopReason::Revoked { detail }) if detail.contains("revoked at 2026-12-01T10:00:00.000Z")
        ));
        assert!(matches!(
            st(410, &status_body("expired", t)),
            Status::Stop(StopReason::Expired { .. })
        ));
        assert!(matches!(
            st(410, "gone"),
            Status::Stop(StopReason::Revoked { .. })
        ));
        assert!(matches!(st(503, "busy"), Status::NoAnswer(w) if w.contains("503")));
        assert!(matches!(
            st(
                200,
                r#"{"id":"cap-2","state":"active","not_after":"2026-12-01T10:00:00Z"}"#
            ),
            Status::NoAnswer(_)
        ));
        assert!(matches!(st(200, "{}"), Status::NoAnswer(_)));
        // "active" on a 410 is not "keep going"
        assert!(matches!(
            st(410, &status_body("active", t)),
            Status::Stop(_)
        ));
    }

    #[test]
    fn no_grant_reaches_the_brokers_own_key() {
        let key = PathBuf::from("/etc/zt/broker/report-key.pem");
        let g = |read: &str| Grants {
            read: vec![read.into()],
            ..Grants::default()
        };
        assert!(check_protected(&g("/srv/data"), std::slice::from_ref(&key)).is_ok());
        for over in ["/etc", "/etc/zt/broker", "/etc/zt/broker/report-key.pem"] {
            assert!(
                matches!(
                    check_protected(&g(over), std::slice::from_ref(&key)),
                    Err(BrokerError::CoversBrokerFile { .. })
                ),
                "{over}"
            );
        }
    }

    #[test]
    fn the_loader_environment_never_reaches_the_command() {
        let e = |k: &str| vec![(OsString::from(k), OsString::from("x"))];
        assert!(check_env(&e("PATH")).is_ok());
        for bad in ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "A=B", ""] {
            assert!(
                matches!(check_env(&e(bad)), Err(BrokerError::Env { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_signed_report_is_filed_with_its_attestation() {
        let key = SigningKey::generate();
        let report = ExecutionReport {
            decision: zt_core::Hash32([1; 32]),
            capability_id: "cap-1".into(),
            actor: "agent-a".into(),
            broker: "b1".into(),
            grants: Grants::default(),
            command: vec!["/usr/bin/true".into()],
            landlock_abi: Some(6),
            unscoped: false,
            outcome: ReportOutcome::Ran {
                exit_code: Some(0),
                signal: None,
                duration_ms: 3,
                stopped: None,
            },
        };
        let body = filed_json(&report, Some(&("b1".into(), key.clone())));
        let v = json::parse(&body).unwrap();
        let m = v.as_object().unwrap();
        let a = zt_core::capability::report::Attestation::from_value(m.get("attestation").unwrap())
            .unwrap();
        let on_record = zt_core::capability::report::BrokerKey {
            broker: "b1".into(),
            key_id: zt_core::capability::report::broker_key_id(&key.public_key()),
            public_key: key.public_key(),
        };
        let parsed = ExecutionReport::from_value(m.get("report").unwrap()).unwrap();
        assert_eq!(a.verify(&parsed.digest(), &on_record), Ok(()));
        let claim = filed_json(&report, None);
        assert!(!String::from_utf8(claim).unwrap().contains("attestation"));
    }
}
