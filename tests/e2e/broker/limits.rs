//! What the sandbox does not stop on this kernel, each statement of `docs/capabilities.md`
//! ("What the sandbox does not stop") measured here, on the real kernel, through the helper
//! the broker starts (`broker sandbox-exec`), with its positive or negative control beside it.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use crate::{s, sandboxed, stderr, stdout};

/// Debian's python3 (`scripts/test.sh` installs it when missing), canonical: a grant names
/// the file, not the link.
fn py() -> String {
    std::fs::canonicalize("/usr/bin/python3")
        .expect("Debian's /usr/bin/python3 (apt-get install python3)")
        .display()
        .to_string()
}

/// `python3 -I -c CODE` in a sandbox that may run python and nothing else.
fn python(code: &str) -> std::process::Output {
    let py = py();
    sandboxed(&format!(r#"{{"exec":["{py}"]}}"#), &[&py, "-I", "-c", code])
}

/// A write grant is not a read grant.
#[test]
fn a_write_grant_alone_does_not_read() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("f");
    let o = sandboxed(
        &format!(
            r#"{{"write":["{}"],"exec":["/usr/bin/dash","/usr/bin/cat"]}}"#,
            s(d.path())
        ),
        &[
            "/bin/sh",
            "-c",
            &format!("echo written > {0}; /usr/bin/cat {0}", s(&f)),
        ],
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "written\n");
    assert_eq!(stdout(&o), "", "read back: {}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

/// Landlock handles TCP only: a datagram leaves a sandbox without `net`, a TCP connection
/// does not.
#[test]
fn udp_is_not_restricted() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let code = format!(
        "import socket\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b'datagram', ('127.0.0.1', {}))\n\
         t = socket.socket()\n\
         try:\n    t.connect(('127.0.0.1', {})); print('tcp connected')\n\
         except PermissionError: print('tcp refused')",
        udp.local_addr().unwrap().port(),
        tcp.local_addr().unwrap().port()
    );
    let o = python(&code);
    assert_eq!(stdout(&o), "tcp refused\n", "{}", stderr(&o));
    let mut buf = [0u8; 16];
    let (n, _) = udp.recv_from(&mut buf).expect("the datagram arrived");
    assert_eq!(&buf[..n], b"datagram");
}

/// A pathname unix socket outside every grant can be connected to (Landlock controls that
/// from ABI 9); an abstract one created outside the sandbox cannot (the ABI 6 scope).
#[test]
fn pathname_unix_sockets_are_not_restricted_abstract_ones_are() {
    use std::os::linux::net::SocketAddrExt;
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("service.sock");
    let pathname = UnixListener::bind(&path).unwrap();
    pathname.set_nonblocking(true).unwrap();
    let name = format!("zt-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let abstract_ = UnixListener::bind_addr(&addr).unwrap();
    let code = format!(
        "import socket\n\
         for a in ['{}', '\\0{}']:\n\
         \x20   s = socket.socket(socket.AF_UNIX)\n\
         \x20   try:\n\
         \x20       s.connect(a); print('connected')\n\
         \x20   except PermissionError: print('refused')",
        s(&path),
        name
    );
    let o = python(&code);
    assert_eq!(stdout(&o), "connected\nrefused\n", "{}", stderr(&o));
    assert!(pathname.accept().is_ok(), "the pathname socket was reached");
    drop(abstract_);
}

/// Whether a path outside the grants exists is visible; its contents and its folder's
/// listing are not.
#[test]
fn metadata_outside_the_grants_is_visible_contents_are_not() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("outside.txt");
    std::fs::write(&f, "contents\n").unwrap();
    let o = sandboxed(
        r#"{"exec":["/usr/bin/dash","/usr/bin/cat","/usr/bin/ls"]}"#,
        &[
            "/bin/sh",
            "-c",
            &format!(
                "test -e {0} && echo EXISTS; /usr/bin/cat {0}; /usr/bin/ls {1}",
                s(&f),
                s(d.path())
            ),
        ],
    );
    assert_eq!(stdout(&o), "EXISTS\n", "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches("Permission denied").count(),
        2,
        "{}",
        stderr(&o)
    );
}

/// The PID namespace has no proc mount of its own: a read grant on `/proc` shows the host's
/// processes (here the host's init, whose name the test reads too).
#[test]
fn a_proc_grant_shows_the_hosts_processes() {
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap();
    let o = sandboxed(
        r#"{"read":["/proc"],"exec":["/usr/bin/cat"]}"#,
        &["/usr/bin/cat", "/proc/1/comm"],
    );
    assert_eq!(stdout(&o), host_init, "{}", stderr(&o));
    // but not what Landlock counts as tracing them: another process's environment (here this
    // test's, same user), open descriptors or memory are refused
    let o = sandboxed(
        r#"{"read":["/proc"],"exec":["/usr/bin/cat"]}"#,
        &[
            "/usr/bin/cat",
            &format!("/proc/{}/environ", std::process::id()),
        ],
    );
    assert_eq!(stdout(&o), "", "another process's environment was read");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // without the grant: nothing
    let o = sandboxed(
        r#"{"exec":["/usr/bin/cat"]}"#,
        &["/usr/bin/cat", "/proc/1/comm"],
    );
    assert_eq!(stdout(&o), "");
}

/// No cgroup: a command may start many processes and take memory.
#[test]
fn resources_are_not_limited() {
    let o = sandboxed(
        r#"{"exec":["/usr/bin/dash","/usr/bin/sleep"]}"#,
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 64 ]; do /usr/bin/sleep 0.2 & i=$((i+1)); done; wait && echo 64",
        ],
    );
    assert_eq!(stdout(&o), "64\n", "{}", stderr(&o));
    let o = python("b = bytearray(256 << 20); print(len(b) >> 20)");
    assert_eq!(stdout(&o), "256\n", "{}", stderr(&o));
}

/// An exec-granted interpreter runs any script it can read: exec grants say which programs the
/// kernel starts, not what a granted interpreter does with what it reads.
#[test]
fn a_granted_interpreter_runs_what_it_can_read() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("script.sh");
    std::fs::write(&script, "echo from-the-script\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let grants = format!(r#"{{"read":["{}"],"exec":["/usr/bin/dash"]}}"#, s(d.path()));
    let o = sandboxed(&grants, &["/bin/sh", s(&script)]);
    assert_eq!(stdout(&o), "from-the-script\n", "{}", stderr(&o));
    // as a program of its own it does not start
    let o = sandboxed(&grants, &["/bin/sh", "-c", s(&script)]);
    assert_eq!(stdout(&o), "");
    let mut e = String::new();
    let _ = (&o.stderr[..]).read_to_string(&mut e);
    assert!(e.contains("Permission denied"), "{e}");
}
