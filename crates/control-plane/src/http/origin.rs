//! The operator's browser as the attacker's tool.
//!
//! In open mode nothing needs a token: whoever reaches the loopback address is trusted. A web
//! page the operator visits can reach it too:
//!
//! - **DNS rebinding**: a page on `evil.example` re-resolves its own name to 127.0.0.1 and
//!   talks to the control plane as its own origin, reading answers. The browser still sends
//!   `Host: evil.example:PORT`. So in open mode every request must name the server by a
//!   loopback name with its port (`localhost`, `127.0.0.1`, `[::1]`, any loopback address
//!   literal), and an `Origin`, when present, must be a loopback one (`open_mode_guard`).
//! - **Cross-site forms**: a form (or a `no-cors` fetch) can POST `text/plain`,
//!   `application/x-www-form-urlencoded` or `multipart/form-data` anywhere without a CORS
//!   preflight, and without reading the answer it can still change the policy set. So admin
//!   bodies must be `application/json` (which needs a preflight this server never grants), or
//!   `text/plain` with `X-ZT-Admin: 1` (a custom header needs one too)
//!   (`crate::http::extract::admin_body`). This
//!   holds in every mode: a token in a header is safe from forms, but the rule is cheap and
//!   keeps the two modes alike.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::reply::Reject;
use crate::shared::{Metrics, Shared};

fn loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` (`[v6]:port` for IPv6).
fn split_host(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (name, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Some((name, None)),
            r => r.strip_prefix(':').map(|p| (name, Some(p))),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port))),
        None => Some((authority, None)),
    }
}

/// Whether a `Host` value names this server by a loopback name and its `port`.
pub(crate) fn loopback_host(host: &str, port: u16) -> bool {
    let Some((name, given)) = split_host(host.trim()) else {
        return false;
    };
    let port_ok = match given {
        Some(p) => p.parse::<u16>().ok() == Some(port),
        None => port == 80,
    };
    port_ok && loopback_name(name)
}

/// Whether an `Origin` value is a loopback origin (any port: a page the operator runs on
/// this machine). `null` (sandboxed frames, `file:` pages, some redirects) is not.
pub(crate) fn loopback_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.trim().split_once("://") else {
        return false;
    };
    if !matches!(scheme, "http" | "https") || rest.contains('/') {
        return false;
    }
    split_host(rest).is_some_and(|(name, _)| loopback_name(name))
}

/// Open mode's door: every request names this server by loopback, and comes from a loopback
/// origin if it says where it comes from. Refused requests are not decisions: nothing is
/// recorded for them (no body was read).
pub(crate) async fn open_mode_guard(
    State(st): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    let refuse = |why: String| {
        Metrics::bump(&st.metrics.refused_origin);
        Reject::new(StatusCode::FORBIDDEN, why).into_response()
    };
    match host {
        Some(h) if loopback_host(&h, st.port) => {}
        Some(h) => {
            return refuse(format!(
                "open mode answers requests for localhost, 127.0.0.1 or [::1] on port {} only, not Host {:?} (a rebound DNS name would look like this)",
                st.port,
                zt_core::envelope::shorten(&h)
            ))
        }
        None => return refuse("open mode needs a Host header naming localhost".into()),
    }
    if let Some(o) = req.headers().get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("");
        if !loopback_origin(o) {
            return refuse(format!(
                "open mode answers pages from loopback origins only, not Origin {:?}",
                zt_core::envelope::shorten(o)
            ));
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        for ok in [
            "localhost:8080",
            "LOCALHOST:8080",
            "127.0.0.1:8080",
            "127.1.2.3:8080",
            "[::1]:8080",
        ] {
            assert!(loopback_host(ok, 8080), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "localhost:8081",
            "localhost",
            "localhost.:8080",
            "127.0.0.1.evil.example:8080",
            "10.0.0.1:8080",
            "[::2]:8080",
            "[::1",
            "2130706433:8080",
            "",
        ] {
            assert!(!loopback_host(bad, 8080), "{bad}");
        }
        assert!(loopback_host("localhost", 80));
        for ok in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:8080",
        ] {
            assert!(loopback_origin(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "file://",
            "http://localhost.evil.example",
            "localhost",
        ] {
            assert!(!loopback_origin(bad), "{bad}");
        }
    }
}
