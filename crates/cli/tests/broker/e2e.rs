//! `zt-audit broker run` against a real `zt-audit control-plane` process: the kernel refuses
//! what the grants leave out, a revocation stops a running command and the chain records it,
//! refused capabilities never start the command, a dead control plane stops it, and the store
//! verifies with every execution linked to its allow.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_core::capability::{self, Grants};
use zt_core::time::Timestamp;

use crate::{s, stderr, stdout, BIN};

/// A running `zt-audit control-plane` (admin token in its directory); killed on drop.
struct Cp {
    child: Child,
    base: String,
    dir: PathBuf,
    admin: String,
}

impl Cp {
    fn start(dir: &Path) -> Cp {
        let (child, base) = crate::support::spawn_server(&[
            "control-plane".as_ref(),
            "--dir".as_ref(),
            dir.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ]);
        let admin = std::fs::read_to_string(dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Cp {
            child,
            base,
            dir: dir.to_owned(),
            admin,
        }
    }

    fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        zt_tls::install_default_provider();
        let c = reqwest::blocking::Client::new();
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => c.post(url),
            "DELETE" => c.delete(url),
            _ => c.get(url),
        }
        .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn register(&self, actor: &str) -> String {
        let (st, v) = self.call(
            "POST",
            "/agents",
            &self.admin,
            Some(json!({"actor": actor})),
        );
        assert_eq!(st, 201, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// A capability for agent-a's `files.read` on `data/x`: (id, token).
    fn issue(&self, ttl_s: u64, grants: Value) -> (String, String) {
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

    fn keyring(&self) -> PathBuf {
        self.dir.join("keyring.json")
    }

    /// SIGTERM (drains), then the records of its store.
    fn stop(mut self) -> Vec<Value> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        records(&self.dir.join("decisions.db"))
    }
}

impl Drop for Cp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn records(db: &Path) -> Vec<Value> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn.prepare("SELECT raw FROM records ORDER BY id").unwrap();
    st.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|r| serde_json::from_slice(&r.unwrap()).unwrap())
        .collect()
}

/// A control plane with agents a and b, and a policy that lets agent-a read data/x.
fn setup(dir: &Path) -> (Cp, String, String) {
    let cp = Cp::start(dir);
    let ta = cp.register("agent-a");
    let tb = cp.register("agent-b");
    let (st, v) = cp.call(
        "POST",
        "/policies",
        &cp.admin,
        Some(json!({"action": "files.read", "resource": "data/x", "actor": "agent-a"})),
    );
    assert_eq!(st, 201, "{v}");
    (cp, ta, tb)
}

fn broker(cp: &Cp, cap: &str, token: &str, argv: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "broker",
        "run",
        "--control-plane",
        &cp.base,
        "--keyring",
        s(&cp.keyring()),
        "--capability",
        cap,
        "--token",
        token,
        "--",
    ])
    .args(argv);
    c
}

/// Waits until the broker's allow under capability `id` is on record, then a moment more,
/// and checks the command is still running (the status is being watched).
fn running_under(cp: &Cp, id: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !records(&cp.dir.join("decisions.db")).iter().any(|r| {
        r["context"]["capability"]["id"] == id
            && r["context"]["capability"]["attenuations"].is_number()
    }) {
        assert!(Instant::now() < deadline, "no decision");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the command is running"
    );
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn zt_verify(cp_dir: &Path) -> (Option<i32>, String) {
    let o = Command::new(BIN)
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

/// An allowed command runs inside its grants; the kernel refuses a read outside them; both
/// executions are records linked to their allows, and the store verifies.
#[test]
fn a_broker_runs_inside_the_grants_and_every_step_is_a_verified_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(data.path().join("granted.txt"), "granted\n").unwrap();
    std::fs::write(other.path().join("secret.txt"), "secret\n").unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(60, json!({"read": [s(data.path())], "exec": ["/bin/cat"]}));

    let ok = run(&mut broker(
        &cp,
        &cap,
        &ta,
        &["/bin/cat", s(&data.path().join("granted.txt"))],
    ));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "granted\n");
    let denied = run(&mut broker(
        &cp,
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
        assert_eq!(e["decision"], "allow", "linked: {e}");
        assert_eq!(e["context"]["exit_code"], code, "{e}");
        assert_eq!(e["context"]["sandbox"], "nono");
        assert!(allows
            .iter()
            .any(|a| a["current_hash"] == e["context"]["decision"]));
    }
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
}

/// A revocation stops a running `sleep 30` within a second (the whole process group); the
/// chain holds the revocation and the execution record saying it was stopped.
#[test]
fn a_revocation_stops_a_running_command_within_a_second() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (id, cap) = cp.issue(60, json!({"exec": ["/bin/sleep"]}));
    let mut child = broker(&cp, &cap, &ta, &["/bin/sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // running: the allow is on record and the status is watched
    running_under(&cp, &id, &mut child);
    let (st, v) = cp.call("DELETE", &format!("/capabilities/{id}"), &cp.admin, None);
    assert_eq!(st, 200, "{v}");
    let revoked = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(revoked.elapsed() < Duration::from_secs(5), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = revoked.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(137), "{err}");
    assert!(took < Duration::from_secs(1), "stopped after {took:?}");
    assert!(err.contains("revoked"), "{err}");

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
    assert_eq!(exec["context"]["stopped"]["reason"], "revoked", "{exec}");
    assert_eq!(exec["context"]["signal"], 9, "{exec}");
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
}

/// An expired capability, a widened attenuation, another agent's token and a forged token are
/// refused (recorded denies) and the command never starts: exit 126, no side effect.
#[test]
fn refused_capabilities_never_start_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (cp, ta, tb) = setup(tmp.path());
    let grants = json!({"write": [s(work.path())], "exec": ["/bin/sh"]});
    let (_, short) = cp.issue(1, grants.clone());
    let (_, good) = cp.issue(60, grants.clone());
    let widened = capability::attenuate_unchecked(
        &good,
        &Grants {
            write: vec!["/".into()],
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
        let o = run(&mut broker(&cp, cap, token, &["/bin/sh", "-c", &script]));
        assert_eq!(o.status.code(), Some(126), "{says}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{says}: {}", stderr(&o));
        assert!(!marker.exists(), "{says}: the command ran");
    }
    // the positive control: the good capability does run it
    let o = run(&mut broker(&cp, &good, &ta, &["/bin/sh", "-c", &script]));
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
    let (id, cap) = cp.issue(60, json!({"exec": ["/bin/sleep"]}));
    let mut child = broker(&cp, &cap, &ta, &["/bin/sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    running_under(&cp, &id, &mut child);
    cp.child.kill().unwrap();
    let _ = cp.child.wait();
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(137), "{err}");
    assert!(
        killed.elapsed() < Duration::from_secs(3),
        "{:?}",
        killed.elapsed()
    );
    assert!(
        err.contains("lost contact") || err.contains("control plane"),
        "{err}"
    );
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for this purpose: it runs nothing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| !r.trim().starts_with('Z')))
        .unwrap_or(false)
}

/// A command that puts a process beyond its process group (`setsid`) does not keep it past a
/// revocation, nor past its own end: the broker ends every descendant it was given.
#[test]
fn a_process_that_leaves_the_group_is_stopped_too() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (id, cap) = cp.issue(
        60,
        json!({"write": [s(work.path())], "exec": ["/bin/sh", "/usr/bin/setsid", "/bin/sleep"]}),
    );
    let pidfile = work.path().join("escaped.pid");
    let script = format!(
        "/usr/bin/setsid /bin/sleep 30 & echo $! > {}; exec /bin/sleep 30",
        s(&pidfile)
    );
    let mut child = broker(&cp, &cap, &ta, &["/bin/sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let escaped = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(200));
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
