//! `zt-audit broker serve` / `broker ask` and `broker run` against a real `zt-audit
//! control-plane` process on the real kernel: the kernel refuses what the grants leave out, a
//! revocation stops a running command within a second and the chain records it, refused
//! capabilities never start the command, a dead control plane stops it, and the store verifies
//! with every execution attested by the broker and linked to its allow. The harness here
//! (a control plane, a registered broker service) is what `attacks.rs` uses too.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_core::capability::{self, Grants};
use zt_core::time::Timestamp;
pub(crate) use zt_testkit::process::{alive, pids_running, wait_running};
use zt_testkit::store::records_as_stored;
use zt_testkit::{wait_until, ControlPlane};

use crate::{assert_refused, bin, s, stderr, stdout, zt_audit};

/// A running `zt-audit control-plane` (admin token in its directory); killed on drop.
pub(crate) struct Cp {
    cp: ControlPlane,
    pub admin: String,
}

impl Deref for Cp {
    type Target = ControlPlane;
    fn deref(&self) -> &ControlPlane {
        &self.cp
    }
}

impl DerefMut for Cp {
    fn deref_mut(&mut self) -> &mut ControlPlane {
        &mut self.cp
    }
}

impl Cp {
    /// With more `control-plane` arguments.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Cp {
        let cp = ControlPlane::start(bin(), dir, extra);
        let admin = cp.admin().to_owned();
        Cp { cp, admin }
    }

    /// `METHOD path` with `token` and an optional JSON body: (status, answer).
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        self.cp.call(method, path, Some(token), body.as_ref())
    }

    /// `POST path` of `body` with the admin token: (status, answer).
    pub fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, &self.admin, Some(body))
    }

    /// `zt-audit broker run --control-plane BASE --keyring KEYRING`, to be completed.
    pub fn broker_run(&self) -> Command {
        let mut c = zt_audit();
        c.args(["broker", "run", "--control-plane", &self.base, "--keyring"])
            .arg(self.keyring());
        c
    }

    /// A capability for agent-a's `files.read` on `data/x`: (id, token).
    pub fn issue(&self, ttl_s: u64, grants: Value) -> (String, String) {
        let (st, v) = self.call(
            "POST",
            "/capabilities",
            &self.admin,
            Some(json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": ttl_s, "grants": grants})),
        );
        assert_eq!(st, 201, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers broker `name` with a fresh key (written into `dir`) and starts `broker serve`
    /// on a socket in `dir`, with `extra` arguments and `env`.
    pub fn broker_service(
        &self,
        dir: &Path,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> BrokerService {
        let keys = dir.join(format!("{name}-keys"));
        bin().keygen(&keys, name);
        let public = std::fs::read_to_string(keys.join("public.pem")).unwrap();
        let (st, v) = self.call(
            "POST",
            "/brokers",
            &self.admin,
            Some(json!({"name": name, "public_key": public})),
        );
        assert_eq!(st, 201, "{v}");
        let token = v["token"].as_str().unwrap().to_owned();
        let socket = dir.join(format!("{name}.sock"));
        let mut c = zt_audit();
        c.args([
            "broker",
            "serve",
            "--control-plane",
            &self.base,
            "--keyring",
            s(&self.keyring()),
            "--name",
            name,
            "--report-key",
            s(&keys.join("private.pem")),
            "--socket",
            s(&socket),
        ])
        .args(extra)
        .env("ZT_BROKER_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        wait_until("broker serve to start", Duration::from_secs(10), || {
            socket.exists()
        });
        BrokerService { child, socket }
    }

    /// SIGTERM (drains), then the records of its store in the order they were stored.
    pub fn stop(self) -> Vec<Value> {
        let db = self.db();
        let (code, err) = self.cp.terminate();
        assert_eq!(code, Some(0), "{err}");
        records_as_stored(&db)
    }
}

/// A running `zt-audit broker serve`; killed on drop.
pub(crate) struct BrokerService {
    pub child: Child,
    pub socket: PathBuf,
}

impl BrokerService {
    /// `zt-audit broker ask` on this broker: agent-a's token, the capability, the command.
    pub fn ask(&self, cap: &str, token: &str, argv: &[&str]) -> Command {
        let mut c = zt_audit();
        c.args([
            "broker",
            "ask",
            "--socket",
            s(&self.socket),
            "--capability",
            cap,
            "--token",
            token,
            "--",
        ])
        .args(argv);
        c
    }
}

impl Drop for BrokerService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A control plane with agents a and b, and a policy that lets agent-a read data/x.
pub(crate) fn setup(dir: &Path) -> (Cp, String, String) {
    setup_with(dir, &[])
}

/// [`setup`] with more `control-plane` arguments.
pub(crate) fn setup_with(dir: &Path, extra: &[&str]) -> (Cp, String, String) {
    let cp = Cp::start_with(dir, extra);
    let ta = cp.register("agent-a");
    let tb = cp.register("agent-b");
    let (st, v) = cp.admin_post(
        "/policies",
        json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"}),
    );
    assert_eq!(st, 201, "{v}");
    (cp, ta, tb)
}

/// `zt-audit broker run` (the local convenience) as agent `token`.
pub(crate) fn broker(cp: &Cp, cap: &str, token: &str, argv: &[&str]) -> Command {
    broker_with(cp, cap, token, &[], argv)
}

/// [`broker`] with more `broker run` arguments before the command.
pub(crate) fn broker_with(
    cp: &Cp,
    cap: &str,
    token: &str,
    extra: &[&str],
    argv: &[&str],
) -> Command {
    let mut c = cp.broker_run();
    c.args(["--capability", cap, "--token", token])
        .args(extra)
        .arg("--")
        .args(argv);
    c
}

/// Waits until the broker's allow under capability `id` is on record, then a moment more,
/// and checks the command is still running (the status is being watched).
pub(crate) fn running_under(cp: &Cp, id: &str, child: &mut Child) {
    wait_until("the decision", Duration::from_secs(10), || {
        records_as_stored(&cp.db()).iter().any(|r| {
            r["context"]["capability"]["id"] == id
                && r["context"]["capability"]["attenuations"].is_number()
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command is running"
    );
}

pub(crate) fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

/// [`broker`], run to the end.
pub(crate) fn run_broker(cp: &Cp, cap: &str, token: &str, argv: &[&str]) -> Output {
    run(&mut broker(cp, cap, token, argv))
}

pub(crate) fn zt_verify(cp_dir: &Path) -> (Option<i32>, String) {
    let o = zt_audit()
        .args([
            "verify",
            "--db",
            s(&cp_dir.join("decisions.db")),
            "--keyring",
            s(&cp_dir.join("keyring.json")),
        ])
        .output()
        .unwrap();
    (o.status.code(), stdout(&o) + &stderr(&o))
}

/// Through the broker service: an allowed command runs inside its grants, the kernel refuses a
/// read outside them, both executions are records the broker attested (its signature checked
/// by `zt-audit verify` under the key its registration record states), linked to their
/// allows, and the store verifies.
#[test]
fn a_broker_service_runs_inside_the_grants_and_attests_every_execution() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(data.path().join("granted.txt"), "granted\n").unwrap();
    std::fs::write(other.path().join("secret.txt"), "secret\n").unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let svc = cp.broker_service(tmp.path(), "broker-1", &[], &[]);
    let (_, cap) = cp.issue(
        60,
        json!({"read": [s(data.path())], "exec": ["/usr/bin/cat"]}),
    );

    let ok = run(&mut svc.ask(
        &cap,
        &ta,
        &["/bin/cat", s(&data.path().join("granted.txt"))],
    ));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "granted\n");
    assert!(
        stderr(&ok).contains("execution attested by the broker, recorded as"),
        "{}",
        stderr(&ok)
    );
    let denied = run(&mut svc.ask(
        &cap,
        &ta,
        &["/bin/cat", s(&other.path().join("secret.txt"))],
    ));
    assert_eq!(
        denied.status.code(),
        Some(1),
        "cat's own status: {}",
        stderr(&denied)
    );
    assert!(
        stderr(&denied).contains("Permission denied"),
        "{}",
        stderr(&denied)
    );
    assert!(!stdout(&denied).contains("secret"));

    drop(svc);
    let recs = cp.stop();
    let allows: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            r["decision"] == "allow"
                && r["context"]["capability"]["id"].is_string()
                && r["action"] == "files.read"
        })
        .collect();
    let execs: Vec<&Value> = recs
        .iter()
        .filter(|r| r["action"] == capability::EXECUTION_ACTION)
        .collect();
    assert_eq!(
        (allows.len(), execs.len()),
        (3, 2),
        "issuance + 2 uses, 2 executions"
    );
    for (e, code) in execs.iter().zip([0, 1]) {
        assert_eq!(e["decision"], "allow", "linked and attested: {e}");
        let report = &e["context"]["report"];
        assert_eq!(report["outcome"]["exit_code"], code, "{e}");
        assert_eq!(report["grants"]["sandbox"], "nono");
        assert_eq!(report["broker"], "broker-1");
        assert_eq!(report["landlock_abi"], 6, "nono enforces up to ABI 6 here");
        assert_eq!(e["context"]["attestation"]["broker"], "broker-1");
        assert!(allows
            .iter()
            .any(|a| a["current_hash"] == e["context"]["decision"]));
    }
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("executions: 2 attested by a broker"), "{out}");
}

/// A revocation stops a running `sleep 30` within a second (the whole PID namespace); the
/// chain holds the revocation and the broker's execution record saying it was stopped.
#[test]
fn a_revocation_stops_a_running_command_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let svc = cp.broker_service(tmp.path(), "broker-1", &[], &[]);
    let (id, cap) = cp.issue(60, json!({"exec": ["/usr/bin/sleep"]}));
    let mut child = svc
        .ask(&cap, &ta, &["/bin/sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // running: the allow is on record and the status is watched
    running_under(&cp, &id, &mut child);
    let (st, v) = cp.call("DELETE", &format!("/capabilities/{id}"), &cp.admin, None);
    assert_eq!(st, 200, "{v}");
    let (status, took, err) = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(137), "{err}");
    assert!(took < Duration::from_secs(1), "stopped after {took:?}");
    assert!(err.contains("revoked"), "{err}");

    drop(svc);
    let recs = cp.stop();
    assert_eq!(
        recs.iter()
            .filter(|r| r["action"] == "zt.capability.revoke")
            .count(),
        1
    );
    let exec = recs
        .iter()
        .find(|r| r["action"] == capability::EXECUTION_ACTION)
        .expect("the execution record");
    assert_eq!(exec["decision"], "allow", "{exec}");
    let outcome = &exec["context"]["report"]["outcome"];
    assert_eq!(outcome["stopped"]["reason"], "revoked", "{exec}");
    assert_eq!(outcome["signal"], 9, "{exec}");
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
}

/// `broker run`, the local convenience: confined the same way, but its report is filed with
/// the agent's own token and kept as the agent's claim (a deny), never an execution; its
/// sealed answer verifies all the same.
#[test]
fn broker_run_reports_are_recorded_as_the_agents_claim() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("granted.txt"), "granted\n").unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(
        60,
        json!({"read": [s(data.path())], "exec": ["/usr/bin/cat"]}),
    );
    let o = run_broker(
        &cp,
        &cap,
        &ta,
        &["/bin/cat", s(&data.path().join("granted.txt"))],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "granted\n");
    assert!(
        stderr(&o).contains("(HTTP 403), as the agent's claim"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("does not verify"), "{}", stderr(&o));
    let recs = cp.stop();
    let exec = recs
        .iter()
        .find(|r| r["action"] == capability::EXECUTION_ACTION)
        .unwrap();
    assert_eq!(exec["decision"], "deny", "{exec}");
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 report not accepted"), "{out}");
}

/// An expired capability, a widened attenuation, another agent's token and a forged token are
/// refused (recorded denies) and the command never starts: exit 126, no side effect.
#[test]
fn refused_capabilities_never_start_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (cp, ta, tb) = setup(tmp.path());
    let grants = json!({"write": [s(work.path())], "exec": ["/usr/bin/dash"]});
    let (_, short) = cp.issue(1, grants.clone());
    let (_, good) = cp.issue(60, grants.clone());
    let widened = capability::attenuate_unchecked(
        &good,
        &Grants {
            read: vec!["/".into()],
            exec: vec!["/".into()],
            ..Grants::default()
        },
        Timestamp::from_unix_nanos(Timestamp::now().unix_nanos() + 30_000_000_000),
    )
    .unwrap();
    let forged = {
        let ring =
            zt_core::keyring::Keyring::from_json(&std::fs::read(cp.keyring()).unwrap()).unwrap();
        let kid = ring.entries()[0].key_id.clone();
        let other = zt_core::crypto::SigningKey::generate();
        let now = Timestamp::now();
        capability::issue(
            &capability::Issue {
                id: "cap-forged".into(),
                actor: "agent-a".into(),
                action: "files.read".into(),
                resource: "data/x".into(),
                grants: Grants::from_value(
                    &zt_core::json::parse(grants.to_string().as_bytes()).unwrap(),
                )
                .unwrap(),
                issued_at: now,
                not_after: Timestamp::from_unix_nanos(now.unix_nanos() + 60_000_000_000),
                issuer_key_id: kid,
            },
            |d| Ok::<_, ()>(other.sign_digest(d)),
        )
        .unwrap()
    };
    std::thread::sleep(Duration::from_millis(1100));
    let marker = work.path().join("ran");
    let script = format!("echo ran > {}", s(&marker));
    for (cap, token, says) in [
        (short.as_str(), &ta, "expired"),
        (widened.as_str(), &ta, "widens"),
        (good.as_str(), &tb, "actor mismatch"),
        (forged.as_str(), &ta, "signature does not verify"),
    ] {
        let o = run_broker(&cp, cap, token, &["/bin/sh", "-c", &script]);
        assert_eq!(o.status.code(), Some(126), "{says}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{says}: {}", stderr(&o));
        assert!(!marker.exists(), "{says}: the command ran");
    }
    // the positive control: the good capability does run it
    let o = run_broker(&cp, &good, &ta, &["/bin/sh", "-c", &script]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(marker.exists());
    let recs = cp.stop();
    let refused = recs
        .iter()
        .filter(|r| {
            r["decision"] == "deny"
                && r["context"]["capability"].is_object()
                && r["action"] == "files.read"
        })
        .count();
    assert_eq!(refused, 4, "each refusal is on record");
}

/// The control plane dying mid-run stops the command (fail closed): exit 137, lost contact.
#[test]
fn a_dead_control_plane_stops_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut cp, ta, _) = setup(tmp.path());
    let (id, cap) = cp.issue(60, json!({"exec": ["/usr/bin/sleep"]}));
    let mut child = broker(&cp, &cap, &ta, &["/bin/sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    running_under(&cp, &id, &mut child);
    cp.server.child.kill().unwrap();
    let _ = cp.server.child.wait();
    let (status, took, err) = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(137), "{err}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        err.contains("lost contact") || err.contains("control plane"),
        "{err}"
    );
}

/// Waits up to `within` for `child` to exit: its status, how long that took, its stderr.
pub(crate) fn wait_exit(child: &mut Child, within: Duration) -> (ExitStatus, Duration, String) {
    let since = Instant::now();
    let mut status = None;
    wait_until("the command to stop", within, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let took = since.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.unwrap(), took, err)
}

/// A command that puts a process beyond its process group and session (`setsid`) does not
/// keep it past a revocation: the command is init of its own PID namespace, and its end ends
/// every process in it.
#[test]
fn a_process_that_leaves_the_group_is_stopped_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (id, cap) = cp.issue(
        60,
        json!({"exec": ["/usr/bin/dash", "/usr/bin/setsid", "/usr/bin/sleep"]}),
    );
    let script = "/usr/bin/setsid /usr/bin/sleep 30.25 & exec /usr/bin/sleep 30";
    let mut child = broker(&cp, &cap, &ta, &["/bin/sh", "-c", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let escaped = wait_running(&["/usr/bin/sleep", "30.25"]);
    running_under(&cp, &id, &mut child);
    assert!(alive(escaped), "the escaped sleep runs");
    let (st, v) = cp.call("DELETE", &format!("/capabilities/{id}"), &cp.admin, None);
    assert_eq!(st, 200, "{v}");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    let gone = Instant::now() + Duration::from_secs(2);
    while alive(escaped) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    let still = alive(escaped);
    if still {
        let _ = Command::new("kill")
            .args(["-9", &escaped.to_string()])
            .status();
    }
    assert!(
        !still,
        "pid {escaped} left the process group and outlived the revocation"
    );
}

/// A client that connects and sends nothing holds one run's place only until it leaves (or
/// for five seconds); past `--max-runs` a request is told the broker is busy at once, and the
/// command does not start.
#[test]
fn a_broker_service_holds_no_more_requests_than_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let svc = cp.broker_service(tmp.path(), "broker-1", &["--max-runs", "1"], &[]);
    let (_, cap) = cp.issue(60, json!({"exec": ["/usr/bin/true"]}));
    let idle = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let o = run(&mut svc.ask(&cap, &ta, &["/usr/bin/true"]));
    assert_refused(&o, 126, &["running 1 commands already"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    wait_until(
        "a run once the idle client left",
        Duration::from_secs(10),
        || {
            run(&mut svc.ask(&cap, &ta, &["/usr/bin/true"]))
                .status
                .code()
                == Some(0)
        },
    );
}

/// The command runs as the broker's user: a grant over the broker's report key would let it
/// read the key and sign as the broker. Such a run is refused; and a broker whose key others
/// can read does not start.
#[test]
fn no_command_reaches_the_brokers_own_key() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let (cp, ta, _) = setup(&base);
    let svc = cp.broker_service(&base, "broker-1", &[], &[]);
    let keys = base.join("broker-1-keys");
    let (_, cap) = cp.issue(60, json!({"read": [s(&keys)], "exec": ["/usr/bin/cat"]}));
    let o = run(&mut svc.ask(&cap, &ta, &["/usr/bin/cat", s(&keys.join("private.pem"))]));
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(!stdout(&o).contains("PRIVATE KEY"));
    assert!(stderr(&o).contains("the broker's own"), "{}", stderr(&o));
    drop(svc);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        keys.join("private.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = run(zt_audit().args([
        "broker",
        "serve",
        "--control-plane",
        &cp.base,
        "--keyring",
        s(&cp.keyring()),
        "--name",
        "broker-1",
        "--report-key",
        s(&keys.join("private.pem")),
        "--socket",
        s(&base.join("other.sock")),
    ]));
    assert_refused(&o, 2, &["readable by others"]);
}
