//! The peers the tests drive that are not Rust: the OpenTelemetry Python SDK's venv and the Go
//! test peers, each built once by its script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `scripts/NAME` and returns the last line it printed (where it put what it built).
fn script_output(name: &str) -> String {
    let out = Command::new("bash")
        .arg(crate::repo().join("scripts").join(name))
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The venv's python with the real OpenTelemetry SDK (`scripts/python-venv.sh` builds it
/// once).
pub fn python() -> String {
    script_output("python-venv.sh")
}

/// A Go test peer built by `scripts/go-peers.sh` (pinned modules from the Go module proxy),
/// e.g. `spiffe-client` on the reference go-spiffe library.
pub fn go_peer(name: &str) -> PathBuf {
    let dir = script_output("go-peers.sh");
    let path = Path::new(&dir).join(name);
    assert!(path.exists(), "no Go peer {name} in {dir}");
    path
}

/// `tests/python/send_envelopes.py` under `python` (the OpenTelemetry Python SDK) sending the
/// records of `file` to `endpoint`, with `extra` arguments: (exit code, the JSON it printed or
/// null, its stderr).
pub fn send_envelopes(
    python: &str,
    endpoint: &str,
    file: &Path,
    extra: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(python)
        .arg(crate::repo().join("tests/python/send_envelopes.py"))
        .args(["--endpoint", endpoint, "--file"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
