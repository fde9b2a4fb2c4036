//! Helpers the test binaries of the CLI (`cli`, `chain`, `broker`, `slow_clients`) use, included by `#[path]` so each
//! binary links only what it needs and nothing is written twice.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python with the real OpenTelemetry SDK (`scripts/python-venv.sh` builds it once).
pub fn python() -> String {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/python-venv.sh"))
        .output()
        .expect("run scripts/python-venv.sh");
    assert!(
        out.status.success(),
        "python venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// A Go test peer built by `scripts/go-peers.sh` (pinned modules from the Go module proxy),
/// e.g. `spiffe-client` on the reference go-spiffe library.
pub fn go_peer(name: &str) -> PathBuf {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/go-peers.sh"))
        .output()
        .expect("run scripts/go-peers.sh");
    assert!(
        out.status.success(),
        "go peers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(out.stdout).unwrap();
    let path = Path::new(dir.lines().last().unwrap().trim()).join(name);
    assert!(path.exists(), "no Go peer {name} in {dir}");
    path
}

/// The `zt-audit` under test: this build, or the one `ZT_AUDIT_UNDER_TEST` names (how attack
/// tests are run against the commit before a fix, to watch each attack succeed).
pub fn zt_audit() -> &'static std::ffi::OsStr {
    static PATH: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os("ZT_AUDIT_UNDER_TEST")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_zt-audit").into())
    })
}

/// Starts `zt-audit ARGS` (a server), and reads the URL its first stdout line ends with.
pub fn spawn_server(args: &[&std::ffi::OsStr]) -> (std::process::Child, String) {
    let mut cmd = std::process::Command::new(zt_audit());
    cmd.args(args);
    spawn_server_cmd(cmd)
}

/// Starts a server from a command (`zt-audit` under a wrapper, say), and reads the URL its
/// first stdout line ends with.
pub fn spawn_server_cmd(mut cmd: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
        "first line: {line:?}"
    );
    (child, url)
}
