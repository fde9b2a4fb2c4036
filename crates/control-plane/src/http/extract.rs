//! What a request carries, read once: its bearer token, its connection's source address and
//! verified peer identity (extensions `zt_tls::serve` sets, never headers), the admin token,
//! the admin content-type rule, and bodies through the one strict reader
//! (`zt_core::json::parse`: duplicate members, lone surrogates and integers no double holds
//! are refused on every route alike).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use zt_core::json::{self, Map, Value};
use zt_tls::PeerIdentity;

use crate::domain::asker::{Caller, Principals};
use crate::error::RequestError;
use crate::http::reply::Reject;
use crate::shared::Shared;
use crate::util::{token_hash, token_id};

/// The state every handler extracts.
pub(crate) type St = State<Arc<Shared>>;

/// The header that lets `text/plain` through to admin routes.
pub(crate) const ADMIN_HEADER: &str = "x-zt-admin";

/// `Authorization: Bearer <token>`, if given.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The connection's source address.
pub(crate) fn source(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The verified peer certificate's identity (zt-tls, this connection): never a header.
pub(crate) fn peer(parts: &Parts) -> Option<PeerIdentity> {
    parts.extensions.get::<PeerIdentity>().cloned()
}

/// Admin routes: open mode, or an admin bearer token. Gives who is acting, for the records
/// of admin changes (`admin-token:` and the token's id, never the token).
pub(crate) fn admin(st: &Shared, headers: &HeaderMap) -> Result<String, Reject> {
    if st.open {
        return Ok("none (open mode, loopback)".into());
    }
    match bearer(headers) {
        Some(t) if st.admin_tokens.contains(&token_hash(t)) => {
            Ok(format!("admin-token:{}", token_id(&token_hash(t))))
        }
        Some(_) => Err(Reject::new(StatusCode::FORBIDDEN, "not an admin token")),
        None => Err(Reject::new(
            StatusCode::UNAUTHORIZED,
            "this route needs Authorization: Bearer <admin token>",
        )),
    }
}

/// Who calls a route outside `/actions` (the status, an execution report).
pub(crate) async fn caller(
    st: &Shared,
    headers: &HeaderMap,
    peer: Option<&zt_tls::PeerIdentity>,
) -> Caller {
    let registry = st.registry.read().await;
    let brokers = st.brokers.read().await;
    let principals = Principals {
        registry: &registry,
        brokers: &brokers,
        admin_tokens: &st.admin_tokens,
        open: st.open,
    };
    principals.caller(bearer(headers), peer)
}

/// How an admin body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminBody {
    /// `application/json`.
    Json,
    /// `text/plain` with `X-ZT-Admin: 1`.
    Text,
}

/// The content-type rule of admin routes that take a body: `application/json`, or
/// `text/plain` with `X-ZT-Admin: 1`; a cross-site form can send neither
/// (`crate::http::origin`'s module docs).
pub(crate) fn admin_body(headers: &HeaderMap) -> Result<AdminBody, Reject> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let marked = headers
        .get(ADMIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    match ct.as_str() {
        "application/json" => Ok(AdminBody::Json),
        "text/plain" if marked => Ok(AdminBody::Text),
        _ => Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "admin requests carry Content-Type: application/json, or text/plain with X-ZT-Admin: 1 (a cross-site form can send neither)",
        )),
    }
}

/// A JSON object body with only `allowed` members.
pub(crate) fn object(body: &[u8], allowed: &'static [&'static str]) -> Result<Map, RequestError> {
    let v = json::parse(body).map_err(RequestError::NotJson)?;
    let Value::Object(m) = v else {
        return Err(RequestError::NotObject {
            found: v.type_name(),
        });
    };
    if let Some((k, _)) = m.iter().find(|(k, _)| !allowed.contains(k)) {
        return Err(RequestError::UnknownMember {
            member: zt_core::envelope::shorten(k),
            expected: allowed,
        });
    }
    Ok(m)
}

/// An admin's JSON body (the content-type rule, then [`object`]).
pub(crate) fn admin_object(
    headers: &HeaderMap,
    body: &[u8],
    allowed: &'static [&'static str],
) -> Result<Map, Reject> {
    admin_body(headers)?;
    Ok(object(body, allowed)?)
}

/// As [`admin_object`], an empty body read as `{}`.
pub(crate) fn admin_object_or_empty(
    headers: &HeaderMap,
    body: &[u8],
    allowed: &'static [&'static str],
) -> Result<Map, Reject> {
    admin_body(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    Ok(object(body, allowed)?)
}

/// Member `k`: a string, or absent (or null).
pub(crate) fn string(m: &Map, k: &str) -> Result<Option<String>, RequestError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(RequestError::NotString {
            member: k.to_owned(),
            found: v.type_name(),
        }),
    }
}

/// Member `k`: a whole number from 0 to `max`, or absent (or null).
pub(crate) fn whole(m: &Map, k: &'static str, max: u64) -> Result<Option<u64>, RequestError> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.fract() == 0.0 && *n >= 0.0 && *n <= max as f64 => {
            Ok(Some(*n as u64))
        }
        Some(_) => Err(RequestError::NotWhole { member: k, max }),
    }
}

/// Reads a body up to `limit` bytes (413 past it, 400 when it breaks off).
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Reject> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let over = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            Reject::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over the {limit}-byte limit"),
            )
        } else {
            Reject::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_bodies_need_json_or_the_custom_header() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert_eq!(
            admin_body(&h(&[("content-type", "application/json; charset=utf-8")])).unwrap(),
            AdminBody::Json
        );
        assert_eq!(
            admin_body(&h(&[("content-type", "text/plain"), ("x-zt-admin", "1")])).unwrap(),
            AdminBody::Text
        );
        for bad in [
            h(&[("content-type", "text/plain")]),
            h(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-zt-admin", "1"),
            ]),
            h(&[("content-type", "multipart/form-data; boundary=x")]),
            h(&[]),
        ] {
            assert!(admin_body(&bad).is_err(), "{bad:?}");
        }
    }
}
