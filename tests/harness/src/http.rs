//! HTTP/1.1 written by hand, so a test controls every byte (headers that are not UTF-8, a
//! `Host` of its choosing, bodies a server refuses before reading), and JSON calls through
//! reqwest for everything else.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// An answer: its status (0 when it did not start with an HTTP status line), its head (status
/// line and headers) and its body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `host:port` of `addr`, which may be a URL (`http://127.0.0.1:8080/v1/logs`).
pub fn authority(addr: &str) -> &str {
    let rest = addr.split_once("://").map_or(addr, |(_, r)| r);
    rest.split('/').next().unwrap()
}

/// The port of `addr` (`host:port`, or a URL).
pub fn port(addr: &str) -> u16 {
    authority(addr).rsplit(':').next().unwrap().parse().unwrap()
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One request on a connection of its own (`Connection: close`, `Content-Length`, and
/// `Host: addr` unless `headers` names a host). The body is written from another thread, so a
/// server that answers before reading all of it (413) is still heard; a reset after the
/// answer began is its end. Err: no connection, or no byte of an answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &[u8],
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> std::io::Result<Answer> {
    let addr = authority(addr);
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = Vec::new();
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path);
    head.extend_from_slice(
        format!(
            " HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.extend_from_slice(format!("Host: {addr}\r\n").as_bytes());
    }
    for (k, v) in headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut w = s.try_clone()?;
    let got = std::thread::scope(|scope| {
        scope.spawn(move || {
            // The server may close once it has answered: not an error here.
            let _ = w.write_all(&head).and_then(|()| w.write_all(body));
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        let end = loop {
            match s.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A reset after the answer arrived (the server closed with our body unread).
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !got.is_empty() => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Unblocks the writer if the server stopped reading.
        let _ = s.shutdown(std::net::Shutdown::Both);
        end.map(|()| got)
    })?;
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(got.len());
    let head = String::from_utf8_lossy(&got[..split]).into_owned();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = got.get(split + 4..).unwrap_or_default().to_vec();
    Ok(Answer { status, head, body })
}

/// [`request`] with text headers; no answer at all (nothing listening, a server that died
/// mid-request) is status 0.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    request(addr, method, path.as_bytes(), &headers, body).unwrap_or(Answer {
        status: 0,
        head: String::new(),
        body: Vec::new(),
    })
}

/// `GET path` of `addr`, which must answer 200: the body as text (`/metrics`, say).
pub fn get_text(addr: &str, path: &str) -> String {
    let a = http(addr, "GET", path, &[], b"");
    assert_eq!(a.status, 200, "GET {path}: {}", a.head);
    String::from_utf8(a.body).unwrap()
}

/// The value of metric `name` (a line `name VALUE`) in a Prometheus text.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// `METHOD url` through reqwest with an optional bearer token and JSON body: (status, the
/// answer as JSON, or as a JSON string when it is not JSON).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
    // reqwest has rustls without a provider in this workspace (see zt_tls).
    zt_tls::install_default_provider();
    let c = reqwest::blocking::Client::new();
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `curl` over TLS trusting `ca`, with an optional client certificate (`(cert, key)`), bearer
/// token and JSON body (then a POST): (status, the answer as JSON, or as a JSON string when it
/// is not), or Err(curl's stderr) when no HTTP answer came (a refused handshake, say).
pub fn curl(
    ca: &std::path::Path,
    url: &str,
    identity: Option<&(std::path::PathBuf, std::path::PathBuf)>,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut c = std::process::Command::new("curl");
    c.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["-X", "POST", "-H", "content-type: application/json", "-d"])
            .arg(b.to_string());
    }
    if let Some((cert, key)) = identity {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = c.arg(url).output().expect("curl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    Ok((
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    ))
}
