//! What a connection may hold, over TLS: heads and idle spells that take too long are closed
//! and counted, a request that takes long is not cut, and the per-address limit closes a
//! connection at accept, before its handshake, without touching another address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;
use zt_tls::connections::Outcome;
use zt_tls::{ClientTls, ConnectionLimits};

use super::{files, start_with, Pki};

/// A TLS connection from `from` (handshake done), or the handshake's error.
async fn connect(
    pki: &Pki,
    to: SocketAddr,
    from: IpAddr,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let config = ClientTls {
        ca: Some(pki.server_ca()),
        identity: None,
    }
    .config()
    .unwrap();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(to).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
}

const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// Reads until the server closes; how long that took. Panics past `within`.
async fn closed_after(s: &mut TlsStream<tokio::net::TcpStream>, within: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => panic!("still open after {within:?}"),
            Ok(Ok(0) | Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends a GET and reads its answer (a short body with Content-Length), keeping the
/// connection.
async fn get(s: &mut TlsStream<tokio::net::TcpStream>, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed mid-answer: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            if body.len() >= len {
                return text;
            }
        }
    }
}

fn limits(header_ms: u64, idle_ms: u64) -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: Duration::from_millis(header_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        ..ConnectionLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_trickling_heads_are_closed_at_the_header_timeout() {
    let pki = Pki::new();
    let srv = start_with(&files(&pki), limits(800, 60_000)).await;
    // Handshaken, then nothing.
    let mut silent = connect(&pki, srv.addr, HERE).await.unwrap();
    let took = closed_after(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(500), "closed early: {took:?}");
    // Half a head, then a byte every 200 ms: bytes do not move the deadline.
    let mut trickle = connect(&pki, srv.addr, HERE).await.unwrap();
    trickle
        .write_all(b"GET /whoami HTTP/1.1\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut closed = false;
    while t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if trickle.write_all(b"X").await.is_err() || trickle.flush().await.is_err() {
            closed = true;
            break;
        }
        let mut b = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), trickle.read(&mut b)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickled head kept its connection for 5 s");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    for _ in 0..50 {
        if srv.connections.count(Outcome::HeaderTimeout) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(srv.connections.count(Outcome::HeaderTimeout), 2);
    assert_eq!(srv.connections.count(Outcome::IdleTimeout), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_is_closed_but_a_long_request_is_not_cut() {
    let pki = Pki::new();
    let srv = start_with(&files(&pki), limits(300, 1000)).await;
    let mut s = connect(&pki, srv.addr, HERE).await.unwrap();
    // Served far past the header and idle timeouts: the request's own timeout is the app's.
    let answer = get(&mut s, "/wait/1500").await;
    assert!(answer.ends_with("done"), "{answer}");
    // Kept alive: a second request on the same connection.
    let answer = get(&mut s, "/whoami").await;
    assert!(answer.ends_with("anonymous"), "{answer}");
    // Then idle: closed at the idle timeout, not the (shorter) header timeout.
    let took = closed_after(&mut s, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(800),
        "idle closed at {took:?}, before its timeout"
    );
    assert_eq!(srv.connections.count(Outcome::IdleTimeout), 1);
    assert_eq!(srv.connections.count(Outcome::HeaderTimeout), 0);
    let m = srv.connections.render_metrics();
    assert!(
        m.contains("zt_connections_closed_total{reason=\"idle_timeout\"} 1\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_per_address_limit_a_connection_closes_before_its_handshake() {
    let pki = Pki::new();
    let srv = start_with(
        &files(&pki),
        ConnectionLimits {
            max_per_address: 2,
            max_connections: 10,
            ..ConnectionLimits::default()
        },
    )
    .await;
    let mut a = connect(&pki, srv.addr, HERE).await.unwrap();
    let _b = connect(&pki, srv.addr, HERE).await.unwrap();
    let third = connect(&pki, srv.addr, HERE).await;
    assert!(third.is_err(), "a third connection from one address");
    assert_eq!(srv.connections.count(Outcome::MaxPerAddress), 1);
    assert!(
        srv.tls
            .render_metrics()
            .contains("zt_tls_handshakes_total 2\n"),
        "no handshake was spent on it\n{}",
        srv.tls.render_metrics()
    );
    // Another address is not affected, and the held ones still work.
    let mut other = connect(&pki, srv.addr, ELSEWHERE).await.unwrap();
    assert!(get(&mut other, "/whoami").await.ends_with("anonymous"));
    assert!(get(&mut a, "/whoami").await.ends_with("anonymous"));
    // A place given back is a place to take.
    drop(a);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(s) = connect(&pki, srv.addr, HERE).await {
            again = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = again.expect("the limit gave no place back");
    assert!(get(&mut again, "/whoami").await.ends_with("anonymous"));
    assert_eq!(srv.connections.open(), 3);
}
