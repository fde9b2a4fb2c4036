//! Answers. Bodies are `zt_core::json` values (the crate's one JSON value type), written
//! compactly with members in the order the route built them and values by RFC 8785's rules;
//! a refusal ([`Reject`]) is `{"ok": false, "error": "..."}` with its status.

use std::future::Future;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use zt_core::json::{self, Map, Value};

use crate::chain::Committed;
use crate::domain::limits::Key;
use crate::error::{NameError, PolicyError, RequestError, SealError};
use crate::util::text;

/// A refusal: its status, the message, and when to retry (`Retry-After`, seconds).
#[derive(Debug)]
pub(crate) struct Reject {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 503: the change or decision could not be made or kept; nothing is allowed.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// With `Retry-After: secs`.
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let body = json::Value::Object(crate::util::object([
            ("ok", Value::Bool(false)),
            ("error", text(self.message)),
        ]));
        let mut r = json_value(self.status, &body);
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

impl From<RequestError> for Reject {
    fn from(e: RequestError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, e.to_string())
    }
}

impl From<NameError> for Reject {
    fn from(e: NameError) -> Self {
        RequestError::from(e).into()
    }
}

impl From<PolicyError> for Reject {
    fn from(e: PolicyError) -> Self {
        RequestError::from(e).into()
    }
}

/// A refusal answered as it is.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    Reject::new(status, message).into_response()
}

/// `application/json` with `body` as it is.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `application/json`: `body`, members in their order.
pub(crate) fn json_value(status: StatusCode, body: &Value) -> Response {
    let mut out = Vec::with_capacity(256);
    write(body, &mut out);
    json_bytes(status, out)
}

/// `application/json`: the object `body`, members in their order.
pub(crate) fn json_object(status: StatusCode, body: Map) -> Response {
    json_value(status, &Value::Object(body))
}

/// Compact JSON with members in insertion order (what a route built, or what a record
/// holds); strings and numbers as RFC 8785 writes them.
fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_string(k, out);
                out.push(b':');
                write(item, out);
            }
            out.push(b'}');
        }
        other => json::write_canonical(other, out),
    }
}

/// `fields` and the sealed record under `audit`.
pub(crate) fn with_audit(status: StatusCode, mut fields: Map, c: &Committed) -> Response {
    let audit = json::parse(c.json.as_bytes()).unwrap_or(Value::Null);
    fields.push("audit".into(), audit);
    json_object(status, fields)
}

/// The answer to an admin change: `fields`, `ok`, and the sealed record under `audit`.
pub(crate) fn changed(status: StatusCode, mut fields: Map, committed: &Committed) -> Response {
    fields.push("ok".into(), Value::Bool(true));
    with_audit(status, fields, committed)
}

/// 503 for a change whose record could not be sealed (`Retry-After` when the writer was busy).
pub(crate) fn unrecorded(what: &str, e: &SealError) -> Reject {
    let r = Reject::unavailable(format!(
        "{what} could not be recorded ({e}): nothing changed; retry"
    ));
    if matches!(e, SealError::Busy) {
        r.retry_after(1)
    } else {
        r
    }
}

/// 429: past `key`'s rate limit; counted, not sealed (the summary of the window records it).
pub(crate) fn limited(key: &Key, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let who = key.who();
    Reject::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit of {who} reached: no decision; this refusal is counted in the next sealed rate-limit summary; retry after {secs} s"
        ),
    )
    .retry_after(secs.max(1))
    .into_response()
}

/// Runs an admin change to its end on its own task. A change seals its record, then takes
/// effect; if the request timed out (or the client went away) in between and the handler's
/// future were dropped, the chain would say "revoked" of a token that still works. On its own
/// task, a dropped answer drops only the waiting.
pub(crate) async fn to_completion<F, R>(change: F) -> Response
where
    F: Future<Output = R> + Send + 'static,
    R: IntoResponse + Send + 'static,
{
    match tokio::spawn(change).await {
        Ok(r) => r.into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change did not finish ({e}); check the chain and retry"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_an_error_object_with_its_status_and_retry_after() {
        let r = Reject::new(StatusCode::CONFLICT, "taken").retry_after(2);
        assert_eq!(r.message(), "taken");
        let r = r.into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()["retry-after"], "2");
    }

    #[test]
    fn members_keep_their_order_and_values_their_rfc8785_form() {
        let v =
            json::parse(br#"{"z":1.0,"a":[true,null,"\u0007"],"m":{"y":1e21,"b":0.5}}"#).unwrap();
        let mut out = Vec::new();
        write(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"z":1,"a":[true,null,"\u0007"],"m":{"y":1e+21,"b":0.5}}"#
        );
    }
}
