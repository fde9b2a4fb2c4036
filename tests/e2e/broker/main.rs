//! The broker on the real kernel: Landlock sandboxes applied by the binary's hidden
//! `broker sandbox-exec` mode, and the process-group supervisor. No control plane is needed
//! for these; each negative check has its positive control in the same setup, so a sandbox
//! that denies everything (or nothing) fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod attacks;
mod e2e;
mod limits;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use zt_broker::supervise::{StopReason, Supervised};
pub use zt_testkit::{s, stderr, stdout, Bin};

/// The `zt-audit` under test.
pub fn bin() -> Bin {
    Bin::under_test(env!("CARGO_BIN_EXE_zt-audit"))
}

/// A command running the `zt-audit` under test.
pub fn zt_audit() -> Command {
    Command::new(bin().path())
}

fn sandboxed(grants: &str, argv: &[&str]) -> Output {
    zt_audit()
        .args(["broker", "sandbox-exec", "--grants-json", grants, "--"])
        .args(argv)
        .output()
        .unwrap()
}

/// Asserts `o` exited with `code` and its stderr says each of `says`.
pub fn assert_refused(o: &Output, code: i32, says: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", stderr(o));
    for want in says {
        assert!(stderr(o).contains(want), "no {want:?} in: {}", stderr(o));
    }
}

/// Asserts the kernel refused: a failure, `Permission denied` on stderr.
fn assert_denied(o: &Output) {
    assert!(!o.status.success());
    assert!(stderr(o).contains("Permission denied"), "{}", stderr(o));
}

/// Two unrelated folders, each with a file.
fn two_folders() -> (tempfile::TempDir, tempfile::TempDir) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(a.path().join("granted.txt"), "granted\n").unwrap();
    std::fs::write(b.path().join("other.txt"), "other\n").unwrap();
    (a, b)
}

#[test]
fn reading_outside_the_read_grants_is_refused_by_the_kernel() {
    let (a, b) = two_folders();
    let grants = format!(r#"{{"read":["{}"],"exec":["/usr/bin/cat"]}}"#, s(a.path()));
    let ok = sandboxed(&grants, &["/bin/cat", s(&a.path().join("granted.txt"))]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "granted\n");
    let denied = sandboxed(&grants, &["/bin/cat", s(&b.path().join("other.txt"))]);
    assert_denied(&denied);
    assert_eq!(stdout(&denied), "");
}

#[test]
fn writing_outside_the_write_grants_is_refused_by_the_kernel() {
    let (a, b) = two_folders();
    let grants = format!(
        r#"{{"read":["{0}"],"write":["{0}"],"exec":["/usr/bin/dash"]}}"#,
        s(a.path())
    );
    let inside = a.path().join("new.txt");
    let ok = sandboxed(
        &grants,
        &["/bin/sh", "-c", &format!("echo x > {}", s(&inside))],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "x\n");
    let outside = b.path().join("new.txt");
    let denied = sandboxed(
        &grants,
        &["/bin/sh", "-c", &format!("echo x > {}", s(&outside))],
    );
    assert_denied(&denied);
    assert!(!outside.exists());
}

#[test]
fn executing_outside_the_exec_grants_is_refused_even_when_readable() {
    let (a, _b) = two_folders();
    let file = a.path().join("granted.txt");
    let script = format!("/bin/cat {}", s(&file));
    // /usr/lib and the read grant are readable; /bin/cat is not exec-granted
    let only_sh = format!(
        r#"{{"read":["{}","/usr/bin"],"exec":["/usr/bin/dash"]}}"#,
        s(a.path())
    );
    assert_denied(&sandboxed(&only_sh, &["/bin/sh", "-c", &script]));
    // ... and readable all the same (the first layer's read includes execute; the second
    // layer is what takes it away)
    let read_it = sandboxed(&only_sh, &["/bin/sh", "-c", "read l < /bin/cat; echo read"]);
    assert_eq!(stdout(&read_it), "read\n", "{}", stderr(&read_it));
    let both = format!(
        r#"{{"read":["{}"],"exec":["/usr/bin/dash","/usr/bin/cat"]}}"#,
        s(a.path())
    );
    let ok = sandboxed(&both, &["/bin/sh", "-c", &script]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "granted\n");
}

#[test]
fn tcp_is_refused_unless_net_is_granted() {
    let bash = Path::new("/usr/bin/bash");
    assert!(bash.exists(), "this test connects with bash's /dev/tcp");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("echo hello > /dev/tcp/127.0.0.1/{port} && echo sent");
    let accepted = || {
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            if listener.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    let off = sandboxed(
        r#"{"exec":["/usr/bin/bash"]}"#,
        &["/bin/bash", "-c", &script],
    );
    assert_denied(&off);
    assert!(!accepted());
    let on = sandboxed(
        r#"{"exec":["/usr/bin/bash"],"net":true}"#,
        &["/bin/bash", "-c", &script],
    );
    assert_eq!(stdout(&on), "sent\n", "{}", stderr(&on));
    assert!(accepted());
}

#[test]
fn the_command_is_refused_before_it_starts_when_grants_do_not_fit() {
    let (a, _b) = two_folders();
    let marker = a.path().join("started");
    let touch = format!("echo > {}", s(&marker));
    // not exec-granted
    let o = sandboxed(
        &format!(r#"{{"write":["{}"],"exec":["/usr/bin/cat"]}}"#, s(a.path())),
        &["/bin/sh", "-c", &touch],
    );
    assert_refused(&o, 126, &["not covered by an `exec` grant"]);
    // a granted path that does not exist is named
    let o = sandboxed(
        r#"{"read":["/nonexistent/zt-broker-test"],"exec":["/usr/bin/dash"]}"#,
        &["/bin/sh", "-c", &touch],
    );
    assert_refused(&o, 126, &["/nonexistent/zt-broker-test does not exist"]);
    // malformed grants
    let o = sandboxed(r#"{"read":["relative"]}"#, &["/bin/sh", "-c", &touch]);
    assert_eq!(o.status.code(), Some(126));
    // a read grant of `/` cannot be made noexec where the command looks (the root is where
    // lookups start, not a mount above it): refused rather than left executable
    let o = sandboxed(
        &format!(
            r#"{{"read":["/"],"write":["{}"],"exec":["/usr/bin/dash"]}}"#,
            s(a.path())
        ),
        &["/bin/sh", "-c", &touch],
    );
    assert_refused(&o, 126, &["could not be mounted noexec"]);
    assert!(!marker.exists());
    // positive control: the same command with fitting grants runs
    let o = sandboxed(
        &format!(
            r#"{{"write":["{}"],"exec":["/usr/bin/dash"]}}"#,
            s(a.path())
        ),
        &["/bin/sh", "-c", &touch],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(marker.exists());
}

fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

fn wait_for_file(p: &PathBuf) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with('\n') {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never written", p.display());
}

#[test]
fn a_stop_kills_the_whole_process_group_within_a_second() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("pid");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &format!("sleep 30 & echo $! > {}; wait", s(&pidfile))]);
    let sup = Supervised::spawn(cmd).unwrap();
    let group = sup.group();
    let grandchild: i32 = wait_for_file(&pidfile).trim().parse().unwrap();
    // positive control: it is running, in the command's group
    assert!(matches!(proc_state(grandchild), Some(c) if c != 'Z'));
    let stopper = sup.stopper();
    let t = std::thread::spawn(move || sup.wait().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    stopper.stop(StopReason::Revoked {
        detail: "test".into(),
    });
    let out = t.join().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(out.signal, Some(9));
    assert_eq!(out.exit_code, None);
    assert_eq!(
        out.stopped.as_ref().map(StopReason::as_str),
        Some("revoked")
    );
    assert_eq!(
        zt_broker::supervise::Outcome::exit_status(&out),
        zt_broker::supervise::EXIT_STOPPED
    );
    // the grandchild is dead too (gone, or a zombie waiting for whoever adopted it)
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until && matches!(proc_state(grandchild), Some(c) if c != 'Z') {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        matches!(proc_state(grandchild), None | Some('Z')),
        "grandchild {grandchild} of group {group}: {:?}",
        proc_state(grandchild)
    );
}

#[test]
fn a_command_that_ends_on_its_own_is_not_stopped() {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "kill -TERM $$"]);
    let out = Supervised::spawn(cmd).unwrap().wait().unwrap();
    assert_eq!((out.signal, out.stopped.clone()), (Some(15), None));
    assert_eq!(out.exit_status(), 143);
}

#[test]
fn broker_run_with_no_control_plane_never_starts_the_command() {
    let d = tempfile::tempdir().unwrap();
    let keys = d.path().join("keys");
    let key = bin().keygen(&keys, "cp-test");
    let now = zt_core::time::Timestamp::now();
    let token = zt_core::capability::issue(
        &zt_core::capability::Issue {
            id: "cap-t".into(),
            actor: "agent-a".into(),
            action: "run".into(),
            resource: String::new(),
            grants: zt_core::capability::Grants {
                write: vec![s(d.path()).to_owned()],
                exec: vec!["/usr/bin/dash".into()],
                ..Default::default()
            },
            issued_at: now,
            not_after: zt_core::time::Timestamp::from_unix_nanos(now.unix_nanos() + 60_000_000_000),
            issuer_key_id: "cp-test".into(),
        },
        |dg| Ok::<_, ()>(key.sign_digest(dg)),
    )
    .unwrap();
    // a port nobody listens on
    let port = zt_testkit::http::free_port();
    let marker = d.path().join("started");
    let o = zt_audit()
        .args(["broker", "run", "--control-plane"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--keyring")
        .arg(keys.join("keyring.json"))
        .args(["--capability", &token, "--", "/bin/sh", "-c"])
        .arg(format!("echo > {}", s(&marker)))
        .output()
        .unwrap();
    assert_refused(
        &o,
        126,
        &[
            "refused, the command was not started",
            "cannot reach the control plane",
        ],
    );
    assert!(!stderr(&o).contains(&token), "the token was printed");
    assert!(!marker.exists());
}
