//! `zt-audit control-plane` and `zt-audit demo` as processes, with the lineage's client shape.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zt_testkit::process::marked_processes;

use crate::{bin, control_plane, repo, s, verify_json, zt};

/// The lineage-style Python client (standard library only): (status, allowed, answer).
fn lineage_client(base: &str, actor: &str, token: &str) -> (u64, bool, Value) {
    let out = Command::new("python3")
        .arg(repo().join("tests/python/lineage_client.py"))
        .args(["--base", base, "--actor", actor])
        .args([
            "--action",
            "hello-world.say_hello",
            "--resource",
            "demo/greeting",
        ])
        .args(["--token", token])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "lineage client: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["status"].as_u64().unwrap(),
        v["allowed"].as_bool().unwrap(),
        v["answer"].clone(),
    )
}

#[test]
fn a_lineage_python_client_gets_signed_answers_that_verify_as_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cp");
    let cp = control_plane(&dir, &[]);
    let agent = cp.admin_post("/agents", &json!({"actor": "agent-py"}));
    let token = agent["token"].as_str().unwrap();
    cp.admin_post(
        "/policies",
        &json!({"action": "hello-world.say_hello", "resource": "demo/greeting"}),
    );

    let (status, allowed, first) = lineage_client(&cp.base, "agent-py", token);
    assert_eq!((status, allowed), (200, true), "{first}");
    // the same token claiming another actor: denied, and still a signed answer
    let (status, allowed, second) = lineage_client(&cp.base, "agent-other", token);
    assert_eq!((status, allowed), (403, false), "{second}");
    assert!(second["reason"]
        .as_str()
        .unwrap()
        .contains("actor mismatch"));

    // saved answers are evidence: `zt-audit verify` reads them as they are, on their own:
    // the decisions are a chain from seq 0 (the registration is on the control plane's
    // admin chain, whose record the registration's answer carried)
    let saved = tmp.path().join("answers.json");
    std::fs::write(&saved, json!([first, second]).to_string()).unwrap();
    let ring = dir.join("keyring.json");
    let (code, report) = verify_json(&["--keyring", s(&ring), s(&saved)]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 2);
    let admin = tmp.path().join("registration.json");
    std::fs::write(&admin, agent["audit"].to_string()).unwrap();
    let (code, report) = verify_json(&["--keyring", s(&ring), s(&admin)]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        report["chains"][0]["chain"]
            .as_str()
            .unwrap()
            .ends_with(".admin"),
        "{report:#}"
    );

    let (code, stderr) = cp.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("drained and stopped (3 records"),
        "{stderr}"
    );
    let (code, report) = bin().verify_db(dir.join("decisions.db"), &ring);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 3);
}

#[test]
fn open_mode_is_loopback_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = zt(&[
        "control-plane",
        "--dir",
        s(tmp.path()),
        "--open",
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback only"), "{err}");
}

#[test]
fn demo_denies_then_allows_and_leaves_stores_that_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let start = Instant::now();
    let anvil = repo().join("node_modules/.bin/anvil");
    assert!(
        anvil.exists(),
        "run scripts/npm-tools.sh first (scripts/test.sh does)"
    );
    // As a user would run the installed binary: from another folder, with the npm package's
    // `anvil` (the Node launcher) on PATH.
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(&anvil, bin_dir.join("anvil")).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let marker = format!("demo-{}-{}", std::process::id(), line!());
    let out = bin()
        .command(["demo", "--dir", s(&dir)])
        .current_dir(tmp.path())
        .env("PATH", path)
        .env_remove("ZT_ANVIL")
        .env("ZT_TEST_MARKER", &marker)
        .output()
        .unwrap();
    // Whatever the demo started (the node, and anything the node started) ended with it.
    let left = marked_processes(&marker);
    assert!(left.is_empty(), "outlived the demo: {left:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    for needle in [
        "DENIED (HTTP 403)",
        "the action did not run",
        "hello, world",
        "\"decision\": \"allow\"",
        "OK: ",
        "reconcile OK: 1 epoch(s) confirmed",
        "proof VALID",
        "(from PATH)",
        "zt-audit verify-proof ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("bin.mjs"),
        "the launcher ran instead of the native node:\n{stdout}"
    );
    assert!(!stdout.contains("terminating i-0demo"), "{stdout}");
    let ring = dir.join("control-plane/keyring.json");
    for db in [
        dir.join("ingest.db"),
        dir.join("control-plane/decisions.db"),
    ] {
        let (code, report) = bin().verify_db(&db, &ring);
        assert_eq!(code, 0, "{}: {report:#}", db.display());
        assert_eq!(report["records"], 3, "registration, deny, allow");
    }
    // The browser opens both stores the demo leaves (the ingest one is anchored).
    for db in [
        dir.join("ingest.db"),
        dir.join("control-plane/decisions.db"),
    ] {
        let mut app = zt_tui::app::App::new(zt_store::Store::open(&db).unwrap()).unwrap();
        assert_eq!(app.rows.len(), 3);
        app.key(zt_tui::app::Key::Enter).unwrap();
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        t.draw(|f| zt_tui::ui::draw(f, &mut app, "demo", zt_tui::ui::Theme { color: false }))
            .unwrap();
        let screen = format!("{}", t.backend());
        assert!(screen.contains("hello-world.say_hello"), "{screen}");
        assert!(screen.contains("✓ signature verified"), "{screen}");
        if db.ends_with("ingest.db") {
            assert!(screen.contains("epoch 1 (included)"), "{screen}");
        }
    }
    let proof = dir.join("allowed-decision.proof.json");
    let out = zt(&["verify-proof", s(&proof), "--keyring", s(&ring)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // a second run in the same directory continues the same chain
    let out = zt(&["demo", "--dir", s(&dir), "--anvil", s(&anvil)]);
    assert_eq!(out.status.code(), Some(0));
    let (code, report) = bin().verify_db(dir.join("ingest.db"), &ring);
    // the second run's agent is already registered (409, no record): two decisions more;
    // the decisions and the control plane's own records (the registration) are two chains
    assert_eq!(
        (code, report["records"].as_u64()),
        (0, Some(5)),
        "{report:#}"
    );
    assert_eq!(report["chains"].as_array().unwrap().len(), 2);
}

#[test]
fn demo_without_a_node_says_how_to_get_one_and_suggests_only_what_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let missing = tmp.path().join("no-such/anvil");
    let out = zt(&["demo", "--dir", s(&dir), "--anvil", s(&missing)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for needle in [
        "skipped: --anvil: no executable at",
        "reconcile and prove: skipped",
        "zt-audit verify --db ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("verify-proof"), "{stdout}");
    assert!(!dir.join("allowed-decision.proof.json").exists());
    // Every suggested command runs as printed (its inputs exist).
    let next = stdout.split("Next:").nth(1).unwrap();
    for line in next.lines().filter(|l| l.contains("zt-audit verify ")) {
        let args: Vec<&str> = line
            .split('#')
            .next()
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect();
        let out = zt(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{line}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
