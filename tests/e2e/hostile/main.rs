//! The hostile-input sweep: a corpus of bad bodies, paths and headers (deep nesting, huge
//! strings, many members, duplicate members, NUL, lone surrogates, bidi and zero-width
//! characters, huge numbers, invalid UTF-8, oversized policies and tokens) sent to every
//! route of `control-plane` and `serve`, each as its own request over raw HTTP/1.1.
//!
//! For each: a 4xx answer (a status, never a 5xx, never a closed connection without one, never
//! a 2xx), the process still alive and answering `/healthz`, and at the end its peak resident
//! memory (VmHWM) under [`PEAK_RSS_MIB`]. Each route first answers its own well-formed body
//! with a 2xx, so the sweep reaches the body readers rather than stopping at a gate.
//!
//! `serve` keeps every record it can frame, suspicious ones flagged (evidence is never
//! dropped), so for it the corpus is hostile *wire* input: an OTLP request that does not read.
//! Its own binary: it sends some hundred megabytes in all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use serde_json::{json, Value};
use zt_testkit::http::{request, Answer};
use zt_testkit::{s, Bin};

/// Peak resident memory either server may reach over the whole sweep (measured 2026-12-06:
/// serve 30 MiB, control-plane 65 MiB, debug builds). The largest bodies are 16 MiB (serve's
/// limit) and 1 MiB (the control plane's); what a server holds per request is a small
/// multiple of that.
const PEAK_RSS_MIB: u64 = 256;

/// A public key (P-256, SEC1 uncompressed, hex) to register a broker with; its private half is
/// not needed here.
const BROKER_KEY: &str = "047135fa4fd93a09dce98bbf681b4bfcf50e7c0d6354e62afb0bff2a3429617865ed4c1f02ddb9023ee56a557e515d6a9dc66c11f220960de594334df588776724";

/// A server under the sweep, and its name for the messages.
struct Server {
    server: zt_testkit::Server,
    name: &'static str,
}

impl Server {
    fn start(name: &'static str, args: &[&str]) -> Server {
        let server = zt_testkit::Server::start(
            Bin::under_test(env!("CARGO_BIN_EXE_zt-audit")).command(args),
        );
        Server { server, name }
    }

    /// One request on a connection of its own; an answer it must give.
    fn send(&self, method: &str, path: &[u8], headers: &[(&str, &[u8])], body: Vec<u8>) -> Answer {
        let shown = || String::from_utf8_lossy(&path[..path.len().min(80)]).into_owned();
        let a = request(self.server.addr(), method, path, headers, &body)
            .unwrap_or_else(|e| panic!("{}: {method} {}: no answer: {e}", self.name, shown()));
        assert!(
            a.status != 0,
            "{}: {method} {}: not an HTTP answer: {:?}",
            self.name,
            shown(),
            &a.head[..a.head.len().min(200)]
        );
        a
    }

    fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path.as_bytes(),
            &[("Content-Type", b"application/json")],
            body.to_string().into_bytes(),
        )
    }

    /// Alive: the process has not exited and answers `/healthz`.
    fn assert_alive(&self, after: &str) {
        let a = self.send("GET", b"/healthz", &[], Vec::new());
        assert_eq!(a.status, 200, "{}: /healthz after {after}", self.name);
    }

    fn peak_rss_mib(&self) -> u64 {
        self.server.peak_rss_kib() / 1024
    }
}

/// One hostile input: its name and the bytes of its body.
struct Item {
    name: String,
    body: Vec<u8>,
}

fn item(name: &str, body: impl Into<Vec<u8>>) -> Item {
    Item {
        name: name.into(),
        body: body.into(),
    }
}

/// `template` as JSON text with member `field` replaced by the raw JSON text `raw` (added when
/// absent), the other members kept.
fn with_raw(template: &Value, field: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    out.extend_from_slice(&serde_json::to_string(field).unwrap().into_bytes());
    out.push(b':');
    out.extend_from_slice(raw);
    for (k, v) in template.as_object().unwrap() {
        if k != field {
            out.push(b',');
            out.extend_from_slice(&serde_json::to_string(k).unwrap().into_bytes());
            out.push(b':');
            out.extend_from_slice(&serde_json::to_string(v).unwrap().into_bytes());
        }
    }
    out.push(b'}');
    out
}

/// The JSON corpus for a route whose well-formed body is `template`, whose name member is
/// `name` and which holds a number at `number` (a member name, raw text replaced).
fn json_corpus(template: &Value, name: &str, number: &str, body_limit: usize) -> Vec<Item> {
    let text = template.to_string().into_bytes();
    let s = |v: &str| serde_json::to_string(v).unwrap().into_bytes();
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let mut v = vec![
        item("deep array nesting (100,000)", deep(100_000)),
        item(
            "deep nesting in a member",
            with_raw(template, name, deep(50_000).as_bytes()),
        ),
        item(
            "deep object nesting (50,000)",
            format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
        ),
        item(
            "a huge string (900 kB)",
            with_raw(template, name, &s(&"a".repeat(900_000))),
        ),
        item(
            "over the body limit",
            with_raw(template, name, &s(&"a".repeat(body_limit + 1))),
        ),
        item("many members (60,000)", {
            let mut m = template.as_object().unwrap().clone();
            for i in 0..60_000 {
                m.insert(format!("k{i}"), json!(0));
            }
            Value::Object(m).to_string()
        }),
        item("a duplicate member", {
            let mut t =
                format!("{{{}:{},", String::from_utf8(s(name)).unwrap(), "\"dup\"").into_bytes();
            t.extend_from_slice(&text[1..]);
            t
        }),
        item(
            "a number past any double",
            with_raw(template, number, b"1e999999"),
        ),
        item(
            "an integer no double holds",
            with_raw(template, number, b"123456789012345678901234567890"),
        ),
        item("a NaN literal", with_raw(template, number, b"NaN")),
        item("an array body", "[]"),
        item("a string body", "\"x\""),
        item("a null body", "null"),
        item("trailing garbage", {
            let mut t = text.clone();
            t.extend_from_slice(b" x");
            t
        }),
        item("two JSON texts", {
            let mut t = text.clone();
            t.extend_from_slice(&text);
            t
        }),
        item("a byte order mark", {
            let mut t = b"\xef\xbb\xbf".to_vec();
            t.extend_from_slice(&text);
            t
        }),
        item("truncated", text[..text.len() / 2].to_vec()),
        item("an unknown member", with_raw(template, "zt_unknown", b"1")),
    ];
    for (what, raw) in [
        ("NUL escaped in a name", &br#""a\u0000b""#[..]),
        ("a raw NUL byte in a name", b"\"a\x00b\""),
        ("a lone surrogate", br#""a\ud800b""#),
        ("a lone trailing surrogate", br#""\udc00""#),
        ("a bidi override (RLO)", "\"a\u{202e}b\"".as_bytes()),
        ("a bidi isolate escaped", br#""a\u2067b""#),
        ("a zero-width space", "\"a\u{200b}b\"".as_bytes()),
        ("a line separator", br#""a\u2028b""#),
        ("invalid UTF-8 in a name", b"\"a\xff\xfeb\""),
        ("an overlong UTF-8 slash", b"\"a\xc0\xafb\""),
        ("a name that is a number", b"1"),
    ] {
        v.push(item(what, with_raw(template, name, raw)));
    }
    for i in &mut v {
        i.name = format!("{} ({} bytes)", i.name, i.body.len());
    }
    v
}

/// Sends `items` to `path` and asserts a 4xx for each, the server alive after each.
fn sweep(
    server: &Server,
    path: &str,
    content_type: &[u8],
    headers: &[(&str, &[u8])],
    items: &[Item],
) {
    for it in items {
        let mut h = vec![("Content-Type", content_type)];
        h.extend_from_slice(headers);
        let a = server.send("POST", path.as_bytes(), &h, it.body.clone());
        assert!(
            (400..500).contains(&a.status),
            "{}: POST {path} with {}: {} {}",
            server.name,
            it.name,
            a.status,
            String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
        );
        server.assert_alive(&format!("POST {path} with {}", it.name));
    }
}

/// Hostile path segments, for the routes that take a name in the path.
fn path_corpus() -> Vec<(&'static str, String)> {
    vec![
        ("a percent-encoded NUL", "a%00b".into()),
        ("a percent-encoded RLO", "a%E2%80%AEb".into()),
        ("percent-encoded invalid UTF-8", "a%FF%FEb".into()),
        ("a percent-encoded slash and dots", "..%2F..%2Fetc".into()),
        ("a 100 kB segment", "a".repeat(100_000)),
        ("a bare percent", "a%zz".into()),
    ]
}

fn control_plane_sweep(server: &Server) {
    // The well-formed bodies, answered with a 2xx: the routes are open, the readers reached.
    let ok = |path: &str, body: Value| {
        let a = server.post_json(path, &body);
        assert!(
            (200..300).contains(&a.status),
            "well-formed POST {path}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        serde_json::from_slice::<Value>(&a.body).unwrap()
    };
    ok("/policies", json!({"action": "x.run", "id": "sweep"}));
    let action = json!({"actor": "sweep-agent", "action": "x.run", "resource": "/r",
        "context": {"n": 1}});
    let agent = json!({"actor": "sweep-agent", "token_ttl_s": 600});
    let rotate = json!({"token_ttl_s": 60});
    let capability = json!({"actor": "sweep-agent", "action": "x.run", "resource": "/tmp",
        "ttl_s": 60, "grants": {"read": ["/tmp"], "net": false, "sandbox": "process"}});
    let broker = json!({"name": "sweep-broker", "public_key": BROKER_KEY, "n": 1});
    let narrow = json!({"action": "y.run", "id": "sweep-2", "resource": "/y"});
    ok("/agents", agent.clone());
    ok("/actions", action.clone());
    ok("/agents/sweep-agent/token", rotate.clone());
    let issued = ok("/capabilities", capability.clone());
    let mut broker_ok = broker.clone();
    broker_ok.as_object_mut().unwrap().remove("n");
    let registered = ok("/brokers", broker_ok);
    ok("/policies", narrow.clone());
    let cedar_ok = server.send(
        "POST",
        b"/policies",
        &[("Content-Type", b"text/plain"), ("X-ZT-Admin", b"1")],
        b"@id(\"sweep-3\")\npermit (principal, action == Action::\"z.run\", resource);".to_vec(),
    );
    assert_eq!(
        cedar_ok.status,
        201,
        "{}",
        String::from_utf8_lossy(&cedar_ok.body)
    );

    let limit = 1 << 20;
    let json_ct: &[u8] = b"application/json";
    sweep(
        server,
        "/actions",
        json_ct,
        &[],
        &json_corpus(&action, "actor", "resource", limit),
    );
    // A capability token of 900 kB, and one that is not a token at all.
    let mut huge_token = action.clone();
    huge_token["capability"] = json!(format!("ztcap1.{}", "A".repeat(900_000)));
    let mut not_token = action.clone();
    not_token["capability"] = json!("ztcap1.!!!");
    sweep(
        server,
        "/actions",
        json_ct,
        &[],
        &[
            item("a 900 kB capability token", huge_token.to_string()),
            item(
                "a capability token that is not base64",
                not_token.to_string(),
            ),
        ],
    );
    // Templates of registrations name an agent and a broker not registered yet, so that what
    // a lax reader would make of an item (the last of two duplicate members, say) would be
    // registered rather than refused as a conflict.
    let fresh_agent = json!({"actor": "fresh-agent", "token_ttl_s": 600});
    sweep(
        server,
        "/agents",
        json_ct,
        &[],
        &json_corpus(&fresh_agent, "actor", "token_ttl_s", limit),
    );
    let mut rotate_corpus = json_corpus(&rotate, "token_ttl_s", "token_ttl_s", limit);
    // A rotation's only member is a number: the name items put text in it, still refused.
    rotate_corpus.retain(|i| !i.name.starts_with("a name that is a number"));
    sweep(
        server,
        "/agents/sweep-agent/token",
        json_ct,
        &[],
        &rotate_corpus,
    );
    sweep(
        server,
        "/capabilities",
        json_ct,
        &[],
        &json_corpus(&capability, "actor", "ttl_s", limit),
    );
    let mut fresh_broker = broker.clone();
    fresh_broker["name"] = json!("fresh-broker");
    sweep(
        server,
        "/brokers",
        json_ct,
        &[],
        &json_corpus(&fresh_broker, "name", "n", limit),
    );
    sweep(
        server,
        "/policies",
        json_ct,
        &[],
        &json_corpus(&narrow, "action", "id", limit),
    );
    let cedar = json!({"cedar": "permit (principal, action, resource);"});
    sweep(
        server,
        "/policies",
        json_ct,
        &[],
        &json_corpus(&cedar, "cedar", "cedar", limit),
    );

    // The broker's filing: its well-formed shape needs a run; every corpus item is refused
    // by the reader behind the broker's own token.
    let token = registered["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let filing = json!({"report": {"actor": "sweep-agent", "capability_id": issued["id"]},
        "attestation": {"broker": "sweep-broker"}});
    sweep(
        server,
        "/executions",
        json_ct,
        &[("Authorization", bearer.as_bytes())],
        &json_corpus(&filing, "report", "attestation", limit),
    );

    // Cedar text: oversized and deep policies, hidden characters, not text at all.
    let conjuncts = |n: usize| {
        format!(
            "permit (principal, action, resource) when {{ {} }};",
            vec!["context.n == 1"; n].join(" && ")
        )
    };
    let cedar_items = vec![
        item("40,000 conjuncts", conjuncts(40_000)),
        item("a 100,000-deep parenthesis", {
            format!(
                "permit (principal, action, resource) when {{ {}true{} }};",
                "(".repeat(100_000),
                ")".repeat(100_000)
            )
        }),
        item(
            "an RLO in a string literal",
            "permit (principal == Agent::\"a\u{202e}nimda\", action, resource);",
        ),
        item(
            "a NUL",
            b"permit (principal, action, resource);\x00".to_vec(),
        ),
        item(
            "invalid UTF-8",
            b"permit (principal, action, resource); // \xff".to_vec(),
        ),
        item("over the body limit", format!("// {}", "a".repeat(limit))),
        item("no policy", "// nothing"),
        item("not Cedar", "{}"),
    ];
    sweep(
        server,
        "/policies",
        b"text/plain",
        &[("X-ZT-Admin", b"1")],
        &cedar_items,
    );

    // Hostile names in paths: never a 5xx, never a 2xx.
    for (what, seg) in path_corpus() {
        for (method, path) in [
            ("DELETE", format!("/agents/{seg}")),
            ("POST", format!("/agents/{seg}/token")),
            ("DELETE", format!("/brokers/{seg}")),
            ("DELETE", format!("/policies/{seg}")),
            ("GET", format!("/capabilities/{seg}")),
            ("DELETE", format!("/capabilities/{seg}")),
        ] {
            let a = server.send(
                method,
                path.as_bytes(),
                &[("Content-Type", b"application/json")],
                Vec::new(),
            );
            assert!(
                (400..500).contains(&a.status),
                "{method} with {what} in the path: {} {}",
                a.status,
                String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
            );
            server.assert_alive(&format!("{method} with {what}"));
        }
    }
}

/// A bearer token of 100 kB and a header block past the limit: refused at the header, never
/// read into a body reader.
fn header_sweep(server: &Server, path: &str) {
    let huge = format!("Bearer {}", "A".repeat(100_000));
    let a = server.send(
        "POST",
        path.as_bytes(),
        &[("Authorization", huge.as_bytes())],
        b"{}".to_vec(),
    );
    assert!(
        (400..500).contains(&a.status),
        "{}: a 100 kB token: {}",
        server.name,
        a.status
    );
    server.assert_alive("a 100 kB token");
    let many: Vec<(String, Vec<u8>)> = (0..2000)
        .map(|i| (format!("X-H{i}"), vec![b'a'; 64]))
        .collect();
    let refs: Vec<(&str, &[u8])> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let a = server.send("POST", path.as_bytes(), &refs, b"{}".to_vec());
    assert!(
        (400..500).contains(&a.status),
        "{}: 2,000 headers: {}",
        server.name,
        a.status
    );
    server.assert_alive("2,000 headers");
}

/// Protobuf bytes: a field header and a length-delimited value.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let varint = |mut v: u64, out: &mut Vec<u8>| loop {
        let b = u8::try_from(v & 0x7f).unwrap();
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    };
    varint(u64::from(number << 3 | 2), &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// An `ExportLogsServiceRequest` of one LogRecord whose body is a kvlist nested `depth` deep.
fn deep_kvlist(depth: usize) -> Vec<u8> {
    let mut any = field(1, b"leaf"); // AnyValue.string_value
    for _ in 0..depth {
        let kv = [field(1, b"k"), field(2, &any)].concat(); // KeyValue{key, value}
        let list = field(1, &kv); // KeyValueList.values
        any = field(6, &list); // AnyValue.kvlist_value
    }
    let record = field(5, &any); // LogRecord.body
    let scope = field(2, &record); // ScopeLogs.log_records
    let resource = field(2, &scope); // ResourceLogs.scope_logs
    field(1, &resource) // ExportLogsServiceRequest.resource_logs
}

fn serve_sweep(server: &Server) {
    let line = std::fs::read_to_string(zt_testkit::fixture("v1/valid.jsonl")).unwrap();
    let first = line.split('\n').next().unwrap();
    let request = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"eventName": "zt.audit.envelope", "body": {"stringValue": first}}
    ]}]}]});
    let a = server.post_json("/v1/logs", &request);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));

    let limit = 16 << 20;
    let s = |v: &str| serde_json::to_string(v).unwrap().into_bytes();
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let body = |raw: &[u8]| {
        let mut t = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"zt.audit.envelope","body":{"stringValue":"#.to_vec();
        t.extend_from_slice(raw);
        t.extend_from_slice(b"}}]}]}]}");
        t
    };
    let text = request.to_string().into_bytes();
    let mut items = vec![
        item("deep array nesting (100,000)", deep(100_000)),
        item(
            "deep nesting in resourceLogs",
            format!("{{\"resourceLogs\":{}}}", deep(50_000)),
        ),
        item("a duplicate member", {
            let mut t = br#"{"resourceLogs":[],"#.to_vec();
            t.extend_from_slice(&text[1..]);
            t
        }),
        item("a duplicate body in a LogRecord", {
            let mut t = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"},"eventName":"zt.audit.envelope","body":{"stringValue":"#.to_vec();
            t.extend_from_slice(&s(first));
            t.extend_from_slice(b"}}]}]}]}");
            t
        }),
        item("a lone surrogate in a body", body(br#""a\ud800""#)),
        item("invalid UTF-8 in a body", body(b"\"a\xff\"")),
        item("a raw NUL byte in a body", body(b"\"a\x00\"")),
        item("over the body limit", body(&s(&"a".repeat(limit + 1)))),
        item(
            "a number past any double",
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":1e999999}]}]}]}"#
                .to_vec(),
        ),
        item("an array body", "[]"),
        item("a null body", "null"),
        item("trailing garbage", [text.clone(), b" x".to_vec()].concat()),
        item(
            "a byte order mark",
            [b"\xef\xbb\xbf".to_vec(), text.clone()].concat(),
        ),
        item("truncated", text[..text.len() / 2].to_vec()),
        item("resourceLogs not an array", r#"{"resourceLogs":{"a":1}}"#),
    ];
    for i in &mut items {
        i.name = format!("{} ({} bytes)", i.name, i.body.len());
    }
    sweep(server, "/v1/logs", b"application/json", &[], &items);

    let pb = [
        item(
            "garbage",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec(),
        ),
        item(
            "a length past the end",
            b"\x0a\xff\xff\xff\x0f\x00".to_vec(),
        ),
        item("a kvlist body 3,000 deep", deep_kvlist(3000)),
        item("a truncated request", {
            let r = deep_kvlist(3);
            r[..r.len() - 2].to_vec()
        }),
        item("an unknown wire type", b"\x0f\x00".to_vec()),
    ];
    sweep(server, "/v1/logs", b"application/x-protobuf", &[], &pb);
}

#[test]
fn control_plane_refuses_every_hostile_input_and_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        "control-plane",
        &[
            "control-plane",
            "--open",
            "--dir",
            s(dir.path()),
            "--listen",
            "127.0.0.1:0",
            "--rate-unauthenticated",
            "0",
            "--rate-per-actor",
            "0",
        ],
    );
    control_plane_sweep(&server);
    header_sweep(&server, "/actions");
    let peak = server.peak_rss_mib();
    eprintln!("control-plane: peak RSS {peak} MiB");
    assert!(peak < PEAK_RSS_MIB, "control-plane peak RSS {peak} MiB");
}

#[test]
fn serve_refuses_every_hostile_input_and_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let server = Server::start(
        "serve",
        &["serve", "--db", s(&db), "--listen", "127.0.0.1:0"],
    );
    serve_sweep(&server);
    header_sweep(&server, "/v1/logs");
    let peak = server.peak_rss_mib();
    eprintln!("serve: peak RSS {peak} MiB");
    assert!(peak < PEAK_RSS_MIB, "serve peak RSS {peak} MiB");
}
