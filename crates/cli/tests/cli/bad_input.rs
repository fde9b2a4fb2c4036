//! Hostile and broken input: each gives a finding or an error naming file and position;
//! never a panic (checked by `zt`), never "ok".

use std::path::Path;

use crate::{interop_dir, interop_keyring, s, valid_lines, verify_json, zt};

fn keyring() -> String {
    interop_keyring().display().to_string()
}

/// Writes `bytes` to a file, verifies it, and checks: exit 1, not ok, first finding at
/// `index` of `kind`, message containing `needle`.
fn expect_finding(dir: &Path, name: &str, bytes: &[u8], index: u64, kind: &str, needle: &str) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let (code, report) = verify_json(&["--keyring", &keyring(), path.to_str().unwrap()]);
    assert_eq!(code, 1, "{name}: {report:#}");
    assert_eq!(report["ok"], false, "{name}");
    let f = &report["findings"][0];
    assert_eq!(f["index"], index, "{name}: {report:#}");
    assert_eq!(f["kind"], kind, "{name}: {report:#}");
    assert!(
        f["file"].as_str().unwrap().ends_with(name),
        "{name}: file named"
    );
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(needle),
        "{name}: message {msg:?} lacks {needle:?}"
    );
}

#[test]
fn broken_records_are_findings_at_their_position() {
    let tmp = tempfile::tempdir().unwrap();
    let lines = valid_lines();
    let with = |i: usize, replacement: &str| {
        let mut l = lines.clone();
        l[i] = replacement.to_owned();
        (l.join("\n") + "\n").into_bytes()
    };
    let mut invalid_utf8 = lines[2].clone().into_bytes();
    let pos = invalid_utf8
        .windows(6)
        .position(|w| w == b"agent-")
        .unwrap();
    invalid_utf8[pos] = 0xff;
    let mut bytes = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 2 {
            bytes.extend_from_slice(&invalid_utf8);
        } else {
            bytes.extend_from_slice(l.as_bytes());
        }
        bytes.push(b'\n');
    }
    let h = &lines[6][lines[6].find("\"current_hash\":\"").unwrap() + 16..][..64];
    let sig_start = lines[7].find("\"signature\":\"").unwrap() + 13;
    let sig_end = sig_start + lines[7][sig_start..].find('"').unwrap();
    let signature = |sig: &str| {
        with(
            7,
            &format!("{}{sig}{}", &lines[7][..sig_start], &lines[7][sig_end..]),
        )
    };
    // (file, its bytes, index of the first finding, its kind, what its message says)
    let cases: Vec<(&str, Vec<u8>, u64, &str, &str)> = vec![
        (
            "not-json.jsonl",
            with(3, "this is not json"),
            3,
            "malformed",
            "not JSON",
        ),
        (
            "cut-off.jsonl",
            with(5, &lines[5][..40]),
            5,
            "malformed",
            "not JSON",
        ),
        ("invalid-utf8.jsonl", bytes, 2, "malformed", "not JSON"),
        (
            "wrong-type.jsonl",
            with(1, &lines[1].replace("\"agent-mcp-7\"", "42")),
            1,
            "malformed",
            "`actor` must be a string, found number",
        ),
        (
            "missing-field.jsonl",
            with(4, &lines[4].replace("\"reason\":", "\"why\":")),
            4,
            "malformed",
            "missing member `reason`",
        ),
        (
            "non-hex.jsonl",
            with(6, &lines[6].replace(h, &"zz".repeat(32))),
            6,
            "malformed",
            "64 lowercase hex",
        ),
        (
            "not-der.jsonl",
            signature("aGVsbG8gd29ybGQ="),
            7,
            "bad_signature",
            "not a DER",
        ),
        (
            "not-base64.jsonl",
            signature("!!!"),
            7,
            "bad_signature",
            "not base64",
        ),
        (
            "duplicate-member.jsonl",
            with(1, &lines[1].replacen("{", "{\"decision\":\"allow\",", 1)),
            1,
            "malformed",
            "duplicate member name `decision`",
        ),
        (
            "array-record.jsonl",
            with(0, "[1,2,3]"),
            0,
            "malformed",
            "not an object",
        ),
        (
            "deep.jsonl",
            with(0, &"[".repeat(10_000)),
            0,
            "malformed",
            "not JSON",
        ),
        (
            "empty.jsonl",
            b"".to_vec(),
            0,
            "malformed",
            "no audit records",
        ),
        (
            "blank.jsonl",
            b"\n\n  \n".to_vec(),
            0,
            "malformed",
            "no audit records",
        ),
        ("cut-array.json", b"[{\"a\":".to_vec(), 0, "malformed", ""),
        // fuzz regression (split_records): a stray \r before CRLF, then an empty line
        (
            "double-cr.jsonl",
            b"a\r\r\n".to_vec(),
            0,
            "malformed",
            "not JSON",
        ),
    ];
    for (name, bytes, index, kind, needle) in cases {
        expect_finding(tmp.path(), name, &bytes, index, kind, needle);
    }
}

#[test]
fn a_10_mb_line_is_a_finding_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = valid_lines();
    // a record whose reason is 10 MB: well-formed JSON, so it parses, and its hash is wrong
    lines[3] = lines[3].replace(
        "\"capability read-file-cap\"",
        &format!("\"{}\"", "x".repeat(10 << 20)),
    );
    expect_finding(
        tmp.path(),
        "huge-line.jsonl",
        (lines.join("\n") + "\n").as_bytes(),
        3,
        "hash_mismatch",
        "does not match",
    );
    // and 10 MB of garbage on one line
    let mut lines = valid_lines();
    lines[3] = "#".repeat(10 << 20);
    expect_finding(
        tmp.path(),
        "huge-garbage.jsonl",
        (lines.join("\n") + "\n").as_bytes(),
        3,
        "malformed",
        "not JSON",
    );
}

#[test]
fn unreadable_inputs_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.jsonl");
    let out = zt(&["verify", "--keyring", &keyring(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nope.jsonl: cannot open"));

    let (code, report) = verify_json(&["--keyring", &keyring(), tmp.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(report["ok"], false);
    assert!(report["errors"][0]
        .as_str()
        .unwrap()
        .contains("is a directory"));
}

#[test]
fn unusable_keys_are_usage_errors_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let valid = interop_dir().join("valid.jsonl");
    // a P-256 point that is not on the curve
    let bad_point = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEmU7BCuElTNXhTsaHXX1eo9c970dj\nYg6gF2ukO3CsyMYfA9y81BKlecRRUababjELhEzDwdXSrEfGEqRxXiu0IA==\n-----END PUBLIC KEY-----\n";
    let pem = tmp.path().join("bad.pem");
    std::fs::write(&pem, bad_point).unwrap();
    let out = zt(&[
        "verify",
        "--key",
        &format!("k1={}", pem.display()),
        valid.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--key k1") && err.contains("P-256"), "{err}");

    let ring = tmp.path().join("ring.json");
    let verify_under_ring = || zt(&["verify", "--keyring", s(&ring), s(&valid)]);
    std::fs::write(
        &ring,
        format!(r#"{{"keys":[{{"key_id":"k2","public_key_pem":{bad_point:?}}}]}}"#),
    )
    .unwrap();
    let out = verify_under_ring();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k2"), "{err}");

    std::fs::write(&ring, "not json").unwrap();
    assert_eq!(verify_under_ring().status.code(), Some(2));

    let out = zt(&["verify", "--expect-head", "abc", valid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = zt(&["verify", "--profile", "nonsense", valid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Reconcile reads an owner's log and a lineage's named loggers: without them it is a usage
/// error (2) before any node is asked.
#[test]
fn reconcile_without_its_trust_root_is_a_usage_error() {
    let addr = "0x000000000000000000000000000000000000dead";
    let lineage = interop_dir().join("valid.jsonl");
    let cases: &[&[&str]] = &[
        &["--db", "x.db", "--log", "prod-audit"],
        &["--db", "x.db", "--log", "prod-audit", "--owner", "nope"],
        &["--lineage", lineage.to_str().unwrap()],
        &["--lineage", lineage.to_str().unwrap(), "--logger", "nope"],
    ];
    for extra in cases {
        let mut args = vec![
            "reconcile",
            "--rpc",
            "http://127.0.0.1:1",
            "--contract",
            addr,
        ];
        args.extend_from_slice(extra);
        let out = zt(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("--owner") || stderr.contains("--logger") || stderr.contains("nope"),
            "{extra:?}: {stderr}"
        );
    }
}

/// A reader that stops early (`| head -1`) is not a crash: no panic message, exit 141 (as if
/// killed by SIGPIPE, never 0), and the demo's chain node does not outlive it.
#[test]
fn a_closed_stdout_is_exit_141_not_a_panic() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let marker = format!("pipe-{}", std::process::id());
    let mut child = crate::bin()
        .command(["demo", "--dir", s(&tmp.path().join("d"))])
        .env("ZT_TEST_MARKER", &marker)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("zt-audit demo"), "{first:?}");
    // The reader is gone (dropped above); the next write fails.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    let left = zt_testkit::process::marked_processes(&marker);
    assert!(left.is_empty(), "outlived the demo: {left:?}");
}

/// A PostgreSQL store that cannot be reached, or a URL that is not one, is a clear error naming
/// the store (exit 2), never a panic; a password in the URL is never printed.
#[test]
fn an_unreachable_or_malformed_postgres_store_is_an_error_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://zt:s3cret-pw@127.0.0.1:1/audit";
    for args in [
        vec!["verify", "--db", url],
        vec!["import", "--db", url, "/dev/null"],
        vec!["tui", "--db", url],
        vec!["serve", "--db", url, "--listen", "127.0.0.1:0"],
    ] {
        let out = zt(&args);
        let text = zt_testkit::both(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            !text.contains("s3cret-pw"),
            "{args:?} printed the password: {text}"
        );
        assert!(
            text.contains("postgres://zt:***@127.0.0.1:1/audit") && text.contains("PostgreSQL"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
    let out = zt(&["verify", "--db", "postgres://zt@127.0.0.1:notaport/audit"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("postgres://zt@127.0.0.1:notaport/audit"),
        "{text}"
    );
}
