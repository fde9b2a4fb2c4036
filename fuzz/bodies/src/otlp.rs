//! OTLP/HTTP logs bodies: the count-first wire walk (`zt_ingest::scan`) and the decoders
//! (`zt_ingest::otlp`), protobuf and OTLP/JSON.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use serde_json::{json, Value as Json};
use zt_core::json as zjson;
use zt_ingest::otlp::{self, DecodeError, Extracted};
use zt_ingest::scan::{self, Counts, Limit, Limits, ScanError};

use crate::shown::shown;

/// Small limits, so that inputs of a few KiB reach every one of them.
pub const LIMITS: Limits = Limits {
    max_log_records: 64,
    max_resource_logs: 8,
    max_scope_logs: 16,
    max_decoded_bytes: 256 << 10,
};

fn within(a: &Counts, b: &Counts) -> bool {
    a.resource_logs <= b.resource_logs
        && a.scope_logs <= b.scope_logs
        && a.log_records <= b.log_records
        && a.decoded_bytes <= b.decoded_bytes
}

/// What a decode came to, to compare two decodes: envelopes, how many unusable, how many
/// ignored.
fn outcome(x: &Extracted) -> (&[Vec<u8>], usize, u64) {
    (&x.envelopes, x.unusable.len(), x.ignored)
}

/// `otlp_protobuf`: a binary `ExportLogsServiceRequest`.
///
/// - The scan is monotone: when the whole body scans, every prefix scans too
///   (`protobuf_prefix`) with no larger counts; a prefix refused means the whole is refused.
/// - The decoder answers as the scan did: over a limit or malformed alike, and never over a
///   limit when the scan passed.
/// - Whatever decodes was counted exactly: the ResourceLogs, ScopeLogs and LogRecords prost
///   built are the scan's counts, and every LogRecord is an envelope, unusable or ignored.
/// - Re-encoding what prost decoded gives the same envelopes, counts no more, and the same
///   request written as OTLP/JSON (`to_otlp_json`) gives the same envelopes through the JSON
///   decoder.
pub fn protobuf(data: &[u8]) {
    let whole = scan::protobuf(data, &LIMITS);
    let mut cuts = [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)];
    if let Some(&b) = data.first() {
        cuts[0] = usize::from(b) % (data.len() + 1);
    }
    for cut in cuts {
        let prefix = scan::protobuf_prefix(&data[..cut], &LIMITS);
        match (&prefix, &whole) {
            (Ok(p), Ok(w)) => assert!(
                within(p, w),
                "a prefix counts more than the whole: {p:?} > {w:?} (cut {cut})\ninput: {}",
                shown(data)
            ),
            (Err(e), Ok(w)) => panic!(
                "prefix refused ({e}) but the whole scans ({w:?}), cut {cut}\ninput: {}",
                shown(data)
            ),
            (_, Err(_)) => {}
        }
    }

    let decoded = otlp::from_protobuf(data, &LIMITS);
    let counts = match (&whole, &decoded) {
        (Err(ScanError::OverLimit { .. }), Err(DecodeError::OverLimit(_)))
        | (Err(ScanError::Malformed(_)), Err(DecodeError::Malformed(_))) => return,
        (Ok(_), Err(DecodeError::Malformed(_))) => return,
        (Ok(c), Ok(_)) => *c,
        (w, d) => panic!(
            "scan and decoder disagree: scan {w:?}, decoder {d:?}\ninput: {}",
            shown(data)
        ),
    };
    let Ok(x) = decoded else { return };
    let req = ExportLogsServiceRequest::decode(data)
        .unwrap_or_else(|e| panic!("from_protobuf decoded what prost does not: {e}"));
    let built = Counts {
        resource_logs: req.resource_logs.len() as u64,
        scope_logs: req
            .resource_logs
            .iter()
            .map(|r| r.scope_logs.len() as u64)
            .sum(),
        log_records: req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum(),
        decoded_bytes: counts.decoded_bytes,
    };
    assert_eq!(
        built,
        counts,
        "the scan did not count what prost built\ninput: {}",
        shown(data)
    );
    assert_eq!(
        x.envelopes.len() as u64 + x.unusable.len() as u64 + x.ignored,
        counts.log_records,
        "LogRecords lost between decoding and extraction"
    );

    // Re-encoded, the same request.
    let again = req.encode_to_vec();
    let c2 = scan::protobuf(&again, &LIMITS)
        .unwrap_or_else(|e| panic!("re-encoded request does not scan: {e}"));
    assert_eq!(
        (c2.resource_logs, c2.scope_logs, c2.log_records),
        (counts.resource_logs, counts.scope_logs, counts.log_records)
    );
    assert!(
        c2.decoded_bytes <= counts.decoded_bytes,
        "re-encoding grew the estimate: {} > {}",
        c2.decoded_bytes,
        counts.decoded_bytes
    );
    let x2 = otlp::from_protobuf(&again, &LIMITS)
        .unwrap_or_else(|e| panic!("re-encoded request does not decode: {e}"));
    assert_eq!(
        outcome(&x2),
        outcome(&x),
        "re-encoding changed what was extracted"
    );

    // The same request in the other encoding.
    let text = to_otlp_json(&req).to_string();
    match otlp::from_json(text.as_bytes(), &Limits::default()) {
        Ok(xj) => assert_eq!(
            outcome(&xj),
            outcome(&x),
            "protobuf and OTLP/JSON of one request disagree\ninput: {}\njson: {}",
            shown(data),
            shown(text.as_bytes())
        ),
        // serde_json stops at 128 levels of nesting, prost at 100 messages: an AnyValue nested
        // ~30 deep decodes as protobuf and not as JSON (README).
        Err(DecodeError::Malformed(m)) if m.contains("recursion limit") => {}
        Err(DecodeError::OverLimit(_)) => {}
        Err(e) => panic!(
            "the OTLP/JSON form of a decoded request is refused: {e}\njson: {}",
            shown(text.as_bytes())
        ),
    }
}

/// The OTLP/JSON form (lowerCamelCase, int64 as strings, bytes as base64) of what the
/// decoders read of a request: log records' event names, attributes and bodies.
pub fn to_otlp_json(req: &ExportLogsServiceRequest) -> Json {
    let rls: Vec<Json> = req
        .resource_logs
        .iter()
        .map(|rl| {
            let sls: Vec<Json> = rl
                .scope_logs
                .iter()
                .map(|sl| {
                    let lrs: Vec<Json> = sl
                        .log_records
                        .iter()
                        .map(|lr| {
                            let mut o = serde_json::Map::new();
                            if !lr.event_name.is_empty() {
                                o.insert("eventName".into(), lr.event_name.clone().into());
                            }
                            if !lr.attributes.is_empty() {
                                o.insert("attributes".into(), key_values(&lr.attributes));
                            }
                            if let Some(b) = &lr.body {
                                o.insert("body".into(), any_json(b));
                            }
                            Json::Object(o)
                        })
                        .collect();
                    json!({ "logRecords": lrs })
                })
                .collect();
            json!({ "scopeLogs": sls })
        })
        .collect();
    json!({ "resourceLogs": rls })
}

fn key_values(kvs: &[KeyValue]) -> Json {
    Json::Array(
        kvs.iter()
            .map(|kv| match &kv.value {
                Some(v) => json!({"key": kv.key, "value": any_json(v)}),
                None => json!({"key": kv.key}),
            })
            .collect(),
    )
}

fn any_json(v: &AnyValue) -> Json {
    use any_value::Value as V;
    match &v.value {
        None => json!({}),
        Some(V::StringValue(s)) => json!({ "stringValue": s }),
        Some(V::BoolValue(b)) => json!({ "boolValue": b }),
        Some(V::IntValue(i)) => json!({ "intValue": i.to_string() }),
        // JSON has no NaN or infinity: written as a string, which the JSON decoder refuses as
        // the protobuf one refuses the double.
        Some(V::DoubleValue(d)) if d.is_finite() => json!({ "doubleValue": d }),
        Some(V::DoubleValue(d)) => json!({ "doubleValue": d.to_string() }),
        Some(V::BytesValue(b)) => {
            json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(b) })
        }
        Some(V::ArrayValue(a)) => {
            json!({ "arrayValue": { "values": a.values.iter().map(any_json).collect::<Vec<_>>() } })
        }
        Some(V::KvlistValue(kv)) => json!({ "kvlistValue": { "values": key_values(&kv.values) } }),
    }
}

/// `otlp_json`: an OTLP/JSON `ExportLogsServiceRequest`.
///
/// - The decoder answers as the estimate did when the estimate refuses; past the estimate,
///   only a count limit (never the decoded size) refuses it.
/// - What it extracts stays within the LogRecord limit, and what it keeps of an unusable body
///   is canonical JSON (RFC 8785) or nothing; an envelope built from a kvlist body is
///   canonical JSON too (a string body is kept byte for byte).
pub fn json(data: &[u8]) {
    let estimate = scan::json(data, &LIMITS);
    let decoded = otlp::from_json(data, &LIMITS);
    match (&estimate, &decoded) {
        (
            Err(ScanError::OverLimit { what, .. }),
            Err(DecodeError::OverLimit(ScanError::OverLimit { what: w, .. })),
        ) => {
            assert_eq!(what, w);
            return;
        }
        (Err(e), d) => panic!("estimate refused ({e}) but the decoder said {d:?}"),
        (
            Ok(_),
            Err(DecodeError::OverLimit(ScanError::OverLimit {
                what: Limit::DecodedBytes,
                ..
            })),
        ) => panic!("decoded size refused after the estimate passed"),
        (Ok(_), Err(_)) => return,
        (Ok(_), Ok(_)) => {}
    }
    let Ok(x) = decoded else { return };
    assert!(
        x.envelopes.len() as u64 + x.unusable.len() as u64 + x.ignored <= LIMITS.max_log_records,
        "more LogRecords than the limit"
    );
    for (kept, reason) in &x.unusable {
        if kept.is_empty() {
            continue;
        }
        let v = zjson::parse(kept).unwrap_or_else(|e| {
            panic!(
                "unusable body kept as text that is not JSON ({e}; {reason}): {}",
                shown(kept)
            )
        });
        assert_eq!(
            &zjson::canonicalize(&v),
            kept,
            "unusable body not kept canonical"
        );
    }
    // A kvlist envelope is canonical; a string one is whatever the sender wrote. Which is
    // which is not in `Extracted`, so only the first kind's property is checked where the
    // envelope is canonical JSON already when re-read.
    for e in &x.envelopes {
        if let Ok(v) = zjson::parse(e) {
            let c = zjson::canonicalize(&v);
            let again = zjson::parse(&c).unwrap_or_else(|err| {
                panic!("canonical form of an envelope does not re-parse: {err}")
            });
            assert_eq!(zjson::canonicalize(&again), c);
        }
    }
}
