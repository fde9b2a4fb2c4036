//! The nine findings of issue 20, each as the attack that succeeded against `fa61ed4`, run on
//! the real kernel against a real `zt-audit control-plane` process, and the refusal that now
//! stands. Each test also runs its positive control, so a sandbox that refused everything
//! would fail here too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_core::capability::{self, Grants};

use crate::e2e::{
    alive, broker, broker_with, pids_running, run, run_broker, running_under, setup, setup_with,
    wait_running, zt_verify,
};
use crate::{assert_refused, s, stderr, stdout, zt_audit};

/// The loader every dynamically linked program on this machine names.
const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

fn secret_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let secret = d.path().canonicalize().unwrap().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("s"), "the secret\n").unwrap();
    (d, secret)
}

fn executions(recs: &[Value]) -> Vec<&Value> {
    recs.iter()
        .filter(|r| r["action"] == capability::EXECUTION_ACTION)
        .collect()
}

/// Finding 1: A grant that looks narrower than `/proc/self` but resolves to `/`: refused at issuance,
/// at offline attenuation, and, for a token forged past both, by the broker before anything
/// runs (126, the path named, the refusal on record).
#[test]
fn attack_1_attenuation_through_a_magic_link_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_keep, secret) = secret_dir();
    let (cp, ta, _) = setup(tmp.path());
    let (st, v) = cp.admin_post(
        "/capabilities",
        json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": 60,
                    "grants": {"read": ["/proc/self"], "exec": ["/usr/bin/cat"]}}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/proc/self passes through a link"),
        "{v}"
    );
    // `/proc` itself is a folder, not a link: issued
    let (_, token) = cp.issue(60, json!({"read": ["/proc"], "exec": ["/usr/bin/cat"]}));
    let o = zt_audit()
        .args(["capability", "attenuate", "-", "--read", "/proc/self/root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(token.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_refused(
        &o,
        2,
        &["/proc/self/root passes through a link: /proc/self"],
    );
    // the attacker's own attenuation, textually within `/proc`
    let narrow = Grants {
        read: vec!["/proc/self/root".into()],
        exec: vec!["/usr/bin/cat".into()],
        ..Grants::default()
    };
    let forged = capability::attenuate(&token, Some(&narrow), None).unwrap();
    let target = format!("/proc/self/root{}", secret.join("s").display());
    let o = run_broker(&cp, &forged, &ta, &["/usr/bin/cat", &target]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(!stdout(&o).contains("the secret"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("granted `read` path /proc/self/root passes through a link"),
        "{}",
        stderr(&o)
    );
    // positive control: the same token, a path that is its own
    let (_, plain) = cp.issue(60, json!({"read": [s(&secret)], "exec": ["/usr/bin/cat"]}));
    let o = run_broker(&cp, &plain, &ta, &["/usr/bin/cat", s(&secret.join("s"))]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "the secret\n")
    );
    let recs = cp.stop();
    let refused = executions(&recs)
        .into_iter()
        .find(|e| e["context"]["report"]["outcome"]["ran"] == false)
        .expect("the refusal is on record");
    assert!(
        refused["context"]["report"]["outcome"]["refused"]
            .as_str()
            .unwrap()
            .contains("/proc/self/root"),
        "{refused}"
    );
}

/// Finding 2: A symbolic link planted inside a write grant where a read grant was: the sandbox cannot
/// replace the granted folder (it is a mount point there), and when the agent does it from
/// outside, the next run is refused naming the link, before anything runs.
#[test]
fn attack_2_a_symlink_planted_in_a_write_grant_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_keep, secret) = secret_dir();
    let work = secret.parent().unwrap().join("work");
    std::fs::create_dir_all(work.join("in")).unwrap();
    std::fs::write(work.join("in/ok"), "granted\n").unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(
        60,
        json!({"read": [s(&work.join("in"))], "write": [s(&work)],
               "exec": ["/usr/bin/dash", "/usr/bin/cat", "/usr/bin/rm", "/usr/bin/ln", "/usr/bin/mv"]}),
    );
    // inside the sandbox: the read grant is a mount point there, it cannot be swapped
    let plant = format!(
        "mv {in_} {w}/old; ln -s {sec} {w}/lnk && mv -T {w}/lnk {in_}",
        in_ = s(&work.join("in")),
        w = s(&work),
        sec = s(&secret)
    );
    let o = run_broker(&cp, &cap, &ta, &["/bin/sh", "-c", &plant]);
    assert!(
        std::fs::symlink_metadata(work.join("in"))
            .unwrap()
            .file_type()
            .is_dir(),
        "the grant was replaced from inside the sandbox: {}",
        stderr(&o)
    );
    let o = run_broker(&cp, &cap, &ta, &["/usr/bin/cat", s(&work.join("in/ok"))]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "granted\n"),
        "{}",
        stderr(&o)
    );
    // from outside (the agent's own process): the next run is refused, nothing read
    std::fs::rename(work.join("in"), work.join("old")).unwrap();
    std::os::unix::fs::symlink(&secret, work.join("in")).unwrap();
    let o = run_broker(&cp, &cap, &ta, &["/usr/bin/cat", s(&work.join("in/s"))]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(!stdout(&o).contains("the secret"));
    assert!(
        stderr(&o).contains(&format!(
            "granted `read` path {} passes through a link: {} -> {}",
            work.join("in").display(),
            work.join("in").display(),
            secret.display()
        )),
        "{}",
        stderr(&o)
    );
    // the link as a grant of its own: the control plane refuses to issue it
    let (st, v) = cp.admin_post(
        "/capabilities",
        json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": 60,
                    "grants": {"write": [s(&work.join("in"))], "exec": ["/usr/bin/dash"]}}),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("passes through a link"),
        "{v}"
    );
}

/// Writes `path`, a copy of `/usr/bin/true` whose ELF interpreter (`PT_INTERP`) is `interp`
/// (same length as the loader's name, patched in place).
fn with_interp(path: &Path, interp: &str) {
    let mut elf = std::fs::read("/usr/bin/true").unwrap();
    let at = elf
        .windows(LOADER.len())
        .position(|w| w == LOADER.as_bytes())
        .expect("PT_INTERP of /usr/bin/true");
    assert_eq!(interp.len(), LOADER.len(), "{interp}");
    elf[at..at + LOADER.len()].copy_from_slice(interp.as_bytes());
    std::fs::write(path, elf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Finding 3: The dynamic loader: it can run no program the agent wrote (a write grant) or was given to
/// read (a read grant), by `ld.so FILE` or by a program's own `PT_INTERP`; it runs what the
/// exec grants name. Measured, not assumed: every ELF copied into the read and write grants is
/// tried.
#[test]
fn attack_3_the_loader_runs_only_what_exec_grants_name() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tempfile::Builder::new()
        .prefix("l")
        .tempdir_in("/tmp")
        .unwrap();
    let base = d.path().canonicalize().unwrap();
    let (drop, ro, bin) = (base.join("drop"), base.join("ro"), base.join("bin"));
    for p in [&drop, &ro, &bin] {
        std::fs::create_dir(p).unwrap();
    }
    let elves = [
        "/usr/bin/true",
        "/usr/bin/echo",
        "/usr/bin/id",
        "/usr/bin/env",
    ];
    for e in elves {
        let name = Path::new(e).file_name().unwrap();
        std::fs::copy(e, drop.join(name)).unwrap();
        std::fs::copy(e, ro.join(name)).unwrap();
    }
    // a program (exec-granted) whose own PT_INTERP is a loader the agent wrote
    let evil = format!(
        "{}/{}",
        s(&drop),
        "x".repeat(LOADER.len() - s(&drop).len() - 1)
    );
    std::fs::copy(LOADER, &evil).unwrap();
    with_interp(&bin.join("tool"), &evil);
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(
        60,
        json!({"read": [s(&ro), s(&drop)], "write": [s(&drop)],
               "exec": ["/usr/bin/dash", "/usr/bin/true", s(&bin)]}),
    );
    let mut script = String::new();
    for dir in [&drop, &ro] {
        for e in elves {
            let f = dir.join(Path::new(e).file_name().unwrap());
            script.push_str(&format!(
                "{LOADER} {f} >/dev/null 2>&1 && echo RAN {f}; {f} >/dev/null 2>&1 && echo RAN {f}; ",
                f = s(&f)
            ));
        }
    }
    script.push_str(&format!(
        "{LOADER} /usr/bin/true && echo CONTROL loader; /usr/bin/true && echo CONTROL exec"
    ));
    let o = run_broker(&cp, &cap, &ta, &["/bin/sh", "-c", &script]);
    let out = stdout(&o);
    assert!(
        !out.contains("RAN"),
        "ran what no exec grant names:\n{out}\n{}",
        stderr(&o)
    );
    assert!(
        out.contains("CONTROL loader") && out.contains("CONTROL exec"),
        "the loader runs an exec-granted program:\n{out}\n{}",
        stderr(&o)
    );
    // the command's own PT_INTERP names a loader the agent wrote: not trusted, so it never
    // starts (on fa61ed4 the broker made it executable)
    let o = run_broker(&cp, &cap, &ta, &[s(&bin.join("tool"))]);
    assert_eq!(o.status.code(), Some(126), "{}{}", stdout(&o), stderr(&o));
    // what the loader can start besides: ELF files under the system library folders (stated in
    // docs/capabilities.md); libc is one
    let (_, libs) = cp.issue(60, json!({"exec": ["/usr/bin/dash"]}));
    let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let o = run_broker(
        &cp,
        &libs,
        &ta,
        &["/bin/sh", "-c", &format!("{LOADER} {}", s(&libc))],
    );
    assert!(
        stdout(&o).contains("GNU C Library"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// Finding 4: Nothing of the broker's reaches the command: not its environment (the agent's token and
/// capability are in it), not its standard input, not its terminal session, not a descriptor,
/// not its working directory.
#[test]
fn attack_4_the_command_gets_nothing_of_the_brokers() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(
        60,
        json!({"read": ["/proc"], "exec": ["/usr/bin/dash", "/usr/bin/env", "/usr/bin/cat", "/usr/bin/ls", "/usr/bin/readlink", "/usr/bin/pwd"]}),
    );
    // the agent's secrets in the broker's environment, something typed at its standard input
    let as_agent = |argv: &[&str], extra: &[&str], input: &[u8]| {
        let mut c = cp.broker_run();
        c.args(extra)
            .arg("--")
            .args(argv)
            .env("ZT_AGENT_TOKEN", &ta)
            .env("ZT_CAPABILITY", &cap)
            .env("ZT_TEST_SECRET", "broker-only")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{argv:?}: {}", stderr(&o));
        stdout(&o)
    };
    let typed = b"typed at the broker\n";
    assert_eq!(
        as_agent(&["/usr/bin/env"], &[], typed),
        "",
        "an empty environment"
    );
    assert_eq!(
        as_agent(&["/usr/bin/cat"], &[], typed),
        "",
        "standard input is /dev/null"
    );
    assert_eq!(
        as_agent(&["/usr/bin/readlink", "/proc/self/fd/0"], &[], typed),
        "/dev/null\n"
    );
    let fds = as_agent(&["/usr/bin/ls", "/proc/self/fd"], &[], typed);
    assert_eq!(
        fds.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "descriptors beyond standard streams (3 is ls's own listing)"
    );
    assert_eq!(as_agent(&["/usr/bin/pwd"], &[], typed).trim(), "/");
    // /proc/self/stat: after the name, field 4 the session, field 5 the controlling terminal
    let stat = as_agent(&["/usr/bin/cat", "/proc/self/stat"], &[], typed);
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(fields[4], "0", "a controlling terminal: {stat}");
    let mine = std::fs::read_to_string("/proc/self/stat").unwrap();
    let mine: Vec<&str> = mine
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_ne!(fields[3], mine[3], "in the broker's session: {stat}");
    // positive control: what the caller lists, and its standard input when asked
    assert_eq!(
        as_agent(
            &["/bin/sh", "-c", "/usr/bin/env; /usr/bin/cat"],
            &["--env", "GREETING=hello", "--stdin"],
            b"asked for\n"
        ),
        "GREETING=hello\nPWD=/\nasked for\n"
    );
    // the loader's variables are never passed on
    let o = run(&mut broker_with(
        &cp,
        &cap,
        &ta,
        &["--env", "LD_PRELOAD=/tmp/x.so"],
        &["/usr/bin/env"],
    ));
    assert_refused(&o, 126, &["LD_PRELOAD"]);
}

/// Finding 5: The sandbox is the capability's, not the agent's choice: `--sandbox` is gone, the
/// sandbox kind is sealed in the grants (Cedar sees it, an attenuation cannot weaken it), and a
/// broker that cannot provide it refuses, on record.
#[test]
fn attack_5_the_agent_cannot_choose_no_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let (_keep, secret) = secret_dir();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(60, json!({"exec": ["/usr/bin/cat"]}));
    let o = run(&mut broker_with(
        &cp,
        &cap,
        &ta,
        &["--sandbox", "process"],
        &["/usr/bin/cat", s(&secret.join("s"))],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stdout(&o).contains("the secret"));
    let o = run_broker(&cp, &cap, &ta, &["/usr/bin/cat", s(&secret.join("s"))]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("the secret"));
    // an attenuation to `process` widens
    let weaker = Grants {
        exec: vec!["/usr/bin/cat".into()],
        sandbox: capability::SandboxKind::Process,
        ..Grants::default()
    };
    assert!(
        capability::attenuate(&cap, Some(&weaker), None).is_err_and(|e| e
            .to_string()
            .contains("sandbox `process` where `nono` was required"))
    );
    // Cedar sees the kind: an operator forbids `process` capabilities
    let (st, v) = cp.admin_post("/policies", json!({"cedar": "@id(\"nono-only\")\nforbid (principal, action, resource) when { context has grants && context.grants.sandbox == \"process\" };"}));
    assert_eq!(st, 201, "{v}");
    let (st, v) = cp.admin_post(
        "/capabilities",
        json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "ttl_s": 60,
                    "grants": {"exec": ["/usr/bin/cat"], "sandbox": "process"}}),
    );
    assert_eq!(st, 403, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("nono-only"), "{v}");
    // a broker that cannot provide nono (a kernel below Landlock ABI 3, shown on this one):
    // refuses, and the refusal is the broker's record
    let svc = cp.broker_service(
        tmp.path(),
        "old-kernel",
        &[],
        &[("ZT_BROKER_LANDLOCK_ABI_CAP", "2")],
    );
    let o = run(&mut svc.ask(&cap, &ta, &["/usr/bin/cat", s(&secret.join("s"))]));
    assert_refused(&o, 126, &["Landlock ABI 2"]);
    assert!(!stdout(&o).contains("the secret"));
    drop(svc);
    let recs = cp.stop();
    let refused = executions(&recs)
        .into_iter()
        .find(|e| e["context"]["report"]["broker"] == "old-kernel")
        .expect("the broker's refusal is on record");
    assert_eq!(refused["decision"], "allow", "attested: {refused}");
    assert_eq!(refused["context"]["report"]["outcome"]["ran"], false);
}

/// Finding 6: An agent cannot write its own execution record: a report filed with its token, invented
/// grants, sandbox, command and exit status, twice for one allow, is sealed as the agent's
/// claim (a deny), and `zt-audit verify` counts it as such, never as an execution; a broker's
/// attested record is told apart.
#[test]
fn attack_6_an_agent_cannot_write_its_own_execution_record() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(60, json!({"exec": ["/usr/bin/true"]}));
    let (st, v) = cp.call(
        "POST",
        "/actions",
        &ta,
        Some(json!({"actor": "agent-a", "action": "files.read", "resource": "data/x", "capability": cap})),
    );
    assert_eq!(st, 200, "{v}");
    let allow = v["audit"]["current_hash"].as_str().unwrap().to_owned();
    let id = v["audit"]["context"]["capability"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invented = json!({"report": {
        "v": "zt-exec/1", "decision": allow, "capability_id": id, "actor": "agent-a",
        "broker": "broker-1", "grants": {"read": ["/"], "exec": ["/"], "sandbox": "nono"},
        "command": ["/usr/bin/rm", "-rf", "/evidence"], "landlock_abi": 6, "unscoped": false,
        "outcome": {"ran": true, "exit_code": 0, "signal": null, "duration_ms": 5, "stopped": null}}});
    // the unsigned report shape an agent could file before brokers had keys: no execution
    let unsigned = json!({"decision": allow, "capability_id": id, "sandbox": "nono",
        "grants": {"read": ["/"], "exec": ["/"]}, "command": ["/usr/bin/rm", "-rf", "/evidence"],
        "exit_code": 0, "signal": null, "duration_ms": 5, "stopped": null});
    let (st, v) = cp.call("POST", "/executions", &ta, Some(unsigned));
    assert_eq!(st, 400, "{v}");
    for _ in 0..2 {
        let (st, v) = cp.call("POST", "/executions", &ta, Some(invented.clone()));
        assert_eq!(
            (st, v["audit"]["decision"].as_str()),
            (403, Some("deny")),
            "{v}"
        );
        assert!(
            v["audit"]["reason"]
                .as_str()
                .unwrap()
                .contains("claim, not evidence"),
            "{v}"
        );
    }
    // the genuine execution, through a registered broker
    let svc = cp.broker_service(tmp.path(), "broker-1", &[], &[]);
    let o = run(&mut svc.ask(&cap, &ta, &["/usr/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    drop(svc);
    let recs = cp.stop();
    let execs = executions(&recs);
    assert_eq!(execs.len(), 3);
    assert_eq!(execs.iter().filter(|e| e["decision"] == "allow").count(), 1);
    let (code, out) = zt_verify(tmp.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("executions: 1 attested by a broker"), "{out}");
    assert!(out.contains("2 reports not accepted"), "{out}");
}

/// Finding 7: Context members the control plane sets for capability use cannot be written by an agent:
/// a rule written for brokered use is not met by a request that carries them.
#[test]
fn attack_7_capability_context_cannot_be_written_by_agents() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (st, v) = cp.admin_post("/policies", json!({"cedar": "@id(\"brokered-use\")\npermit (principal, action == Action::\"tools.shell\", resource) when { context has issuance && context.issuance == false && context has grants };"}));
    assert_eq!(st, 201, "{v}");
    let (st, v) = cp.call(
        "POST",
        "/actions",
        &ta,
        Some(
            json!({"actor": "agent-a", "action": "tools.shell", "resource": "host",
                    "context": {"issuance": false, "grants": {"exec": ["/"]}}}),
        ),
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("`issuance` is the control plane's own"),
        "{v}"
    );
    let recs = cp.stop();
    assert!(
        !recs.iter().any(|r| r["action"] == "tools.shell"),
        "nothing was decided, let alone allowed"
    );
}

/// Finding 8: A genuine run's answer verifies: the broker prints the attested record's hash, never
/// "does not verify".
#[test]
fn attack_8_a_genuine_runs_record_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(60, json!({"exec": ["/usr/bin/true"]}));
    // the local convenience: its (claim's) sealed answer verifies too
    let o = run_broker(&cp, &cap, &ta, &["/usr/bin/true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("does not verify"), "{}", stderr(&o));
    assert!(stderr(&o).contains("is on record as"), "{}", stderr(&o));
    let svc = cp.broker_service(tmp.path(), "broker-1", &[], &[]);
    let o = run(&mut svc.ask(&cap, &ta, &["/usr/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("does not verify"), "{}", stderr(&o));
    let hash = stderr(&o)
        .split("recorded as ")
        .nth(1)
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    drop(svc);
    let recs = cp.stop();
    assert!(
        executions(&recs)
            .iter()
            .any(|e| e["current_hash"] == hash.as_str() && e["decision"] == "allow"),
        "{hash} is the attested record"
    );
}

/// Live processes whose command line starts with `prefix`.
fn pids_starting(prefix: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = prefix.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(&want))
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Finding 9a: a tree that forks as fast as it can does not outrun its end: the command is
/// init of its own PID namespace, so a revocation ends every process at once, within a second.
/// The tree: sixteen chains of a process that starts a session of its own (out of reach of a
/// process-group signal), forks its successor and exits, so that a kill loop over `/proc` keeps
/// finding processes newer than its last snapshot.
#[test]
fn attack_9a_a_fork_hopping_tree_cannot_outrun_a_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (id, cap) = cp.issue(
        60,
        json!({"exec": ["/usr/bin/dash", "/usr/bin/sleep", "/usr/bin/setsid"]}),
    );
    // each generation: `setsid -f` forks a child in a new session running the next one, and
    // leaves; bounded (each chain ends by itself after 5,000 generations)
    let hop = r#"export H='[ "$1" -gt 0 ] && exec /usr/bin/setsid -f /bin/sh -c "$H" hop $(($1 - 1))'
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do /bin/sh -c "$H" hop 5000 & done
/usr/bin/sleep 47.25 &
exec /usr/bin/sleep 30"#;
    let h = r#"[ "$1" -gt 0 ] && exec /usr/bin/setsid -f /bin/sh -c "$H" hop $(($1 - 1))"#;
    let mut child = broker(&cp, &cap, &ta, &["/bin/sh", "-c", hop])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_running(&["/usr/bin/sleep", "47.25"]);
    running_under(&cp, &id, &mut child);
    let (st, v) = cp.call("DELETE", &format!("/capabilities/{id}"), &cp.admin, None);
    assert_eq!(st, 200, "{v}");
    let revoked = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    let took = revoked.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let survivors = || {
        let mut left = pids_running(&["/usr/bin/sleep", "47.25"]);
        left.extend(pids_starting(&["/bin/sh", "-c", h]));
        left.extend(pids_starting(&[
            "/usr/bin/setsid",
            "-f",
            "/bin/sh",
            "-c",
            h,
        ]));
        left
    };
    let left = survivors();
    // Whatever outlived the stop is frozen first (a stopped process forks no more), then killed.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let now = survivors();
        if now.is_empty() || Instant::now() > until {
            break;
        }
        for p in &now {
            let _ = nix_kill(*p, "-STOP");
        }
        for p in &now {
            let _ = nix_kill(*p, "-KILL");
        }
    }
    assert!(
        left.is_empty(),
        "{} processes outlived the revocation",
        left.len()
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

fn nix_kill(pid: i32, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill").args([sig, &pid.to_string()]).status()
}

/// Finding 9b: Below Landlock ABI 6 (no signal scoping) the broker refuses unless its operator allowed
/// it, and then the execution record says so; and whatever the ABI, the command cannot signal
/// the broker (it is outside the command's PID namespace): a `kill -STOP` of the broker fails
/// and a revocation still ends the run.
#[test]
fn attack_9b_an_old_kernel_is_refused_or_recorded_and_the_broker_cannot_be_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup(tmp.path());
    let (_, cap) = cp.issue(60, json!({"exec": ["/usr/bin/true"]}));
    let strict = cp.broker_service(
        tmp.path(),
        "abi5",
        &[],
        &[("ZT_BROKER_LANDLOCK_ABI_CAP", "5")],
    );
    let o = run(&mut strict.ask(&cap, &ta, &["/usr/bin/true"]));
    assert_refused(&o, 126, &["ABI 6 or later is needed"]);
    let allowed = cp.broker_service(
        tmp.path(),
        "abi5-allowed",
        &["--allow-unscoped-landlock"],
        &[("ZT_BROKER_LANDLOCK_ABI_CAP", "5")],
    );
    let o = run(&mut allowed.ask(&cap, &ta, &["/usr/bin/true"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // the broker's pid, given to the command: it names nothing in its namespace
    let (id, cap2) = cp.issue(60, json!({"exec": ["/usr/bin/bash", "/usr/bin/sleep"]}));
    let svc = cp.broker_service(tmp.path(), "broker-1", &[], &[]);
    let pid = svc.child.id().to_string();
    let script = format!(
        "kill -STOP {pid} 2>/dev/null && echo STOPPED; kill -STOP 1; exec /usr/bin/sleep 30"
    );
    let mut child = svc
        .ask(&cap2, &ta, &["/usr/bin/bash", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    running_under(&cp, &id, &mut child);
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(
        !state
            .rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .starts_with('T'),
        "the broker was stopped: {state}"
    );
    let (st, _) = cp.call("DELETE", &format!("/capabilities/{id}"), &cp.admin, None);
    assert_eq!(st, 200);
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(137));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!stdout(&o).contains("STOPPED"));
    assert!(alive(svc.child.id() as i32));
    drop((strict, allowed, svc));
    let recs = cp.stop();
    let execs = executions(&recs);
    let unscoped = execs
        .iter()
        .find(|e| e["context"]["report"]["broker"] == "abi5-allowed")
        .unwrap();
    assert_eq!(
        unscoped["context"]["report"]["unscoped"], true,
        "{unscoped}"
    );
    assert_eq!(
        unscoped["context"]["report"]["landlock_abi"], 5,
        "{unscoped}"
    );
    let strict_rec = execs
        .iter()
        .find(|e| e["context"]["report"]["broker"] == "abi5")
        .unwrap();
    assert_eq!(strict_rec["context"]["report"]["outcome"]["ran"], false);
}

/// Finding 9c: `/executions` is rate-limited per agent like `/actions`: a flood of reports gets 429s
/// before its bodies are read or sealed.
#[test]
fn attack_9c_execution_reports_are_rate_limited() {
    let tmp = tempfile::tempdir().unwrap();
    let (cp, ta, _) = setup_with(
        tmp.path(),
        &["--rate-per-actor", "1", "--burst-per-actor", "3"],
    );
    let body = json!({"report": {"v": "zt-exec/1"}});
    let statuses: Vec<u16> = (0..6)
        .map(|_| cp.call("POST", "/executions", &ta, Some(body.clone())).0)
        .collect();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 2,
        "{statuses:?}"
    );
    assert!(statuses.starts_with(&[400]), "{statuses:?}");
}
