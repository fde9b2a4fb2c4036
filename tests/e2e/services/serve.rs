//! `zt-audit serve` as a process: protocol, hostile input, auth, drain, crash safety.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use zt_core::Hash32;
use zt_ingest::otlp::{envelope_record, request};
use zt_testkit::keys::seal_chain;

use crate::{
    assert_store_verifies, fixture_key, fixtures, s, serve, valid_lines, verify_db, verify_json, zt,
};

/// One request over raw HTTP/1.1 (status 0: no answer): (status, body, head).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>, String) {
    let a = zt_testkit::http::http(addr, method, path, headers, body);
    (a.status, a.body, a.head)
}

const PB: &[(&str, &str)] = &[("Content-Type", "application/x-protobuf")];
const PB_GZIP: &[(&str, &str)] = &[
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "gzip"),
];
const JSON: &[(&str, &str)] = &[("Content-Type", "application/json")];

/// `POST /v1/logs` with `headers`: (status, body, head).
fn post_logs(addr: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>, String) {
    http(addr, "POST", "/v1/logs", headers, body)
}

fn post_pb(addr: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let (s, b, _) = post_logs(addr, PB, body);
    (s, b)
}

fn string_body(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

/// `/metrics`, as text.
pub fn metrics(addr: &str) -> String {
    zt_testkit::http::get_text(addr, "/metrics")
}

/// Asserts the server stored `accepted` envelopes, saw `duplicates` again, rejected none.
pub fn assert_counts(addr: &str, accepted: u64, duplicates: u64) {
    let m = metrics(addr);
    for line in [
        format!("zt_ingest_envelopes_accepted_total {accepted}"),
        format!("zt_ingest_envelopes_duplicate_total {duplicates}"),
        "zt_ingest_envelopes_rejected_total 0".to_owned(),
    ] {
        assert!(m.contains(&line), "no `{line}` in\n{m}");
    }
}

#[test]
fn protobuf_and_json_land_once_however_often_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(&tmp.path().join("s.db"), &[]);
    let lines = valid_lines();
    let pb = request(lines.iter().map(|l| envelope_record(l)).collect());
    for _ in 0..3 {
        let (status, body) = post_pb(srv.addr(), &pb);
        assert_eq!(status, 200);
        let resp = ExportLogsServiceResponse::decode(body.as_slice()).unwrap();
        assert!(resp.partial_success.is_none(), "{resp:?}");
    }
    // the same envelopes again as OTLP/JSON, with the attribute instead of the field
    let recs: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| {
            serde_json::json!({"attributes": [{"key": "event.name", "value": {"stringValue": "zt.audit.decision"}}],
                               "body": {"stringValue": l}})
        })
        .collect();
    let json =
        serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": recs}]}]}).to_string();
    let (status, body, _) = post_logs(srv.addr(), JSON, json.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body, b"{}");
    assert_counts(srv.addr(), 12, 36);
    let (code, stop_err) = srv.signal("-TERM");
    assert_eq!(code, Some(0), "{stop_err}");
    assert!(stop_err.contains("drained"), "{stop_err}");
    assert_store_verifies(&tmp.path().join("s.db"), 12);
}

#[test]
fn rejected_envelopes_are_named_in_partial_success_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(&tmp.path().join("r.db"), &[]);
    let mut lines = valid_lines();
    lines[3] = lines[3].replace("\"allow\"", "\"deny\"");
    let pb = request(vec![
        envelope_record(&lines[0]),
        envelope_record(&lines[3]),
        envelope_record("not json at all"),
        LogRecord {
            body: string_body("an ordinary log line, not ours"),
            ..Default::default()
        },
    ]);
    let (status, body) = post_pb(srv.addr(), &pb);
    assert_eq!(status, 200);
    let ps = ExportLogsServiceResponse::decode(body.as_slice())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(ps.rejected_log_records, 2);
    assert!(
        ps.error_message.contains("does not recompute") && ps.error_message.contains("not JSON"),
        "{}",
        ps.error_message
    );
    drop(srv);
    let (code, report) = verify_db(&tmp.path().join("r.db"));
    assert_eq!(code, 1);
    let quarantined = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["file"] == "db:quarantine")
        .count();
    assert_eq!(quarantined, 2);
}

#[test]
fn hostile_input_gets_4xx_and_the_server_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(&tmp.path().join("h.db"), &[]);
    let a = srv.addr();
    // gzip bombs, ~64 KiB on the wire: 64 MiB of zeros is not protobuf (field 0), found in
    // the first inflated KiB; 64 MiB inside one field the schema skips is a 413 at 16 MiB
    let gzip = |bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    };
    let zeros = vec![0u8; 64 << 20];
    let mut skipped = vec![0x7a, 0x80, 0x80, 0x80, 0x20]; // field 15, 64 MiB long
    skipped.extend_from_slice(&zeros);
    for (bomb, want) in [(gzip(&zeros), 400), (gzip(&skipped), 413)] {
        let (s, body, _) = post_logs(a, PB_GZIP, &bomb);
        assert_eq!(s, want, "gzip bomb: {}", String::from_utf8_lossy(&body));
    }
    // 100 MB body
    let (s, _, _) = post_logs(a, PB, &vec![b'x'; 100 << 20]);
    assert_eq!(s, 413, "100 MB body");
    // deeply nested JSON
    let deep = format!(
        "{{\"resourceLogs\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (s, _, _) = post_logs(a, JSON, deep.as_bytes());
    assert_eq!(s, 400, "deep JSON");
    // invalid protobuf
    let (s, _, _) = post_logs(a, PB, b"\x0a\xff\xff\xff\xff\x0f garbage");
    assert_eq!(s, 400, "invalid protobuf");
    // wrong content type, wrong encoding, wrong method
    let (s, _, _) = post_logs(a, &[("Content-Type", "text/plain")], b"hello");
    assert_eq!(s, 415);
    let (s, _, _) = post_logs(
        a,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "br"),
        ],
        b"x",
    );
    assert_eq!(s, 415);
    let (s, _, _) = http(a, "GET", "/v1/logs", &[], b"");
    assert_eq!(s, 405);
    // invalid UTF-8 in a string body (protobuf strings must be UTF-8)
    let mut bad = request(vec![envelope_record("PLACEHOLDER")]);
    let pos = bad.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    bad[pos] = 0xff;
    let (s, _, _) = post_logs(a, PB, &bad);
    assert_eq!(s, 400, "invalid UTF-8");
    // a huge attribute value on a record that is not ours: accepted, ignored
    let big = LogRecord {
        attributes: vec![KeyValue {
            key: "blob".into(),
            value: string_body(&"y".repeat(8 << 20)),
        }],
        ..Default::default()
    };
    let (s, _) = post_pb(a, &request(vec![big]));
    assert_eq!(s, 200, "huge attribute");
    // tiny records: up to the limit (16,384 a request) they are fine, past it a 413
    let tiny = |n: usize| -> Vec<LogRecord> {
        (0..n)
            .map(|i| LogRecord {
                body: string_body(&i.to_string()),
                ..Default::default()
            })
            .collect()
    };
    let (s, _) = post_pb(a, &request(tiny(16_384)));
    assert_eq!(s, 200, "16,384 tiny records");
    let (s, body) = post_pb(a, &request(tiny(16_385)));
    assert_eq!(s, 413, "16,385 tiny records");
    let why = zt_ingest::otlp::Status::decode(body.as_slice())
        .unwrap()
        .message;
    assert!(why.contains("more than 16384 LogRecords"), "{why}");

    // still serving, memory bounded
    let (s, body, _) = http(a, "GET", "/healthz", &[], b"");
    assert_eq!((s, body.as_slice()), (200, &b"ok\n"[..]));
    let (s, _) = post_pb(a, &request(vec![envelope_record(&valid_lines()[0])]));
    assert_eq!(s, 200);
    let peak_mib = srv.peak_rss_kib() / 1024;
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB");
    // the limit is the operator's to set
    drop(srv);
    let srv = serve(&tmp.path().join("h2.db"), &["--max-log-records", "100"]);
    let (s, _) = post_pb(srv.addr(), &request(tiny(101)));
    assert_eq!(s, 413, "--max-log-records 100");
    let (s, _) = post_pb(srv.addr(), &request(tiny(100)));
    assert_eq!(s, 200);
}

/// A full queue answers 503 with Retry-After (exporters back off), and nothing answered 200 is
/// missing afterwards.
#[test]
fn a_full_queue_is_503_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(&tmp.path().join("q.db"), &["--queue", "1"]);
    // Heavy requests (signature checks) from many clients at once: one slot cannot hold them.
    let lines = valid_lines();
    let heavy: Vec<LogRecord> = (0..40)
        .flat_map(|_| lines.iter().map(|l| envelope_record(l)))
        .collect();
    let body = request(heavy);
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..24)
            .map(|_| {
                s.spawn(|| {
                    let (st, _, head) = post_logs(srv.addr(), PB, &body);
                    (st, head)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<&(u16, String)> = results.iter().filter(|r| r.0 == 503).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    assert!(
        !busy.is_empty(),
        "no 503 under load: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(ok > 0, "nothing accepted");
    assert_eq!(ok + busy.len(), results.len(), "only 200 or 503");
    assert!(
        busy.iter()
            .all(|r| r.1.to_ascii_lowercase().contains("retry-after: 1")),
        "{}",
        busy[0].1
    );
    assert!(metrics(srv.addr()).contains(&format!(
        "zt_ingest_requests_total{{outcome=\"busy\"}} {}",
        busy.len()
    )));
    drop(srv);
    assert_store_verifies(&tmp.path().join("q.db"), 12);
}

#[test]
fn tokens_are_required_when_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::write(&tokens, "# adapters\ns3cret-token\n").unwrap();
    let srv = serve(
        &tmp.path().join("t.db"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let body = request(vec![envelope_record(&valid_lines()[0])]);
    let (s, _, head) = post_logs(srv.addr(), PB, &body);
    assert_eq!(s, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    for (token, want) in [("Bearer wrong", 401), ("Bearer s3cret-token", 200)] {
        let headers = [
            ("Content-Type", "application/x-protobuf"),
            ("Authorization", token),
        ];
        let (s, _, _) = post_logs(srv.addr(), &headers, &body);
        assert_eq!(s, want, "{token}");
    }
}

#[test]
fn no_token_no_public_address() {
    let tmp = tempfile::tempdir().unwrap();
    let out = zt(&[
        "serve",
        "--db",
        tmp.path().join("p.db").to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to listen"));
}

/// Every envelope that got a 200 survives `kill -9` mid-load; the store verifies after restart.
#[test]
fn kill_9_loses_nothing_that_was_acknowledged() {
    use zt_core::envelope::V1Draft;
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("k.db");
    let srv = serve(&db, &[]);
    let key = fixture_key("test-only-a");
    let chain = seal_chain(0, 4000, Hash32::ZERO, Some((&key, "test-only-a")), |seq| {
        V1Draft {
            chain_id: "crash".into(),
            seq,
            actor: "agent".into(),
            action: "fs.read".into(),
            resource: format!("/r/{seq}"),
            decision: "allow".into(),
            reason: "ok".into(),
            timestamp: "2026-10-01T00:00:00Z".into(),
            ..V1Draft::default()
        }
    });
    let addr = srv.addr().to_owned();
    // The kill lands mid-load by construction, not by timing: the sender says when 25
    // requests were acknowledged, and keeps going until the server is gone.
    let (acked_25, mid_load) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for (i, batch) in chain.chunks(20).enumerate() {
            let body = request(batch.iter().map(|(j, _)| envelope_record(j)).collect());
            let (s, _) = post_pb(&addr, &body);
            if s != 200 {
                break;
            }
            acked.extend(batch.iter().map(|(_, h)| *h));
            if i == 24 {
                let _ = acked_25.send(());
            }
        }
        acked
    });
    mid_load
        .recv_timeout(Duration::from_secs(60))
        .expect("25 requests acknowledged");
    let (code, _) = srv.signal("-KILL");
    assert_eq!(code, None, "killed by a signal");
    let acked = sender.join().unwrap();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    assert!(
        acked.len() < 4000,
        "the load finished before the kill; raise it"
    );
    // restart on the same store, then check
    let srv = serve(&db, &[]);
    drop(srv);
    let stored: std::collections::HashSet<String> = zt_testkit::store::records(&db)
        .iter()
        .filter(|r| r["chain_id"] == "crash")
        .map(|r| r["current_hash"].as_str().unwrap().to_owned())
        .collect();
    let lost = acked
        .iter()
        .filter(|h| !stored.contains(&h.to_hex()))
        .count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged envelopes lost",
        acked.len()
    );
    let ring = tmp.path().join("ring.json");
    std::fs::copy(fixtures().join("v1/keyring.json"), &ring).unwrap();
    let (code, report) = verify_json(&["--db", s(&db), "--keyring", s(&ring)]);
    assert_eq!(code, 0, "{report:#}");
}

/// An `ExportLogsServiceRequest` of `n` empty LogRecords in one ScopeLogs, written on the
/// wire directly (building it with prost would cost the test what it costs the server), then
/// gzip-compressed: 2 bytes a record, ~16 KiB on the wire for 8.4 million.
fn empty_records_bomb(n: usize) -> Vec<u8> {
    fn varint(mut v: usize, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut scope = Vec::with_capacity(2 * n + 16);
    scope.push(0x12); // ResourceLogs.scope_logs
    varint(2 * n, &mut scope);
    for _ in 0..n {
        scope.extend_from_slice(&[0x12, 0x00]); // ScopeLogs.log_records: an empty LogRecord
    }
    let mut req = vec![0x0a]; // ExportLogsServiceRequest.resource_logs
    varint(scope.len(), &mut req);
    req.extend_from_slice(&scope);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&req).unwrap();
    gz.finish().unwrap()
}

/// Largest count that keeps the decompressed request under the 16 MiB body limit.
const BOMB_RECORDS: usize = (16 << 20) / 2 - 16;

/// Attack: 16 KiB of gzip that decodes into 8.4 million LogRecords. Without a count the
/// decoder builds them all (1.5 GB) and answers 200; it must be refused by count first.
#[test]
fn an_empty_record_bomb_is_refused_by_count_before_it_is_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = serve(&tmp.path().join("b.db"), &[]);
    let bomb = empty_records_bomb(BOMB_RECORDS);
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let (s, body, _) = post_logs(srv.addr(), PB_GZIP, &bomb);
    assert_eq!(s, 413, "{}", String::from_utf8_lossy(&body));
    let status = zt_ingest::otlp::Status::decode(body.as_slice()).unwrap();
    assert!(
        status.message.contains("LogRecords") && status.message.contains("16384"),
        "the answer names the limit: {}",
        status.message
    );
    let peak_mib = srv.peak_rss_kib() / 1024;
    assert!(peak_mib < 128, "peak RSS {peak_mib} MiB");
    // still serving
    let (s, _) = post_pb(
        srv.addr(),
        &request(vec![envelope_record(&valid_lines()[0])]),
    );
    assert_eq!(s, 200);
}

/// Attack: with tokens configured, senders without one announce large bodies and send them
/// slowly (or never). Each must be refused on its headers, before its body is read, so they
/// cannot hold every request slot while an exporter with a token waits.
#[test]
fn tokenless_senders_are_refused_before_their_bodies_and_hold_no_slot() {
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::write(&tokens, "s3cret-token\n").unwrap();
    let srv = serve(
        &tmp.path().join("t.db"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let head = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        srv.addr(),
        8 << 20
    );
    // 64 tokenless senders, the receiver's whole concurrency, each sending headers only.
    let mut idle = Vec::new();
    for _ in 0..64 {
        let mut s = TcpStream::connect(srv.addr()).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        idle.push(s);
    }
    let mut first = idle.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 64];
    let n = first.read(&mut answer).unwrap_or(0);
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "a tokenless sender was not refused on its headers: {answer:?}"
    );
    // Meanwhile an exporter with the token gets through at once.
    let started = std::time::Instant::now();
    let (s, _, _) = post_logs(
        srv.addr(),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Authorization", "Bearer s3cret-token"),
        ],
        &request(vec![envelope_record(&valid_lines()[0])]),
    );
    assert_eq!(s, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the exporter waited {:?} behind tokenless senders",
        started.elapsed()
    );
    drop(idle);
}

/// 64 bombs at once (the receiver's whole concurrency) and an OTLP/JSON one: memory stays
/// bounded by the decoding permits, every bomb gets a 413, and an exporter's envelopes still
/// land meanwhile.
#[test]
fn sixty_four_bombs_at_once_leave_memory_bounded_and_envelopes_landing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    let srv = serve(&db, &[]);
    let bomb = empty_records_bomb(BOMB_RECORDS);
    let lines = valid_lines();
    let (bombs, landed) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..64)
            .map(|_| s.spawn(|| post_logs(srv.addr(), PB_GZIP, &bomb).0))
            .collect();
        // the legitimate exporter, one envelope a request, while the bombs go off
        let mut landed = 0;
        for l in &lines {
            let (st, _) = post_pb(srv.addr(), &request(vec![envelope_record(l)]));
            landed += usize::from(st == 200);
        }
        (
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
            landed,
        )
    });
    assert!(bombs.iter().all(|&st| st == 413), "{bombs:?}");
    assert_eq!(landed, lines.len());
    // OTLP/JSON: 16 MiB of empty records is refused on its estimated decoded size
    let json = format!(
        "{{\"resourceLogs\":[{{\"scopeLogs\":[{{\"logRecords\":[{}]}}]}}]}}",
        vec!["{}"; 5_000_000].join(",")
    );
    let (st, body, _) = post_logs(srv.addr(), JSON, json.as_bytes());
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("bytes once decoded"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let peak_mib = srv.peak_rss_kib() / 1024;
    assert!(peak_mib < 256, "peak RSS {peak_mib} MiB");
    assert!(metrics(srv.addr()).contains("zt_ingest_requests_total{outcome=\"over_limit\"} 65"));
    drop(srv);
    assert_store_verifies(&db, lines.len() as u64);
}
