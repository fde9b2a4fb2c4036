//! `zt-audit broker serve`: the broker as a principal of its own, which agents ask over a unix
//! socket to run a command under a capability.
//!
//! The broker holds what the agent does not: its registered name, the key that signs its
//! execution reports ([`crate::run::Attest`]) and its own credential with the control plane.
//! An agent connects to the socket (whose file permissions say which local users may ask) and
//! sends one request, a JSON line, with its standard streams attached as `SCM_RIGHTS`
//! descriptors:
//!
//! ```text
//! {"capability": "ztcap1.…", "token": "<the agent's bearer token>", "command": ["/usr/bin/cat", "x"],
//!  "env": {"PATH": "/usr/bin"}, "stdin": false}
//! + descriptors: stdout, stderr (stdin first when "stdin": true)
//! ```
//!
//! The broker asks `POST /actions` as the agent (so the control plane still checks that the
//! capability is bound to the agent asking), runs the command confined to the signed grants,
//! watches the capability as itself, and files the execution report signed with its key. The
//! answer is one JSON line ([`Answer`]): the command's status, the decision, and what became
//! of the report. The agent never holds the key that attests the execution.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use zt_client::ClientConfig;
use zt_core::json::{self, Map, Value};
use zt_core::secret::Secret;

use crate::error::{BrokerError, ExchangeError};
use crate::run::{self, Attest, Delivery, Finished, Launcher, RunConfig, Stdio3};
use crate::supervise::EXIT_REFUSED;

/// Largest request line, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// How long a connection may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A broker service.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The unix socket to listen on (created; an existing socket file is replaced).
    pub socket: PathBuf,
    /// Its file mode (who may ask), e.g. `0o660`.
    pub socket_mode: u32,
    /// The control plane as agents reach it (base URL, pinned keyring, TLS CAs): each
    /// request's decision is asked with the agent's own token over it.
    pub agents: ClientConfig,
    /// The broker's own identity.
    pub attest: Attest,
    /// The helper.
    pub launcher: Launcher,
    /// Run below Landlock ABI 6 when the kernel has nothing better (recorded).
    pub unscoped: bool,
    /// Runs at once; a request past it is told the broker is busy.
    pub max_runs: usize,
    /// Files no grant may cover (the report key, canonical).
    pub protected: Vec<PathBuf>,
}

/// One agent's request.
#[derive(Debug)]
pub struct Request {
    /// The capability token.
    pub capability: Secret,
    /// The agent's bearer token (asks the decision as the agent).
    pub token: Option<Secret>,
    /// The command line.
    pub command: Vec<String>,
    /// The command's environment.
    pub env: BTreeMap<String, String>,
    /// Whether the first descriptor is the command's standard input.
    pub stdin: bool,
}

impl Request {
    /// The JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let s = |x: &str| Value::String(x.to_owned());
        let mut m = Map::new();
        m.push("capability".into(), s(self.capability.expose()));
        if let Some(t) = &self.token {
            m.push("token".into(), s(t.expose()));
        }
        m.push(
            "command".into(),
            Value::Array(self.command.iter().map(|a| s(a)).collect()),
        );
        let mut env = Map::new();
        for (k, v) in &self.env {
            env.push(k.clone(), s(v));
        }
        m.push("env".into(), Value::Object(env));
        m.push("stdin".into(), Value::Bool(self.stdin));
        let mut line = json::canonicalize(&Value::Object(m));
        line.push(b'\n');
        line
    }

    /// Reads a request line (I-JSON; unknown members refused).
    pub fn from_line(line: &[u8]) -> Result<Self, ExchangeError> {
        let what = "request";
        let v = json::parse(line).map_err(|source| ExchangeError::NotJson { what, source })?;
        let m = v.as_object().ok_or(ExchangeError::NotObject { what })?;
        if let Some((k, _)) = m
            .iter()
            .find(|(k, _)| !["capability", "token", "command", "env", "stdin"].contains(k))
        {
            return Err(ExchangeError::UnknownMember {
                name: zt_core::envelope::shorten(k),
            });
        }
        let text = |k: &str| m.get(k).and_then(Value::as_str);
        let capability = text("capability").ok_or(ExchangeError::NoCapability)?;
        let command = match m.get("command") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(ExchangeError::CommandNotStrings)?,
            _ => return Err(ExchangeError::NoCommand),
        };
        let mut env = BTreeMap::new();
        match m.get("env") {
            None | Some(Value::Null) => {}
            Some(Value::Object(e)) => {
                for (k, v) in e.iter() {
                    let v = v.as_str().ok_or(ExchangeError::EnvNotStrings)?;
                    env.insert(k.to_owned(), v.to_owned());
                }
            }
            Some(_) => return Err(ExchangeError::EnvNotObject),
        }
        Ok(Self {
            capability: Secret::new(capability),
            token: text("token").map(Secret::new),
            command,
            env,
            stdin: matches!(m.get("stdin"), Some(Value::Bool(true))),
        })
    }
}

/// The broker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The exit status the asking process should leave with (126 refused, 137 stopped,
    /// otherwise the command's).
    pub status: u8,
    /// Whether the command started.
    pub ran: bool,
    /// Why it did not, or what stopped it.
    pub message: Option<String>,
    /// The execution record's hash, when the report was recorded as an attested execution.
    pub execution: Option<String>,
    /// Otherwise what became of the report.
    pub report: Option<String>,
}

impl Answer {
    fn refused(message: String) -> Self {
        Self {
            status: EXIT_REFUSED,
            ran: false,
            message: Some(message),
            execution: None,
            report: None,
        }
    }

    /// The JSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let opt = |x: &Option<String>| x.clone().map_or(Value::Null, Value::String);
        let mut m = Map::new();
        m.push("status".into(), Value::Number(f64::from(self.status)));
        m.push("ran".into(), Value::Bool(self.ran));
        m.push("message".into(), opt(&self.message));
        m.push("execution".into(), opt(&self.execution));
        m.push("report".into(), opt(&self.report));
        let mut line = json::canonicalize(&Value::Object(m));
        line.push(b'\n');
        line
    }

    /// Reads the JSON line.
    pub fn from_line(line: &[u8]) -> Result<Self, ExchangeError> {
        let what = "answer";
        let v = json::parse(line).map_err(|source| ExchangeError::NotJson { what, source })?;
        let m = v.as_object().ok_or(ExchangeError::NotObject { what })?;
        let opt = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let status = match m.get("status") {
            Some(Value::Number(n)) if n.fract() == 0.0 && (0.0..=255.0).contains(n) => *n as u8,
            _ => return Err(ExchangeError::NoStatus),
        };
        Ok(Self {
            status,
            ran: matches!(m.get("ran"), Some(Value::Bool(true))),
            message: opt("message"),
            execution: opt("execution"),
            report: opt("report"),
        })
    }

    fn of(finished: &Finished) -> Self {
        let (ran, message, delivery) = match finished {
            Finished::Refused(e) => {
                return Self::refused(format!(
                    "refused, the command was not started: {}",
                    zt_core::text::error_chain(e)
                ))
            }
            Finished::NotStarted {
                error, delivery, ..
            } => (
                false,
                Some(format!(
                    "refused, the command was not started: {}",
                    zt_core::text::error_chain(error)
                )),
                delivery,
            ),
            Finished::Ran {
                outcome, delivery, ..
            } => (
                true,
                outcome
                    .stopped
                    .as_ref()
                    .map(|r| format!("stopped the command ({r})")),
                delivery,
            ),
        };
        let (execution, report) = match delivery {
            Delivery::Recorded { hash } => (Some(hash.clone()), None),
            Delivery::Kept { hash, status } => (
                None,
                Some(format!(
                    "sealed as {hash}, but not as an attested execution (HTTP {status})"
                )),
            ),
            Delivery::Unverified { why } => (None, Some(format!("answer does not verify: {why}"))),
            Delivery::NotRecorded { why } => (None, Some(format!("NOT recorded: {why}"))),
        };
        Self {
            status: finished.exit_status(),
            ran,
            message,
            execution,
            report,
        }
    }
}

/// Reads one request and its descriptors from `stream` (blocking, bounded in size and time).
fn receive(stream: &UnixStream) -> Result<(Request, Vec<OwnedFd>), ExchangeError> {
    let reading = |source| ExchangeError::Io {
        step: "reading the request",
        source,
    };
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(reading)?;
    let mut line = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(|e| reading(e.into()))?;
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        if got.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(ExchangeError::TooManyDescriptors { max: 4 });
        }
        if got.bytes == 0 {
            return Err(ExchangeError::Truncated);
        }
        line.extend_from_slice(&buf[..got.bytes]);
        if line.len() > MAX_REQUEST {
            return Err(ExchangeError::TooLong { max: MAX_REQUEST });
        }
        if let Some(end) = line.iter().position(|b| *b == b'\n') {
            line.truncate(end);
            break;
        }
    }
    let req = Request::from_line(&line)?;
    let want = if req.stdin { 3 } else { 2 };
    if fds.len() != want {
        return Err(ExchangeError::Descriptors {
            want,
            got: fds.len(),
            stdin: req.stdin,
        });
    }
    Ok((req, fds))
}

/// Answers a connection the broker has no place for, then reads what it sent for a moment
/// before closing: closing over unread data would reset the connection and lose the answer.
fn refuse_busy(stream: &UnixStream, busy: &Answer) {
    let mut w = stream;
    let _ = w.write_all(&busy.to_line());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut read = 0;
    while read < MAX_REQUEST {
        match std::io::Read::read(&mut w, &mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
}

/// Sends `req` with the caller's standard streams over `socket` and waits for the answer
/// (`zt-audit broker ask`).
pub fn ask(socket: &Path, req: &Request) -> Result<Answer, ExchangeError> {
    let stream = UnixStream::connect(socket).map_err(|source| ExchangeError::Connect {
        socket: socket.to_owned(),
        source,
    })?;
    let sending = |source| ExchangeError::Io {
        step: "sending the request",
        source,
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let mut fds = vec![stdout.as_fd(), stderr.as_fd()];
    if req.stdin {
        fds.insert(0, stdin.as_fd());
    }
    let line = req.to_line();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(ExchangeError::Attach);
    }
    let sent = rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(&line)],
        &mut control,
        SendFlags::empty(),
    )
    .map_err(|e| sending(e.into()))?;
    if sent < line.len() {
        (&stream).write_all(&line[sent..]).map_err(sending)?;
    }
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut (&stream), &mut answer).map_err(|source| {
        ExchangeError::Io {
            step: "reading the broker's answer",
            source,
        }
    })?;
    let end = answer
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(answer.len());
    Answer::from_line(&answer[..end])
}

async fn handle(config: Arc<ServeConfig>, stream: UnixStream) {
    let received = {
        let s = match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::task::spawn_blocking(move || receive(&s)).await
    };
    let answer = match received {
        Ok(Ok((req, mut fds))) => {
            let stderr = fds.pop();
            let stdout = fds.pop();
            let stdin = fds.pop();
            let mut client = config.agents.clone();
            client.token = req.token.clone();
            let mut rc = RunConfig::new(
                client,
                req.capability.expose(),
                config.launcher.clone(),
                req.command.iter().map(OsString::from).collect(),
            );
            rc.env = req
                .env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect();
            rc.stdio = Stdio3 {
                stdin,
                stdout,
                stderr,
            };
            rc.unscoped = config.unscoped;
            rc.attest = Some(config.attest.clone());
            rc.sole = false;
            rc.protected = config.protected.clone();
            Answer::of(&run::run(rc).await)
        }
        Ok(Err(why)) => Answer::refused(format!("bad request: {why}")),
        Err(e) => Answer::refused(format!("bad request: {e}")),
    };
    let _ = tokio::task::spawn_blocking(move || (&stream).write_all(&answer.to_line())).await;
}

/// Serves until `shutdown`: one task per connection, at most [`ServeConfig::max_runs`] runs at
/// once; orphans (a command whose helper died) are killed every half second.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), BrokerError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| BrokerError::Spawn {
        command: config.socket.clone(),
        source,
    };
    if let Ok(m) = std::fs::symlink_metadata(&config.socket) {
        use std::os::unix::fs::FileTypeExt;
        if m.file_type().is_socket() {
            std::fs::remove_file(&config.socket).map_err(io)?;
        }
    }
    let listener = tokio::net::UnixListener::bind(&config.socket).map_err(io)?;
    std::fs::set_permissions(
        &config.socket,
        std::fs::Permissions::from_mode(config.socket_mode),
    )
    .map_err(io)?;
    nix::sys::prctl::set_child_subreaper(true).map_err(|e| io(std::io::Error::from(e)))?;
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_runs.max(1)));
    let config = Arc::new(config);
    let sweeper = tokio::spawn(async {
        let mut t = tokio::time::interval(Duration::from_millis(500));
        loop {
            t.tick().await;
            crate::supervise::sweep_orphans();
        }
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(stream) = stream.into_std() else { continue };
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                // A run's place is taken before its request is read: at most `max_runs`
                // connections are read or run at once; one more is told so and closed.
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    let busy = Answer::refused(format!(
                        "the broker is running {} commands already; ask again later",
                        config.max_runs
                    ));
                    tokio::task::spawn_blocking(move || refuse_busy(&stream, &busy));
                    continue;
                };
                let config = Arc::clone(&config);
                tokio::spawn(async move {
                    let _permit = permit;
                    handle(config, stream).await;
                });
            }
        }
    }
    sweeper.abort();
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_and_bad_ones_are_named() {
        let req = Request {
            capability: Secret::new("ztcap1.x"),
            token: Some(Secret::new("ztcp_t")),
            command: vec!["/usr/bin/true".into()],
            env: BTreeMap::from([("PATH".into(), "/usr/bin".into())]),
            stdin: true,
        };
        let back = Request::from_line(req.to_line().trim_ascii_end()).unwrap();
        assert_eq!(back.command, req.command);
        assert_eq!(back.env, req.env);
        assert!(back.stdin);
        assert_eq!(
            back.token.map(|t| t.expose().to_owned()).as_deref(),
            Some("ztcp_t")
        );
        for (line, needle) in [
            (&br#"{"command":["x"]}"#[..], "`capability`"),
            (br#"{"capability":"c","command":[]}"#, "`command`"),
            (
                br#"{"capability":"c","command":["x"],"sudo":1}"#,
                "unknown member",
            ),
            (
                br#"{"capability":"c","command":["x"],"env":{"A":1}}"#,
                "`env`",
            ),
        ] {
            let e = Request::from_line(line)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(needle), "{e}");
        }
        let a = Answer {
            status: 137,
            ran: true,
            message: Some("stopped".into()),
            execution: Some("ab".into()),
            report: None,
        };
        assert_eq!(Answer::from_line(a.to_line().trim_ascii_end()).unwrap(), a);
    }
}
