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

/// A varint at `at`; `None` when the bytes end first.
fn varint(b: &[u8], at: &mut usize) -> Result<Option<u64>, ScanError> {
    let mut v = 0u64;
    for shift in 0..10 {
        let Some(&byte) = b.get(*at) else {
            return Ok(None);
        };
        *at += 1;
        v |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(ScanError::Malformed(
        "protobuf: a varint longer than 10 bytes",
    ))
}

/// Whether the bytes are the whole request, or a prefix of it (decompression still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extent {
    Whole,
    /// What runs past the end is still to come: counted as far as it goes, never an error.
    Prefix,
}

const PAST_END: ScanError = ScanError::Malformed("protobuf: a field runs past the end");

fn cut(extent: Extent) -> Result<(), ScanError> {
    match extent {
        Extent::Whole => Err(PAST_END),
        Extent::Prefix => Ok(()),
    }
}

fn walk(
    b: &[u8],
    msg: Msg,
    depth: usize,
    extent: Extent,
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
        let Some(key) = varint(b, &mut at)? else {
            return cut(extent);
        };
        let number = key >> 3;
        if number == 0 {
            return Err(ScanError::Malformed("protobuf: field number 0"));
        }
        match key & 7 {
            0 => {
                if varint(b, &mut at)?.is_none() {
                    return cut(extent);
                }
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let Some(len) = varint(b, &mut at)? else {
                    return cut(extent);
                };
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                // In a prefix, a field that runs past the end is counted as far as it goes.
                let (end, inner) = match at.checked_add(len).filter(|&e| e <= b.len()) {
                    Some(e) => (e, extent),
                    None if extent == Extent::Prefix => (b.len(), Extent::Prefix),
                    None => return Err(PAST_END),
                };
                match msg.field(number) {
                    Field::Message(child) => {
                        counts.count(child, limits)?;
                        let size = if child.repeated() {
                            2 * child.size()
                        } else {
                            child.size()
                        };
                        counts.add_bytes(size, limits)?;
                        walk(&b[at..end], child, depth + 1, inner, limits, counts)?;
                    }
                    Field::Bytes => counts.add_bytes(end - at, limits)?,
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
            return cut(extent);
        }
    }
    Ok(())
}

/// Walks a protobuf `ExportLogsServiceRequest`, counting what decoding it would build.
pub fn protobuf(body: &[u8], limits: &Limits) -> Result<Counts, ScanError> {
    let mut counts = Counts::default();
    walk(body, Msg::Request, 0, Extent::Whole, limits, &mut counts)?;
    Ok(counts)
}

/// Walks the first bytes of a request whose rest is still being decompressed. Counts only
/// grow as bytes are added, so a limit passed here is passed by the whole request: a gzip
/// bomb is refused after a few KiB are inflated, not 16 MiB. Only a limit, or bytes that are
/// malformed whatever follows them, is an error.
pub fn protobuf_prefix(prefix: &[u8], limits: &Limits) -> Result<Counts, ScanError> {
    let mut counts = Counts::default();
    walk(prefix, Msg::Request, 0, Extent::Prefix, limits, &mut counts)?;
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
    fn a_prefix_over_a_limit_is_refused_and_no_prefix_of_a_good_request_is() {
        let limits = Limits {
            max_log_records: 1_000,
            ..Limits::default()
        };
        let bomb = empty_records(5_000);
        // the first 4 KiB hold 2,000 records already
        assert!(matches!(
            protobuf_prefix(&bomb[..4096], &limits),
            Err(ScanError::OverLimit {
                what: Limit::LogRecords,
                ..
            })
        ));
        let good = otlp::request(
            (0..500)
                .map(|i| otlp::envelope_record(&format!("{{\"i\":{i}}}")))
                .collect(),
        );
        for cut in (0..good.len()).step_by(97) {
            assert!(
                protobuf_prefix(&good[..cut], &limits).is_ok(),
                "cut at {cut}"
            );
        }
        assert!(
            protobuf(&good[..good.len() - 1], &limits).is_err(),
            "a cut request is malformed"
        );
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
