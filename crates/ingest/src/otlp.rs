//! OTLP/HTTP logs payloads (OTLP specification, "OTLP/HTTP": binary protobuf and JSON
//! encodings of `ExportLogsServiceRequest`) and the envelopes they carry.
//!
//! A LogRecord is an audit envelope when its event name is `zt.audit.decision`: the
//! `event_name` field (OTLP 1.5+) or, for older SDKs, the attribute `event.name`. Its body is
//! either a string holding the envelope's JSON (kept byte for byte) or a kvlist with the
//! envelope's members (turned into RFC 8785 JSON: the envelope's hash does not depend on member
//! order or whitespace). Other LogRecords are not ours: counted and ignored.
//!
//! OTLP/JSON rules followed: lowerCamelCase field names (the protobuf names are accepted too,
//! as the proto3 JSON mapping allows), 64-bit integers as decimal strings or numbers, bytes as
//! base64, enums as integers.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use zt_core::json::{self, Map, Value};

use crate::scan::{self, Limits, ScanError};

/// The event name that marks an audit envelope.
pub const EVENT_NAME: &str = "zt.audit.decision";

/// What a request carried.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Envelope bytes, in request order.
    pub envelopes: Vec<Vec<u8>>,
    /// Envelope-marked records whose body is unusable: `(bytes to keep, reason)`.
    pub unusable: Vec<(Vec<u8>, String)>,
    /// LogRecords that are not audit envelopes.
    pub ignored: u64,
}

/// A payload that is not decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// It cannot be decoded at all (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// Decoding it would pass a limit (HTTP 413); found before anything was allocated for it.
    #[error(transparent)]
    OverLimit(ScanError),
}

impl From<ScanError> for DecodeError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Malformed(m) => Self::Malformed(m.to_owned()),
            e @ ScanError::OverLimit { .. } => Self::OverLimit(e),
        }
    }
}

fn malformed(message: String) -> DecodeError {
    DecodeError::Malformed(message)
}

/// Decodes a binary protobuf `ExportLogsServiceRequest`, counting first ([`scan::protobuf`]):
/// a request over `limits` is refused before prost allocates anything for it.
pub fn from_protobuf(body: &[u8], limits: &Limits) -> Result<Extracted, DecodeError> {
    scan::protobuf(body, limits)?;
    let req = ExportLogsServiceRequest::decode(body)
        .map_err(|e| malformed(format!("not a protobuf ExportLogsServiceRequest: {e}")))?;
    let mut out = Extracted::default();
    for rl in req.resource_logs {
        for sl in rl.scope_logs {
            for lr in sl.log_records {
                let marked = lr.event_name == EVENT_NAME
                    || lr.attributes.iter().any(|kv| {
                        kv.key == "event.name"
                            && matches!(&kv.value, Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) if s == EVENT_NAME)
                    });
                if !marked {
                    out.ignored += 1;
                    continue;
                }
                match lr.body.and_then(|b| b.value) {
                    Some(any_value::Value::StringValue(s)) => out.envelopes.push(s.into_bytes()),
                    Some(any_value::Value::KvlistValue(kv)) => {
                        match any_to_json(&any_value::Value::KvlistValue(kv), 0) {
                            Ok(v) => out.envelopes.push(json::canonicalize(&v)),
                            Err(e) => out.unusable.push((Vec::new(), format!("kvlist body: {e}"))),
                        }
                    }
                    Some(other) => {
                        let kept = any_to_json(&other, 0)
                            .map(|v| json::canonicalize(&v))
                            .unwrap_or_default();
                        out.unusable
                            .push((kept, "body is neither a string nor a kvlist".into()));
                    }
                    None => out
                        .unusable
                        .push((Vec::new(), "LogRecord has no body".into())),
                }
            }
        }
    }
    Ok(out)
}

const MAX_DEPTH: usize = 64;

/// Why a log body (an AnyValue) cannot be read as JSON: the reason its record is kept in
/// quarantine.
#[derive(Debug, thiserror::Error)]
enum AnyValueError {
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("a double that is not finite")]
    NotFinite,
    #[error("an AnyValue must be an object")]
    NotObject,
    #[error("an AnyValue has exactly one member")]
    NotOneMember,
    #[error("unknown AnyValue member `{0}`")]
    UnknownMember(String),
    #[error("intValue {0:?} is not a 64-bit integer")]
    NotInteger(String),
    #[error("number out of range")]
    OutOfRange,
    #[error("kvlist entry without a string key")]
    KeyNotString,
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
    #[error(transparent)]
    Shape(#[from] DecodeError),
}

fn any_to_json(v: &any_value::Value, depth: usize) -> Result<Value, AnyValueError> {
    if depth > MAX_DEPTH {
        return Err(AnyValueError::TooDeep);
    }
    Ok(match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        #[allow(
            clippy::cast_precision_loss,
            reason = "JSON numbers are doubles (RFC 8785)"
        )]
        any_value::Value::IntValue(i) => Value::Number(*i as f64),
        any_value::Value::DoubleValue(d) if d.is_finite() => Value::Number(*d),
        any_value::Value::DoubleValue(_) => return Err(AnyValueError::NotFinite),
        any_value::Value::BytesValue(b) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .map(|x| {
                    x.value
                        .as_ref()
                        .map_or(Ok(Value::Null), |x| any_to_json(x, depth + 1))
                })
                .collect::<Result<_, _>>()?,
        ),
        any_value::Value::KvlistValue(kv) => {
            let mut m = Map::new();
            for e in &kv.values {
                if m.contains_key(&e.key) {
                    return Err(AnyValueError::DuplicateKey(zt_core::envelope::shorten(
                        &e.key,
                    )));
                }
                let val = e.value.as_ref().and_then(|x| x.value.as_ref());
                m.push(
                    e.key.clone(),
                    val.map_or(Ok(Value::Null), |x| any_to_json(x, depth + 1))?,
                );
            }
            Value::Object(m)
        }
    })
}

fn field<'a>(
    obj: &'a serde_json::Value,
    camel: &str,
    snake: &str,
) -> Option<&'a serde_json::Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

fn list<'a>(
    obj: &'a serde_json::Value,
    camel: &str,
    snake: &str,
) -> Result<&'a [serde_json::Value], DecodeError> {
    match field(obj, camel, snake) {
        None | Some(serde_json::Value::Null) => Ok(&[]),
        Some(serde_json::Value::Array(a)) => Ok(a),
        Some(_) => Err(malformed(format!("`{camel}` must be an array"))),
    }
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`, estimating first ([`scan::json`]): a
/// request whose parsed tree would pass `limits` is refused before it is parsed.
pub fn from_json(body: &[u8], limits: &Limits) -> Result<Extracted, DecodeError> {
    scan::json(body, limits)?;
    // The core's strict reader first: a duplicate member (two `body`s in one LogRecord, say)
    // would let two readers of the same request see two different records.
    zt_core::json::check_wire(body).map_err(|e| malformed(format!("not OTLP/JSON: {e}")))?;
    let req: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not OTLP/JSON: {e}")))?;
    if !req.is_object() {
        return Err(malformed(
            "not OTLP/JSON: the request must be an object".into(),
        ));
    }
    let (mut resources, mut scopes, mut records) = (0u64, 0u64, 0u64);
    for rl in list(&req, "resourceLogs", "resource_logs")? {
        resources += 1;
        for sl in list(rl, "scopeLogs", "scope_logs")? {
            scopes += 1;
            records += list(sl, "logRecords", "log_records")?.len() as u64;
        }
    }
    scan::check_json_counts(resources, scopes, records, limits)?;
    let mut out = Extracted::default();
    for rl in list(&req, "resourceLogs", "resource_logs")? {
        for sl in list(rl, "scopeLogs", "scope_logs")? {
            for lr in list(sl, "logRecords", "log_records")? {
                let event = field(lr, "eventName", "event_name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let marked = event == EVENT_NAME
                    || list(lr, "attributes", "attributes")?.iter().any(|kv| {
                        kv.get("key").and_then(|k| k.as_str()) == Some("event.name")
                            && kv
                                .get("value")
                                .and_then(|v| field(v, "stringValue", "string_value"))
                                .and_then(|s| s.as_str())
                                == Some(EVENT_NAME)
                    });
                if !marked {
                    out.ignored += 1;
                    continue;
                }
                match field(lr, "body", "body") {
                    None | Some(serde_json::Value::Null) => {
                        out.unusable
                            .push((Vec::new(), "LogRecord has no body".into()));
                    }
                    Some(body) => match field(body, "stringValue", "string_value") {
                        Some(serde_json::Value::String(s)) => {
                            out.envelopes.push(s.clone().into_bytes())
                        }
                        _ => match json_any(body, 0) {
                            Ok(v @ Value::Object(_)) => out.envelopes.push(json::canonicalize(&v)),
                            Ok(v) => out.unusable.push((
                                json::canonicalize(&v),
                                "body is neither a string nor a kvlist".into(),
                            )),
                            Err(e) => out.unusable.push((Vec::new(), format!("body: {e}"))),
                        },
                    },
                }
            }
        }
    }
    Ok(out)
}

/// An OTLP/JSON AnyValue.
fn json_any(v: &serde_json::Value, depth: usize) -> Result<Value, AnyValueError> {
    if depth > MAX_DEPTH {
        return Err(AnyValueError::TooDeep);
    }
    let obj = v.as_object().ok_or(AnyValueError::NotObject)?;
    let (k, inner) = match obj.iter().next() {
        Some(kv) if obj.len() == 1 => kv,
        None => return Ok(Value::Null),
        Some(_) => return Err(AnyValueError::NotOneMember),
    };
    Ok(match (k.as_str(), inner) {
        ("stringValue" | "string_value", serde_json::Value::String(s)) => Value::String(s.clone()),
        ("boolValue" | "bool_value", serde_json::Value::Bool(b)) => Value::Bool(*b),
        ("intValue" | "int_value", serde_json::Value::String(s)) => {
            let i: i64 = s
                .parse()
                .map_err(|_| AnyValueError::NotInteger(s.clone()))?;
            #[allow(
                clippy::cast_precision_loss,
                reason = "JSON numbers are doubles (RFC 8785)"
            )]
            Value::Number(i as f64)
        }
        (
            "intValue" | "int_value" | "doubleValue" | "double_value",
            serde_json::Value::Number(n),
        ) => Value::Number(n.as_f64().ok_or(AnyValueError::OutOfRange)?),
        ("bytesValue" | "bytes_value", serde_json::Value::String(s)) => Value::String(s.clone()),
        ("arrayValue" | "array_value", a) => Value::Array(
            list(a, "values", "values")?
                .iter()
                .map(|x| json_any(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        ("kvlistValue" | "kvlist_value", kv) => {
            let mut m = Map::new();
            for e in list(kv, "values", "values")? {
                let key = e
                    .get("key")
                    .and_then(|k| k.as_str())
                    .ok_or(AnyValueError::KeyNotString)?;
                if m.contains_key(key) {
                    return Err(AnyValueError::DuplicateKey(zt_core::envelope::shorten(key)));
                }
                let val = match e.get("value") {
                    None | Some(serde_json::Value::Null) => Value::Null,
                    Some(x) => json_any(x, depth + 1)?,
                };
                m.push(key.to_owned(), val);
            }
            Value::Object(m)
        }
        (other, _) => {
            return Err(AnyValueError::UnknownMember(zt_core::envelope::shorten(
                other,
            )))
        }
    })
}

/// The response body, in the request's encoding. `rejected == 0`: full success.
pub fn response(json_encoding: bool, rejected: u64, message: &str) -> Vec<u8> {
    let rejected = i64::try_from(rejected).unwrap_or(i64::MAX);
    if json_encoding {
        let v = if rejected == 0 {
            serde_json::json!({})
        } else {
            serde_json::json!({"partialSuccess": {"rejectedLogRecords": rejected.to_string(), "errorMessage": message}})
        };
        v.to_string().into_bytes()
    } else {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message.to_owned(),
            }),
        }
        .encode_to_vec()
    }
}

/// A LogRecord carrying one envelope the way adapters send it: event name
/// `zt.audit.decision`, the envelope's JSON text as a string body.
pub fn envelope_record(json: &str) -> LogRecord {
    LogRecord {
        event_name: EVENT_NAME.into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(json.into())),
        }),
        ..Default::default()
    }
}

/// A protobuf `ExportLogsServiceRequest` holding `records` (for load generators and tests).
pub fn request(records: Vec<LogRecord>) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// gRPC code (3: INVALID_ARGUMENT, 8: RESOURCE_EXHAUSTED, 14: UNAVAILABLE, 16: UNAUTHENTICATED).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// For people.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// An error body in the request's encoding.
pub fn status(json_encoding: bool, code: i32, message: &str) -> Vec<u8> {
    if json_encoding {
        serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes()
    } else {
        Status {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, KeyValueList};

    fn s(x: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(x.into())),
        })
    }

    #[test]
    fn protobuf_string_kvlist_attribute_and_ignored() {
        let body = request(vec![
            LogRecord {
                event_name: EVENT_NAME.into(),
                body: s("{\"a\":1}"),
                ..Default::default()
            },
            LogRecord {
                attributes: vec![KeyValue {
                    key: "event.name".into(),
                    value: s(EVENT_NAME),
                }],
                body: Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![
                            KeyValue {
                                key: "z".into(),
                                value: s("last"),
                            },
                            KeyValue {
                                key: "a".into(),
                                value: s("first"),
                            },
                        ],
                    })),
                }),
                ..Default::default()
            },
            LogRecord {
                body: s("an ordinary log line"),
                ..Default::default()
            },
        ]);
        let x = from_protobuf(&body, &Limits::default()).unwrap();
        assert_eq!(
            x.envelopes,
            [
                b"{\"a\":1}".to_vec(),
                b"{\"a\":\"first\",\"z\":\"last\"}".to_vec()
            ]
        );
        assert_eq!(x.ignored, 1);
        assert!(from_protobuf(b"\xff\xff\xff garbage", &Limits::default()).is_err());
    }

    #[test]
    fn json_encoding_rules() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"eventName":"zt.audit.decision","body":{"stringValue":"{\"x\":2}"},"traceId":"5b8efff798038103d269b633813fc60c"},
            {"attributes":[{"key":"event.name","value":{"stringValue":"zt.audit.decision"}}],
             "body":{"kvlistValue":{"values":[{"key":"n","value":{"intValue":"42"}},{"key":"b","value":{"boolValue":true}}]}}},
            {"body":{"stringValue":"not ours"}}
        ]}]}]}"#;
        let l = Limits::default();
        let x = from_json(body, &l).unwrap();
        assert_eq!(
            x.envelopes,
            [b"{\"x\":2}".to_vec(), b"{\"b\":true,\"n\":42}".to_vec()]
        );
        assert_eq!(x.ignored, 1);
        assert!(from_json(b"[1]", &l).is_err());
        assert!(from_json(b"{\"resourceLogs\": 5}", &l).is_err());
    }

    #[test]
    fn responses() {
        assert_eq!(response(true, 0, ""), b"{}");
        let r = String::from_utf8(response(true, 2, "why")).unwrap();
        assert!(r.contains("\"rejectedLogRecords\":\"2\""), "{r}");
        let p = ExportLogsServiceResponse::decode(response(false, 3, "x").as_slice()).unwrap();
        assert_eq!(p.partial_success.unwrap().rejected_log_records, 3);
    }
}
