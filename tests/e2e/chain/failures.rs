//! The RPC dying in the middle of a submission, and a reorg: never two roots for an epoch,
//! never a head skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde_json::json;
use zt_core::Hash32;

use crate::{
    address, anchor_once, anchored_events, both, deploy, import, reconcile, v1_chain, Anvil,
};

const LOG: &str = "zt-failures";

/// Proxy states.
const UP: u8 = 0;
/// Forward the next eth_sendRawTransaction to the node, then die without answering.
const DIE_AFTER_SEND: u8 = 1;
/// Die on the next eth_sendRawTransaction without forwarding it.
const DIE_BEFORE_SEND: u8 = 2;
/// Dead: every connection is closed at once.
const DOWN: u8 = 3;

/// A JSON-RPC proxy in front of anvil that can die in the middle of a submission.
struct Proxy {
    url: String,
    state: Arc<AtomicU8>,
}

fn read_http(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut b).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&b[..n]);
            }
            return Some(buf);
        }
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let up = upstream.trim_start_matches("http://").to_owned();
        let state = Arc::new(AtomicU8::new(UP));
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut client) = conn else { continue };
                let st = Arc::clone(&st);
                let up = up.clone();
                std::thread::spawn(move || {
                    while let Some(req) = read_http(&mut client) {
                        let state = st.load(Ordering::SeqCst);
                        if state == DOWN {
                            return;
                        }
                        let sending =
                            String::from_utf8_lossy(&req).contains("eth_sendRawTransaction");
                        if sending && state == DIE_BEFORE_SEND {
                            st.store(DOWN, Ordering::SeqCst);
                            return;
                        }
                        let Ok(mut server) = TcpStream::connect(&up) else {
                            return;
                        };
                        if server.write_all(&req).is_err() {
                            return;
                        }
                        let Some(resp) = read_http(&mut server) else {
                            return;
                        };
                        if sending && state == DIE_AFTER_SEND {
                            // The node has the transaction; the caller never hears back.
                            st.store(DOWN, Ordering::SeqCst);
                            return;
                        }
                        if client.write_all(&resp).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Proxy { url, state }
    }

    fn set(&self, s: u8) {
        self.state.store(s, Ordering::SeqCst);
    }
}

fn store_with_a_chain(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("evidence.db");
    import(&db, &v1_chain("cp-x", 0, 4, Hash32::ZERO, |_| "allow"));
    db
}

fn epoch_state(db: &Path) -> (String, u64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT state, attempts FROM anchor_epochs WHERE epoch = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn the_rpc_dying_mid_submission_then_a_rerun_gives_one_root() {
    for mode in [DIE_AFTER_SEND, DIE_BEFORE_SEND] {
        let anvil = Anvil::start();
        let key = anvil.funded_key();
        let contract = deploy(&anvil, &key);
        let tmp = tempfile::tempdir().unwrap();
        let db = store_with_a_chain(tmp.path());
        let proxy = Proxy::start(&anvil.url);
        proxy.set(mode);
        let out = anchor_once(&proxy.url, &key, &db, &contract, LOG);
        assert_eq!(out.status.code(), Some(2), "mode {mode}: {}", both(&out));
        // The epoch and its signed transaction were stored before the send.
        assert_eq!(epoch_state(&db).0, "submitted", "mode {mode}");
        let landed = anchored_events(&anvil, &contract).len();
        assert_eq!(landed, usize::from(mode == DIE_AFTER_SEND), "mode {mode}");

        // The RPC comes back; the next run settles the same epoch.
        proxy.set(UP);
        let out = anchor_once(&proxy.url, &key, &db, &contract, LOG);
        assert_eq!(out.status.code(), Some(0), "mode {mode}: {}", both(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("epoch 1:"),
            "{}",
            both(&out)
        );
        let (state, attempts) = epoch_state(&db);
        assert_eq!(
            (state.as_str(), attempts),
            ("included", 1),
            "mode {mode}: the same transaction, not a second one"
        );
        assert_eq!(
            anchored_events(&anvil, &contract).len(),
            1,
            "mode {mode}: one root for epoch 1"
        );
        let (code, report) = reconcile(&anvil, &db, &contract, &address(&key), LOG);
        assert_eq!(code, 0, "mode {mode}: {report:#}");
    }
}

#[test]
fn a_reorg_that_drops_the_anchor_is_noticed_and_the_same_root_is_sent_again() {
    let anvil = Anvil::start();
    let key = anvil.funded_key();
    let contract = deploy(&anvil, &key);
    let tmp = tempfile::tempdir().unwrap();
    let db = store_with_a_chain(tmp.path());
    let snapshot = anvil.rpc("evm_snapshot", json!([]));
    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let root: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT hex(root) FROM anchor_epochs WHERE epoch = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // The block with the anchor is replaced: revert to before it, mine other blocks.
    anvil.rpc("evm_revert", json!([snapshot]));
    anvil.rpc("anvil_mine", json!([3]));
    assert!(anchored_events(&anvil, &contract).is_empty());
    let (code, report) = reconcile(&anvil, &db, &contract, &address(&key), LOG);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["findings"][0]["kind"], "anchor_missing");

    let out = anchor_once(&anvil.url, &key, &db, &contract, LOG);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (state, attempts) = epoch_state(&db);
    assert_eq!((state.as_str(), attempts), ("included", 2));
    let events = anchored_events(&anvil, &contract);
    assert_eq!(events.len(), 1);
    assert!(events[0]["data"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains(&root.to_lowercase()));
    let (code, report) = reconcile(&anvil, &db, &contract, &address(&key), LOG);
    assert_eq!(code, 0, "{report:#}");
}

fn epochs_on_chain(db: &Path) -> Vec<(u64, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT epoch, state FROM anchor_epochs ORDER BY epoch")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn spawn_every(url: &str, key: &str, db: &Path, contract: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_zt-audit"))
        .args(["anchor", "run", "--db", db.to_str().unwrap(), "--rpc", url])
        .args([
            "--contract",
            contract,
            "--log",
            LOG,
            "--every",
            "500ms",
            "--receipt-timeout",
            "5s",
        ])
        .env("ZT_ANCHOR_KEY", key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate(child: std::process::Child) -> (Option<i32>, String) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_scheduled_job_rides_out_an_outage_and_resumes_after_a_restart() {
    let anvil = Anvil::start();
    let key = anvil.funded_key();
    let contract = deploy(&anvil, &key);
    let tmp = tempfile::tempdir().unwrap();
    let db = store_with_a_chain(tmp.path());
    let included = |n: usize| {
        let db = db.clone();
        move || {
            let e = epochs_on_chain(&db);
            e.len() >= n && e[..n].iter().all(|(_, s)| s == "included")
        }
    };
    let proxy = Proxy::start(&anvil.url);
    let job = spawn_every(&proxy.url, &key, &db, &contract);
    wait_for("epoch 1", included(1));

    // The RPC goes away; evidence keeps arriving; the RPC comes back.
    proxy.set(DOWN);
    let c = rusqlite::Connection::open(&db).unwrap();
    let head: Vec<u8> = c
        .query_row(
            "SELECT current_hash FROM records WHERE position = 3",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&head);
    import(&db, &v1_chain("cp-x", 4, 2, Hash32(prev), |_| "allow"));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        epochs_on_chain(&db).len(),
        1,
        "nothing can be sent while the RPC is down"
    );
    proxy.set(UP);
    wait_for("epoch 2 after the outage", included(2));
    let (code, stderr) = terminate(job);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("next try in"),
        "the outage was seen and backed off: {stderr}"
    );

    // A restart resumes from the store.
    let job = spawn_every(&anvil.url, &key, &db, &contract);
    let head: Vec<u8> = c
        .query_row(
            "SELECT current_hash FROM records WHERE position = 5",
            [],
            |r| r.get(0),
        )
        .unwrap();
    prev.copy_from_slice(&head);
    import(&db, &v1_chain("cp-x", 6, 1, Hash32(prev), |_| "allow"));
    wait_for("epoch 3 after a restart", included(3));
    let (code, stderr) = terminate(job);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(anchored_events(&anvil, &contract).len(), 3);
    let (code, report) = reconcile(&anvil, &db, &contract, &address(&key), LOG);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records_checked"], 7);
}
