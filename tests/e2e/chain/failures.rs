//! The RPC dying in the middle of a submission, and a reorg: never two roots for an epoch,
//! never a head skipped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use serde_json::json;
use zt_core::Hash32;

use zt_testkit::store::rows;

use crate::{allowed, anchor_once, anchored_events, bin, both, import, s, Setup};

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

/// A setup with a store of one chain of four records.
fn setup() -> (Setup, std::path::PathBuf) {
    let t = Setup::start();
    let db = t.path("evidence.db");
    import(&db, &allowed("cp-x", 0, 4, Hash32::ZERO));
    (t, db)
}

fn epoch_state(db: &Path) -> (String, u64) {
    rows(
        db,
        "SELECT state, attempts FROM anchor_epochs WHERE epoch = 1",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .remove(0)
}

#[test]
fn the_rpc_dying_mid_submission_then_a_rerun_gives_one_root() {
    for mode in [DIE_AFTER_SEND, DIE_BEFORE_SEND] {
        let (t, db) = setup();
        let proxy = Proxy::start(&t.anvil.url);
        proxy.set(mode);
        let out = anchor_once(&proxy.url, &t.key, &db, &t.contract, LOG);
        assert_eq!(out.status.code(), Some(2), "mode {mode}: {}", both(&out));
        // The epoch and its signed transaction were stored before the send.
        assert_eq!(epoch_state(&db).0, "submitted", "mode {mode}");
        let landed = anchored_events(&t.anvil, &t.contract).len();
        assert_eq!(landed, usize::from(mode == DIE_AFTER_SEND), "mode {mode}");

        // The RPC comes back; the next run settles the same epoch.
        proxy.set(UP);
        let out = anchor_once(&proxy.url, &t.key, &db, &t.contract, LOG);
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
            anchored_events(&t.anvil, &t.contract).len(),
            1,
            "mode {mode}: one root for epoch 1"
        );
        let (code, report) = t.reconcile(&db, LOG);
        assert_eq!(code, 0, "mode {mode}: {report:#}");
    }
}

#[test]
fn a_reorg_that_drops_the_anchor_is_noticed_and_the_same_root_is_sent_again() {
    let (t, db) = setup();
    let snapshot = t.anvil.rpc("evm_snapshot", json!([]));
    t.anchor(&db, LOG);
    let root = rows(
        &db,
        "SELECT hex(root) FROM anchor_epochs WHERE epoch = 1",
        |r| r.get::<_, String>(0),
    )
    .remove(0);
    // The block with the anchor is replaced: revert to before it, mine other blocks.
    t.anvil.rpc("evm_revert", json!([snapshot]));
    t.anvil.rpc("anvil_mine", json!([3]));
    assert!(anchored_events(&t.anvil, &t.contract).is_empty());
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["findings"][0]["kind"], "anchor_missing");

    t.anchor(&db, LOG);
    let (state, attempts) = epoch_state(&db);
    assert_eq!((state.as_str(), attempts), ("included", 2));
    let events = anchored_events(&t.anvil, &t.contract);
    assert_eq!(events.len(), 1);
    assert!(events[0]["data"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains(&root.to_lowercase()));
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 0, "{report:#}");
}

fn epochs_on_chain(db: &Path) -> Vec<(u64, String)> {
    rows(
        db,
        "SELECT epoch, state FROM anchor_epochs ORDER BY epoch",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    zt_testkit::wait_until(what, std::time::Duration::from_secs(60), ok);
}

/// `anchor run --every 500ms` through `url`, its stderr piped.
fn spawn_every(url: &str, key: &str, db: &Path, contract: &str) -> std::process::Child {
    bin()
        .command(["anchor", "run", "--db", s(db), "--rpc", url])
        .args(["--contract", contract, "--log", LOG, "--every", "500ms"])
        .args(["--receipt-timeout", "5s"])
        .env("ZT_ANCHOR_KEY", key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM, then (exit code, stderr).
fn terminate(mut child: std::process::Child) -> (Option<i32>, String) {
    zt_testkit::process::signal_and_wait(&mut child, "-TERM")
}

/// The hash of the record at `position` of the store's one chain.
fn head_at(db: &Path, position: u64) -> Hash32 {
    let head = rows(
        db,
        &format!("SELECT current_hash FROM records WHERE position = {position}"),
        |r| r.get::<_, Vec<u8>>(0),
    );
    Hash32(head[0].as_slice().try_into().unwrap())
}

#[test]
fn the_scheduled_job_rides_out_an_outage_and_resumes_after_a_restart() {
    let (t, db) = setup();
    let included = |n: usize| {
        let db = db.clone();
        move || {
            let e = epochs_on_chain(&db);
            e.len() >= n && e[..n].iter().all(|(_, s)| s == "included")
        }
    };
    let proxy = Proxy::start(&t.anvil.url);
    let job = spawn_every(&proxy.url, &t.key, &db, &t.contract);
    wait_for("epoch 1", included(1));

    // The RPC goes away; evidence keeps arriving; the RPC comes back.
    proxy.set(DOWN);
    import(&db, &allowed("cp-x", 4, 2, head_at(&db, 3)));
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
    let job = spawn_every(&t.anvil.url, &t.key, &db, &t.contract);
    import(&db, &allowed("cp-x", 6, 1, head_at(&db, 5)));
    wait_for("epoch 3 after a restart", included(3));
    let (code, stderr) = terminate(job);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(anchored_events(&t.anvil, &t.contract).len(), 3);
    let (code, report) = t.reconcile(&db, LOG);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records_checked"], 7);
}
