//! Count first, decode second: what an OTLP logs request would cost to decode, found without
//! decoding it.
//!
//! A decoder builds whatever the bytes describe. Protobuf makes that cheap to abuse: an empty
//! LogRecord is 2 bytes on the wire and ~200 in memory, so 16 MiB of them (16 KiB gzipped) is
//! 8.4 million records and 1.5 GB. So before `prost` (or `serde_json`) allocates anything, a
//! walk over the bytes counts what it would build, and the request is refused, naming the
//! limit, as soon as a count passes one:
//!
//! - **protobuf** ([`protobuf`]): the wire format is walked with the schema of
//!   `ExportLogsServiceRequest` (opentelemetry-proto `logs/v1`, `common/v1`, `resource/v1`):
//!   every message that decoding would build is counted (ResourceLogs, ScopeLogs and
//!   LogRecords against their own limits) and its in-memory size added to an estimate of
//!   the decoded size: `size_of` of the generated type, twice for the elements of repeated
//!   fields (a growing `Vec` holds up to twice what it needs), plus the bytes of every string
//!   and bytes field. Fields the schema does not know are skipped, as prost skips them
//!   without allocating. Nesting deeper than prost's own recursion limit (100) is refused
//!   here, so the walk's stack is bounded too. The walk allocates nothing and stops at the
//!   first limit passed.
//! - **OTLP/JSON** ([`json`]): a byte scan outside string literals counts the values
//!   `serde_json` would build (each follows a `{`, `[` or `,`, or is the whole text) and
//!   estimates their size the same way, objects at the size of a B-tree leaf they
//!   allocate. The LogRecord, ScopeLogs and ResourceLogs counts are checked on the parsed
//!   tree, whose size the estimate has already bounded.
//!
//! Either way the decoder then runs with a known bound on what it allocates.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// How much one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// LogRecords in one request (default 16,384: 32 times the OpenTelemetry SDK's default
    /// batch of 512, twice the Collector's default batch of 8,192).
    pub max_log_records: u64,
    /// ResourceLogs in one request (default 1,024).
    pub max_resource_logs: u64,
    /// ScopeLogs in one request, all ResourceLogs together (default 4,096).
    pub max_scope_logs: u64,
    /// Estimated memory of the decoded request, in bytes (default 64 MiB).
    pub max_decoded_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_log_records: 16_384,
            max_resource_logs: 1_024,
            max_scope_logs: 4_096,
            max_decoded_bytes: 64 << 20,
        }
    }
}

/// Which limit a request passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_log_records`].
    LogRecords,
    /// [`Limits::max_resource_logs`].
    ResourceLogs,
    /// [`Limits::max_scope_logs`].
    ScopeLogs,
    /// [`Limits::max_decoded_bytes`].
    DecodedBytes,
}

impl Limit {
    /// What is counted, for people.
    pub fn what(self) -> &'static str {
        match self {
            Self::LogRecords => "LogRecords",
            Self::ResourceLogs => "ResourceLogs",
            Self::ScopeLogs => "ScopeLogs",
            Self::DecodedBytes => "bytes once decoded",
        }
    }
}

/// Why a request is not decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// It would pass a limit (HTTP 413).
    #[error("the request holds more than {limit} {} (this receiver's limit per request)", .what.what())]
    OverLimit {
        /// Which limit.
        what: Limit,
        /// Its value.
        limit: u64,
    },
    /// The bytes are not what they claim to be (HTTP 400).
    #[error("{0}")]
    Malformed(&'static str),
}

/// What a scan counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// ResourceLogs.
    pub resource_logs: u64,
    /// ScopeLogs.
    pub scope_logs: u64,
    /// LogRecords.
    pub log_records: u64,
    /// Estimated decoded size, bytes.
    pub decoded_bytes: u64,
}

impl Counts {
    fn add_bytes(&mut self, n: usize, limits: &Limits) -> Result<(), ScanError> {
        self.decoded_bytes = self.decoded_bytes.saturating_add(n as u64);
        if self.decoded_bytes > limits.max_decoded_bytes {
            return Err(ScanError::OverLimit {
                what: Limit::DecodedBytes,
                limit: limits.max_decoded_bytes,
            });
        }
        Ok(())
    }

    fn count(&mut self, m: Msg, limits: &Limits) -> Result<(), ScanError> {
        let (n, limit, what) = match m {
            Msg::ResourceLogs => (
                &mut self.resource_logs,
                limits.max_resource_logs,
                Limit::ResourceLogs,
            ),
            Msg::ScopeLogs => (
                &mut self.scope_logs,
                limits.max_scope_logs,
                Limit::ScopeLogs,
            ),
            Msg::LogRecord => (
                &mut self.log_records,
                limits.max_log_records,
                Limit::LogRecords,
            ),
            _ => return Ok(()),
        };
        *n += 1;
        if *n > limit {
            return Err(ScanError::OverLimit { what, limit });
        }
        Ok(())
    }
}

/// The messages of `ExportLogsServiceRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Request,
    ResourceLogs,
    Resource,
    EntityRef,
    ScopeLogs,
    Scope,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
}

/// What a length-delimited field of a message is.
enum Field {
    /// A nested message.
    Message(Msg),
    /// A string or bytes field: its bytes are copied out.
    Bytes,
    /// Not in the schema (skipped by prost, so by us).
    Unknown,
}

impl Msg {
    /// Memory the decoded message takes, before what its fields point to.
    fn size(self) -> usize {
        use std::mem::size_of;
        match self {
            Self::Request => 0,
            Self::ResourceLogs => size_of::<ResourceLogs>(),
            Self::Resource => size_of::<Resource>(),
            Self::EntityRef => size_of::<EntityRef>(),
            Self::ScopeLogs => size_of::<ScopeLogs>(),
            Self::Scope => size_of::<InstrumentationScope>(),
            Self::LogRecord => size_of::<LogRecord>(),
            Self::KeyValue => size_of::<KeyValue>(),
            Self::AnyValue => size_of::<AnyValue>(),
            Self::ArrayValue => size_of::<ArrayValue>(),
            Self::KvList => size_of::<KeyValueList>(),
        }
    }

    /// The schema: field numbers of length-delimited fields (opentelemetry-proto v1.x).
    fn field(self, number: u64) -> Field {
        use Field::{Bytes, Message, Unknown};
        match (self, number) {
            (Self::Request, 1) => Message(Self::ResourceLogs),
            (Self::ResourceLogs, 1) => Message(Self::Resource),
            (Self::ResourceLogs, 2) => Message(Self::ScopeLogs),
            (Self::ResourceLogs | Self::ScopeLogs, 3) => Bytes,
            (Self::Resource, 1) | (Self::Scope, 3) | (Self::LogRecord, 6) | (Self::KvList, 1) => {
                Message(Self::KeyValue)
            }
            (Self::Resource, 3) => Message(Self::EntityRef),
            (Self::EntityRef, 1..=4) => Bytes,
            (Self::ScopeLogs, 1) => Message(Self::Scope),
            (Self::ScopeLogs, 2) => Message(Self::LogRecord),
            (Self::Scope, 1 | 2) => Bytes,
            (Self::LogRecord, 3 | 9 | 10 | 12) => Bytes,
            (Self::LogRecord, 5) | (Self::KeyValue, 2) | (Self::ArrayValue, 1) => {
                Message(Self::AnyValue)
            }
            (Self::KeyValue, 1) => Bytes,
            (Self::AnyValue, 1 | 7) => Bytes,
            (Self::AnyValue, 5) => Message(Self::ArrayValue),
            (Self::AnyValue, 6) => Message(Self::KvList),
            _ => Unknown,
        }
    }

    /// Whether the field holding this message is repeated (its `Vec` may hold twice its
    /// elements' size while it grows). `AnyValue` is repeated in an array and inline
    /// elsewhere; counting it as repeated errs towards refusing.
    fn repeated(self) -> bool {
        matches!(
            self,
            Self::ResourceLogs
                | Self::ScopeLogs
                | Self::LogRecord
                | Self::KeyValue
                | Self::EntityRef
                | Self::AnyValue
        )
    }
}

/// prost's own recursion limit: deeper nesting does not decode anyway.
const MAX_DEPTH: usize = 100;

fn varint(b: &[u8], at: &mut usize) -> Result<u64, ScanError> {
    let mut v = 0u64;
    for shift in 0..10 {
        let byte = *b
            .get(*at)
            .ok_or(ScanError::Malformed("protobuf: a varint runs past the end"))?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(ScanError::Malformed(
        "protobuf: a varint longer than 10 bytes",
    ))
}

fn walk(
    b: &[u8],
    msg: Msg,
    depth: usize,
    limits: &Limits,
    counts: &mut Counts,
) -> Result<(), ScanError> {
    if depth > MAX_DEPTH {
        return Err(ScanError::Malformed(
            "protobuf: messages nested deeper than 100 levels",
        ));
    }
    let mut at = 0;
    while at < b.len() {
        let key = varint(b, &mut at)?;
        let number = key >> 3;
        if number == 0 {
            return Err(ScanError::Malformed("protobuf: field number 0"));
        }
        match key & 7 {
            0 => {
                varint(b, &mut at)?;
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = usize::try_from(varint(b, &mut at)?)
                    .map_err(|_| ScanError::Malformed("protobuf: a length past the end"))?;
                let end = at
                    .checked_add(len)
                    .filter(|&e| e <= b.len())
                    .ok_or(ScanError::Malformed("protobuf: a length past the end"))?;
                match msg.field(number) {
                    Field::Message(child) => {
                        counts.count(child, limits)?;
                        let size = if child.repeated() {
                            2 * child.size()
                        } else {
                            child.size()
                        };
                        counts.add_bytes(size, limits)?;
                        walk(&b[at..end], child, depth + 1, limits, counts)?;
                    }
                    Field::Bytes => counts.add_bytes(len, limits)?,
                    Field::Unknown => {}
                }
                at = end;
            }
            // Groups (3, 4) are proto2's and never in OTLP; 6 and 7 are not wire types.
            _ => {
                return Err(ScanError::Malformed(
                    "protobuf: a wire type OTLP does not use (group or invalid)",
                ))
            }
        }
        if at > b.len() {
            return Err(ScanError::Malformed("protobuf: a field runs past the end"));
        }
    }
    Ok(())
}

/// Walks a protobuf `ExportLogsServiceRequest`, counting what decoding it would build.
pub fn protobuf(body: &[u8], limits: &Limits) -> Result<Counts, ScanError> {
    let mut counts = Counts::default();
    walk(body, Msg::Request, 0, limits, &mut counts)?;
    Ok(counts)
}

/// Memory of one `serde_json::Value` in its parent (a `Vec` slot or a map entry), twice for
/// growth.
const JSON_VALUE_COST: usize =
    2 * (std::mem::size_of::<serde_json::Value>() + std::mem::size_of::<String>());
/// An object allocates a B-tree leaf for its first member: room for 11 entries.
const JSON_OBJECT_COST: usize =
    11 * (std::mem::size_of::<serde_json::Value>() + std::mem::size_of::<String>()) + 64;

/// Scans OTLP/JSON text, estimating what `serde_json` would build for it.
pub fn json(body: &[u8], limits: &Limits) -> Result<Counts, ScanError> {
    let mut counts = Counts::default();
    // Strings are copied out: their bytes count once, in bulk.
    counts.add_bytes(body.len(), limits)?;
    counts.add_bytes(JSON_VALUE_COST, limits)?;
    let mut in_string = false;
    let mut escaped = false;
    for &c in body {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        let cost = match c {
            b'"' => {
                in_string = true;
                0
            }
            b'{' => JSON_OBJECT_COST + JSON_VALUE_COST,
            b'[' | b',' => JSON_VALUE_COST,
            _ => 0,
        };
        if cost > 0 {
            counts.add_bytes(cost, limits)?;
        }
    }
    Ok(counts)
}

/// Checks the counts of a parsed OTLP/JSON request against `limits`.
pub(crate) fn check_json_counts(
    resource_logs: u64,
    scope_logs: u64,
    log_records: u64,
    limits: &Limits,
) -> Result<(), ScanError> {
    for (n, limit, what) in [
        (resource_logs, limits.max_resource_logs, Limit::ResourceLogs),
        (scope_logs, limits.max_scope_logs, Limit::ScopeLogs),
        (log_records, limits.max_log_records, Limit::LogRecords),
    ] {
        if n > limit {
            return Err(ScanError::OverLimit { what, limit });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use prost::Message;

    fn empty_records(n: usize) -> Vec<u8> {
        otlp::request((0..n).map(|_| LogRecord::default()).collect())
    }

    #[test]
    fn counts_match_what_prost_decodes() {
        let body = otlp::request(vec![
            otlp::envelope_record("{\"a\":1}"),
            LogRecord {
                attributes: vec![KeyValue {
                    key: "k".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::ArrayValue(ArrayValue {
                            values: vec![AnyValue::default(); 3],
                        })),
                    }),
                }],
                ..Default::default()
            },
        ]);
        let c = protobuf(&body, &Limits::default()).unwrap();
        assert_eq!((c.resource_logs, c.scope_logs, c.log_records), (1, 1, 2));
        assert!(c.decoded_bytes > 2 * std::mem::size_of::<LogRecord>() as u64);
        let decoded = ExportLogsServiceRequest::decode(body.as_slice()).unwrap();
        assert_eq!(decoded.resource_logs[0].scope_logs[0].log_records.len(), 2);
    }

    #[test]
    fn each_limit_is_named_when_passed() {
        let limits = Limits {
            max_log_records: 10,
            ..Limits::default()
        };
        assert!(protobuf(&empty_records(10), &limits).is_ok());
        assert_eq!(
            protobuf(&empty_records(11), &limits),
            Err(ScanError::OverLimit {
                what: Limit::LogRecords,
                limit: 10
            })
        );
        let small = Limits {
            max_decoded_bytes: 4096,
            ..Limits::default()
        };
        let e = protobuf(&empty_records(100), &small).unwrap_err();
        assert_eq!(
            e,
            ScanError::OverLimit {
                what: Limit::DecodedBytes,
                limit: 4096
            }
        );
        assert!(e.to_string().contains("4096 bytes once decoded"), "{e}");
        // many ScopeLogs, each empty
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs::default(); 5],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let few = Limits {
            max_scope_logs: 4,
            ..Limits::default()
        };
        assert!(matches!(
            protobuf(&req, &few),
            Err(ScanError::OverLimit {
                what: Limit::ScopeLogs,
                ..
            })
        ));
    }

    #[test]
    fn a_wide_attribute_list_counts_against_the_decoded_size() {
        // One LogRecord, 200,000 empty attributes: 400 KB on the wire, ~25 MB decoded.
        let rec = LogRecord {
            attributes: vec![KeyValue::default(); 200_000],
            ..Default::default()
        };
        let body = otlp::request(vec![rec]);
        let small = Limits {
            max_decoded_bytes: 8 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            protobuf(&body, &small),
            Err(ScanError::OverLimit {
                what: Limit::DecodedBytes,
                ..
            })
        ));
    }

    #[test]
    fn malformed_wire_data_is_refused_not_walked() {
        for bad in [
            &b"\x0a\xff\xff\xff\xff\x0f"[..], // a length past the end
            b"\x0a\x05\x12",                  // truncated
            b"\x0b",                          // a group
            b"\x00\x01",                      // field 0
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // an 11-byte varint
        ] {
            assert!(
                matches!(
                    protobuf(bad, &Limits::default()),
                    Err(ScanError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        // nesting: AnyValue -> ArrayValue -> AnyValue ... 120 deep
        let mut v = AnyValue::default();
        for _ in 0..60 {
            v = AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
            };
        }
        let body = otlp::request(vec![LogRecord {
            body: Some(v),
            ..Default::default()
        }]);
        assert!(matches!(
            protobuf(&body, &Limits::default()),
            Err(ScanError::Malformed(_))
        ));
    }

    #[test]
    fn json_values_are_estimated_before_parsing() {
        let body = format!(
            "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{}]}}]}}]}}",
            vec!["{}"; 100_000].join(",")
        );
        let small = Limits {
            max_decoded_bytes: 8 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            json(body.as_bytes(), &small),
            Err(ScanError::OverLimit {
                what: Limit::DecodedBytes,
                ..
            })
        ));
        // braces inside strings are text, not objects
        let text = format!("{{\"a\":\"{}\"}}", "{".repeat(100_000));
        assert!(json(text.as_bytes(), &small).is_ok());
    }
}
