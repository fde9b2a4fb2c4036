//! `zt-audit conformance`: the fixed interface (`--target URL [--admin-token T] [--keyring F]
//! [--format json]`, `{ok, cases: [{name, ok, message}]}`, exit 0/1/2) against the real
//! `zt-audit control-plane` process.

use serde_json::Value;

use crate::{control_plane, s, zt};

#[test]
fn conformance_passes_against_the_control_plane_and_exits_by_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cp");
    let cp = control_plane(&dir, &[]);
    let url = cp.base.clone();
    let conformance = |extra: &[&str]| {
        let mut args = vec!["conformance", "--target", &url];
        args.extend_from_slice(extra);
        zt(&args)
    };
    let o = conformance(&[
        "--admin-token",
        cp.admin(),
        "--keyring",
        s(&cp.keyring()),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for c in cases {
        assert!(
            c["name"].is_string() && c["ok"] == true && c["message"].is_string(),
            "{c}"
        );
    }

    // no keyring: a case fails, exit 1, and the text names the missing trust root
    let o = conformance(&["--admin-token", cp.admin()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL envelopes_verify"), "{text}");
    assert!(text.contains("trust root: none given"), "{text}");

    // a wrong admin token: registration fails, exit 1
    let o = conformance(&["--admin-token", "ztadm_wrong"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL registration"));
    drop(cp);

    // nobody there: could not run, exit 2
    let o = conformance(&[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // no target at all: usage, exit 2
    assert_eq!(zt(&["conformance"]).status.code(), Some(2));
}

#[test]
fn the_client_suite_runs_any_command_and_fails_one_that_trusts_a_200() {
    // a client that runs the action whatever it is told: every case but the positive control
    // fails, exit 1
    let o = zt(&[
        "conformance",
        "client",
        "--format",
        "json",
        "--",
        "/bin/sh",
        "-c",
        "touch \"$ZT_CONFORMANCE_MARKER\"; echo ran",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v:#}");
    let failed: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 11, "{failed:?}");
    assert!(!failed.contains(&"allow"));
}
