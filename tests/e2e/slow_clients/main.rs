//! Connections that cannot be held: `serve` and `control-plane`, each under a 1,024-descriptor
//! limit with their default connection limits, while one address opens 1,500 connections that
//! send half a request line and wait. A client from another address must still be answered,
//! and every one of the 1,500 must be closed by the server within 30 s. Its own binary: it
//! waits out the header timeout (10 s) twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use zt_testkit::http::metric;
use zt_testkit::{s, Bin, Server};

/// Connections the attacker holds, and what each one sends.
const HELD: usize = 1500;
const HALF_A_LINE: &[u8] = b"POST /v1/logs HTT";

/// Starts `zt-audit ARGS` with `ulimit -n 1024` (soft and hard), as a service manager's
/// default would have it.
fn spawn_limited(args: &[&str]) -> Server {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(Bin::under_test(env!("CARGO_BIN_EXE_zt-audit")).path())
        .args(args);
    Server::start(cmd)
}

/// A client that connects from 127.0.0.2: another host, as far as the server can tell.
fn other_host() -> reqwest::blocking::Client {
    zt_tls::install_default_provider();
    reqwest::blocking::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// This process needs more than 1,500 descriptors for each test (they may run at once).
fn raise_own_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = (2 * HELD as u64 + 256).max(soft);
    assert!(
        hard >= want,
        "this test holds {HELD} connections: raise the hard descriptor limit (ulimit -Hn {want})"
    );
    setrlimit(Resource::RLIMIT_NOFILE, want, hard).unwrap();
}

fn slow_clients_do_not_starve_others(args: &[&str], metrics_path: &str) {
    raise_own_limit();
    let server = spawn_limited(args);
    // `http://127.0.0.1:PORT` and maybe a path (serve names its `/v1/logs`).
    let authority = server.addr();
    let addr: SocketAddr = authority.parse().unwrap();
    let url = format!("http://{authority}");
    let client = other_host();
    let get = |path: &str| {
        let r = client
            .get(format!("{url}{path}"))
            .send()
            .unwrap_or_else(|e| {
                panic!("a client from another address got no answer to {path}: {e}")
            });
        assert_eq!(r.status(), 200, "{path}");
        r.text().unwrap()
    };
    get("/healthz");

    let start = Instant::now();
    let mut held = Vec::with_capacity(HELD);
    let mut not_accepted = None;
    for i in 0..HELD {
        // A server out of descriptors stops accepting: its backlog fills and connecting
        // hangs. Then the rest are moot; what matters is whether others are still answered.
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(e) => {
                not_accepted = Some(format!("connection {i}: {e}"));
                break;
            }
        };
        // A connection the server already closed (past its per-address limit) may refuse the
        // write: it is still one of the attacker's, and still has to be closed.
        let _ = s.write_all(HALF_A_LINE);
        held.push(s);
    }
    // While they are held: another address is answered, quickly.
    let asked = Instant::now();
    get("/healthz");
    let mut m = get(metrics_path);
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        asked.elapsed()
    );
    assert_eq!(
        not_accepted, None,
        "the server stopped accepting connections"
    );
    // Some of the held connections may still wait in the listen backlog: look again until
    // the server has taken every one of them (accepted or refused), for at most 5 s.
    let taken = |m: &str| {
        metric(m, "zt_connections_accepted_total")
            + metric(
                m,
                "zt_connections_refused_total{reason=\"max_per_address\"}",
            )
            + metric(
                m,
                "zt_connections_refused_total{reason=\"max_connections\"}",
            )
    };
    let looked = Instant::now();
    while taken(&m) < HELD as u64 && looked.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        m = get(metrics_path);
    }
    let per_address = metric(
        &m,
        "zt_connections_refused_total{reason=\"max_per_address\"}",
    );
    let open = metric(&m, "zt_connections_open");
    assert!(
        per_address >= (HELD as u64) - 256,
        "past the per-address limit, connections are refused at accept: {per_address}\n{m}"
    );
    assert!(
        open <= 256 + 2,
        "at most the per-address limit open from one address: {open}"
    );

    // Every held connection is closed by the server, none later than 30 s after it opened.
    let deadline = start + Duration::from_secs(30);
    for (i, mut s) in held.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                // A 4xx/408 before closing is fine: read on to the end.
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "connection {i} still open {:?} after the attack began",
                        start.elapsed()
                    )
                }
                Err(e) => panic!("connection {i}: {e}"),
            }
        }
    }
    let m = get(metrics_path);
    let closed = metric(&m, "zt_connections_closed_total{reason=\"header_timeout\"}");
    // Read again: some were still in the listen backlog at the first look.
    let per_address = metric(
        &m,
        "zt_connections_refused_total{reason=\"max_per_address\"}",
    );
    assert!(
        closed + per_address >= HELD as u64,
        "each held connection refused at accept or closed at the header timeout: {closed} + {per_address}\n{m}"
    );
    assert!(
        metric(&m, "zt_connections_open") <= 2,
        "they are gone from the count too\n{m}"
    );
    drop(server);
}

#[test]
fn serve_closes_slow_clients_and_answers_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    slow_clients_do_not_starve_others(
        &["serve", "--db", s(&db), "--listen", "127.0.0.1:0"],
        "/metrics",
    );
}

#[test]
fn control_plane_closes_slow_clients_and_answers_others() {
    let dir = tempfile::tempdir().unwrap();
    slow_clients_do_not_starve_others(
        &[
            "control-plane",
            "--open",
            "--dir",
            s(dir.path()),
            "--listen",
            "127.0.0.1:0",
        ],
        "/metrics",
    );
}
