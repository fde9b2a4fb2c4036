//! Writes the hand-made seeds into `fuzz/seeds/<target>/`: inputs no fixture holds (OTLP
//! requests, capability tokens signed by the fuzz issuer, a proof bundle that verifies, route
//! bodies, broker lines). Run from anywhere:
//! `cargo run -p zt-fuzz-bodies --example make_seeds`. Tokens and attestations carry fresh
//! random keys, so a run rewrites those files with other bytes of the same shape.
#![allow(
    clippy::unwrap_used,
    reason = "a one-off generator: a failed unwrap is a failed run"
)]

use std::path::{Path, PathBuf};

use alloy_primitives::Address;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;
use zt_anchor::proof::{Leaf, ProofBundle, FORMAT};
use zt_anchor::tree::{leaf_hash, log_id};
use zt_core::capability::report::{Attestation, ExecutionReport, Outcome, StopKind};
use zt_core::capability::{attenuate, Grants};
use zt_core::crypto::SigningKey;
use zt_core::json::{self, Value};
use zt_core::time::Timestamp;
use zt_core::Hash32;
use zt_fuzz_bodies::capability::{epoch, issue_token};
use zt_fuzz_bodies::control_plane::Route;
use zt_fuzz_bodies::otlp::to_otlp_json;
use zt_ingest::otlp::{envelope_record, EVENT_NAME};
use zt_store::LeafRow;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = root().join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn v1_lines() -> Vec<String> {
    std::fs::read_to_string(root().join("fixtures/v1/valid.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn s(x: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(x.into())),
    })
}

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

/// A record's members as an OTLP kvlist.
fn to_any(v: &Value) -> any_value::Value {
    match v {
        Value::Null => any_value::Value::ArrayValue(ArrayValue::default()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
            any_value::Value::IntValue(*n as i64)
        }
        Value::Number(n) => any_value::Value::DoubleValue(*n),
        Value::String(x) => any_value::Value::StringValue(x.clone()),
        Value::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a
                .iter()
                .map(|x| AnyValue {
                    value: Some(to_any(x)),
                })
                .collect(),
        }),
        Value::Object(m) => any_value::Value::KvlistValue(KeyValueList {
            values: m.iter().map(|(k, x)| kv(k, to_any(x))).collect(),
        }),
    }
}

fn otlp() {
    let lines = v1_lines();
    let mut requests: Vec<(&str, ExportLogsServiceRequest)> = Vec::new();
    let one = |records: Vec<LogRecord>| ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    requests.push((
        "string-bodies",
        one(lines.iter().take(3).map(|l| envelope_record(l)).collect()),
    ));
    let record = json::parse(lines[0].as_bytes()).unwrap();
    requests.push((
        "kvlist-body-attribute-marked",
        one(vec![LogRecord {
            attributes: vec![kv(
                "event.name",
                any_value::Value::StringValue(EVENT_NAME.into()),
            )],
            body: Some(AnyValue {
                value: Some(to_any(&record)),
            }),
            ..Default::default()
        }]),
    ));
    requests.push((
        "unusable-and-ignored",
        one(vec![
            LogRecord {
                event_name: EVENT_NAME.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(42)),
                }),
                ..Default::default()
            },
            LogRecord {
                event_name: EVENT_NAME.into(),
                ..Default::default()
            },
            LogRecord {
                event_name: EVENT_NAME.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::KvlistValue(KeyValueList {
                        values: vec![
                            kv("a", any_value::Value::DoubleValue(0.5)),
                            kv("a", any_value::Value::BytesValue(vec![0, 1, 255])),
                        ],
                    })),
                }),
                ..Default::default()
            },
            LogRecord {
                body: s("an ordinary log line"),
                severity_text: "INFO".into(),
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                time_unix_nano: 1,
                ..Default::default()
            },
        ]),
    ));
    requests.push((
        "many-resources-and-scopes",
        ExportLogsServiceRequest {
            resource_logs: (0..3)
                .map(|i| ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv(
                            "service.name",
                            any_value::Value::StringValue(format!("svc-{i}")),
                        )],
                        ..Default::default()
                    }),
                    scope_logs: (0..2)
                        .map(|j| ScopeLogs {
                            scope: Some(InstrumentationScope {
                                name: format!("scope-{j}"),
                                version: "1".into(),
                                ..Default::default()
                            }),
                            log_records: vec![envelope_record(&lines[(i + j) % lines.len()])],
                            schema_url: "https://opentelemetry.io/schemas/1.0.0".into(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        },
    ));
    requests.push(("empty", ExportLogsServiceRequest::default()));
    for (name, req) in &requests {
        write("otlp_protobuf", &format!("{name}.pb"), &req.encode_to_vec());
        write(
            "otlp_json",
            &format!("{name}.json"),
            to_otlp_json(req).to_string().as_bytes(),
        );
    }
    write(
        "otlp_json",
        "snake-case-and-int-numbers.json",
        br#"{"resource_logs":[{"scope_logs":[{"log_records":[
            {"event_name":"zt.audit.decision","body":{"kvlist_value":{"values":[{"key":"n","value":{"int_value":7}},{"key":"s","value":{"string_value":"x"}}]}}},
            {"eventName":"zt.audit.decision","body":{"arrayValue":{"values":[{"doubleValue":1.5},{}]}}}
        ]}]}]}"#,
    );
}

fn grants(read: &[&str], write: &[&str], exec: &[&str], net: bool) -> Grants {
    let list = |l: &[&str]| Value::Array(l.iter().map(|p| Value::String((*p).into())).collect());
    let mut m = json::Map::new();
    m.push("read".into(), list(read));
    m.push("write".into(), list(write));
    m.push("exec".into(), list(exec));
    m.push("net".into(), Value::Bool(net));
    Grants::from_value(&Value::Object(m)).unwrap()
}

fn payload(token: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_start_matches(zt_core::capability::PREFIX))
        .unwrap()
}

fn capability() {
    let later = Timestamp::from_unix_millis(epoch().unix_millis() + 3_600_000);
    let t0 = issue_token(
        "cap-1",
        grants(&["/data", "/tmp/x"], &["/tmp"], &["/usr/bin/cat"], true),
        later,
    );
    let t1 = attenuate(
        &t0,
        Some(&grants(&["/data/a"], &["/tmp/y"], &[], false)),
        Some(Timestamp::from_unix_millis(epoch().unix_millis() + 60_000)),
    )
    .unwrap();
    let t2 = attenuate(&t1, None, None).unwrap();
    for (name, t) in [
        ("issued", &t0),
        ("attenuated", &t1),
        ("attenuated-twice", &t2),
    ] {
        write("capability_token", &format!("{name}.txt"), t.as_bytes());
        write("capability_token", &format!("{name}.json"), &payload(t));
    }
    write(
        "capability_token",
        "expired.txt",
        issue_token("cap-old", Grants::default(), epoch()).as_bytes(),
    );
    for (name, bytes) in [
        (
            "issue-only",
            &[0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x10, 0x00][..],
        ),
        (
            "narrowing",
            &[
                0x07, 0x00, 0x40, 0x00, 0x00, 0x00, 0x03, 0x10, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x01, 0x00,
            ],
        ),
        (
            "widening-unchecked",
            &[
                0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x03, 0x00, 0x09,
            ],
        ),
    ] {
        write("capability_chain", &format!("{name}.bin"), bytes);
    }
}

fn keyring() {
    let pem =
        |name: &str| std::fs::read_to_string(root().join("fixtures/keys").join(name)).unwrap();
    let doc = json!({"keys": [
        {"key_id": "a", "public_key_pem": pem("test-only-a.pub.pem"), "not_before": "2026-01-01T00:00:00Z",
         "not_after": "2027-01-01T00:00:00.5+02:00", "revoked_at": "2026-06-01T00:00:00Z", "chains": ["cp-east", "cp-east.admin"]},
        {"key_id": "b", "public_key_pem": pem("test-only-b.pub.pem")}
    ]});
    write(
        "keyring",
        "windows-and-chains.json",
        doc.to_string().as_bytes(),
    );
}

fn proof() {
    let lines = v1_lines();
    let chain: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"chain_id\":\"cp-east\""))
        .collect();
    let head = zt_core::Envelope::from_json(chain.last().unwrap().as_bytes())
        .unwrap()
        .current_hash;
    let leaf = LeafRow {
        chain: "cp-east".into(),
        position: chain.len() as u64 - 1,
        head,
    };
    let owner: Address = "0x00000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    let mut b = ProofBundle {
        format: FORMAT.into(),
        record: chain[0].clone(),
        chain: "cp-east".into(),
        position: 0,
        links: chain[1..].iter().map(|l| (*l).clone()).collect(),
        leaf: Leaf {
            chain: leaf.chain.clone(),
            position: leaf.position,
            head: head.to_hex(),
        },
        leaf_index: 0,
        tree_size: 1,
        inclusion_proof: Vec::new(),
        root: leaf_hash(&leaf).to_hex(),
        log: "fuzz".into(),
        owner: format!("{owner:#x}"),
        log_id: format!("{:#x}", log_id(owner, "fuzz")),
        epoch: 1,
        contract: "0x00000000000000000000000000000000000000bb".into(),
        chain_id: 31337,
        transaction: format!("0x{}", "11".repeat(32)),
        block_number: 7,
        block_hash: format!("0x{}", "22".repeat(32)),
        state: "confirmed".into(),
    };
    let ring = zt_core::keyring::Keyring::from_json(
        &std::fs::read(root().join("fixtures/v1/keyring.json")).unwrap(),
    )
    .unwrap();
    zt_anchor::proof::verify_offline(&b, &ring).unwrap();
    write(
        "proof_bundle",
        "valid.json",
        serde_json::to_string_pretty(&b).unwrap().as_bytes(),
    );
    // A tree of three: the head is the middle leaf.
    let others = [
        LeafRow {
            chain: "cp-west".into(),
            position: 3,
            head: Hash32::digest(b"west"),
        },
        LeafRow {
            chain: "lineage-0123456789abcdef".into(),
            position: 0,
            head: Hash32::digest(b"lineage"),
        },
    ];
    let tree = zt_anchor::tree::Tree::in_order(vec![others[0].clone(), leaf, others[1].clone()]);
    b.leaf_index = 1;
    b.tree_size = 3;
    b.inclusion_proof = tree.proof(1).unwrap().iter().map(|h| h.to_hex()).collect();
    b.root = tree.root().to_hex();
    if zt_anchor::proof::verify_offline(&b, &ring).is_ok() {
        write(
            "proof_bundle",
            "valid-in-three.json",
            serde_json::to_string(&b).unwrap().as_bytes(),
        );
    }
    let mut cut = b.clone();
    cut.links.pop();
    write(
        "proof_bundle",
        "link-missing.json",
        serde_json::to_string(&cut).unwrap().as_bytes(),
    );
}

fn report() -> ExecutionReport {
    ExecutionReport {
        decision: Hash32::digest(b"allow"),
        capability_id: "cap-1".into(),
        actor: "fuzz-agent".into(),
        broker: "broker-1".into(),
        grants: grants(&["/data"], &["/tmp"], &["/usr/bin/cat"], false),
        command: vec!["/usr/bin/cat".into(), "/data/x".into()],
        landlock_abi: Some(6),
        unscoped: false,
        outcome: Outcome::Ran {
            exit_code: Some(0),
            signal: None,
            duration_ms: 12,
            stopped: Some((StopKind::Revoked, "revoked at 12:00".into())),
        },
    }
}

fn broker_and_schema() {
    let req = json!({"capability": "ztcap1.eyJ9", "token": "ztcp_abc", "command": ["/usr/bin/cat", "/data/x"],
        "env": {"LANG": "C"}, "stdin": true});
    write(
        "broker_lines",
        "request.json",
        format!("{req}\n").as_bytes(),
    );
    write(
        "broker_lines",
        "answer.json",
        br#"{"execution":null,"message":"stopped the command (revoked)","ran":true,"report":"NOT recorded: x","status":137}"#,
    );
    for (name, body) in [
        (
            "status-active",
            r#"{"id":"cap-1","state":"active","not_after":"2026-01-01T00:00:00.000Z"}"#,
        ),
        (
            "status-revoked",
            r#"{"id":"cap-1","state":"revoked","at":"2026-01-01T00:00:00+01:00"}"#,
        ),
        (
            "status-expired",
            r#"{"state":"expired","at":"2025-12-31T23:59:59.999Z"}"#,
        ),
    ] {
        write("broker_lines", &format!("{name}.json"), body.as_bytes());
        write("json_schema", &format!("{name}.json"), body.as_bytes());
    }
    let r = report();
    let key = SigningKey::from_scalar_bytes(&[9u8; 32]).unwrap();
    let filing = |r: &ExecutionReport| {
        let mut m = json::Map::new();
        m.push("report".into(), r.to_value());
        m.push(
            "attestation".into(),
            Attestation::sign(r, "broker-1", &key).to_value(),
        );
        json::canonicalize(&Value::Object(m))
    };
    write("json_schema", "filing.json", &filing(&r));
    write(
        "json_schema",
        "report.json",
        &json::canonicalize(&r.to_value()),
    );
    let refused = ExecutionReport {
        outcome: Outcome::Refused {
            reason: "landlock unavailable".into(),
        },
        landlock_abi: None,
        ..r.clone()
    };
    write(
        "json_schema",
        "report-refused.json",
        &json::canonicalize(&refused.to_value()),
    );
    write(
        "json_schema",
        "grants.json",
        &json::canonicalize(&r.grants.to_value()),
    );

    let cp = |route: Route, name: &str, body: &[u8]| {
        write("control_plane_http", name, &route.input(body));
    };
    cp(Route::Actions, "actions.json", br#"{"actor":"fuzz-agent","action":"fs.read","resource":"/data/x","request_id":"r-1","context":{"ticket":"T-1","n":3.5,"tags":["a"]}}"#);
    cp(
        Route::Actions,
        "actions-unregistered.json",
        br#"{"actor":"nobody","action":"fs.read"}"#,
    );
    cp(
        Route::Actions,
        "actions-capability.json",
        format!(
            r#"{{"actor":"fuzz-agent","action":"fs.read","resource":"/data","capability":"{}"}}"#,
            issue_token(
                "cap-1",
                Grants::default(),
                Timestamp::from_unix_millis(epoch().unix_millis() + 60_000)
            )
        )
        .as_bytes(),
    );
    cp(
        Route::Agents,
        "agents.json",
        br#"{"actor":"agent-2","spiffe_id":"spiffe://example.org/agent/2","token_ttl_s":3600}"#,
    );
    cp(Route::Rotate, "rotate.json", br#"{"token_ttl_s":60}"#);
    cp(Route::Capabilities, "capabilities.json", br#"{"actor":"fuzz-agent","action":"fs.read","resource":"/tmp","ttl_s":60,"grants":{"read":["/tmp"],"net":false,"sandbox":"process"}}"#);
    cp(Route::Executions, "executions.json", &filing(&r));
    cp(
        Route::Brokers,
        "brokers.json",
        json!({"name": "broker-1", "public_key": key.public_key().to_pem()})
            .to_string()
            .as_bytes(),
    );
    cp(Route::Brokers, "brokers-hex.json", json!({"name": "broker-2", "public_key": hex::encode(key.public_key().sec1_uncompressed())}).to_string().as_bytes());
    cp(Route::PoliciesJson, "policies-narrow.json", br#"{"action":"fs.write","resource":"/etc","actor":"fuzz-agent","reason":"no writes to /etc","id":"no-etc"}"#);
    cp(Route::PoliciesJson, "policies-cedar.json", br#"{"cedar":"@id(\"p-1\")\nforbid(principal == Agent::\"a\", action, resource) when { context.request.n > 2 };"}"#);
    cp(Route::PoliciesCedar, "policies.cedar", b"permit(principal, action == Action::\"fs.read\", resource) when { resource.path like \"/data/*\" };\nforbid(principal, action, resource) unless { context has ticket };");
}

/// SPIFFE bundles: a JWK Set of two CAs from an ordinary PKI with a sequence, PEM bundles
/// with and without a SPIFFE URI SAN, a `--trust-bundle` argument, an SVID's ID.
fn spiffe() {
    use zt_tls::test_pki::{write_bundle, write_spiffe_bundle, Ca};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, named) = (
        Ca::plain("corp a"),
        Ca::plain("corp b"),
        Ca::spiffe("fuzz.test"),
    );
    let jwks = write_spiffe_bundle(&tmp.path().join("b.json"), &[&a, &b], Some(12));
    write("spiffe_bundle", "jwks.json", &std::fs::read(jwks).unwrap());
    let plain = write_bundle(&tmp.path().join("plain.pem"), &[&a]);
    write("spiffe_bundle", "plain.pem", &std::fs::read(plain).unwrap());
    let spiffe = write_bundle(&tmp.path().join("named.pem"), &[&named, &b]);
    write(
        "spiffe_bundle",
        "named.pem",
        &std::fs::read(spiffe).unwrap(),
    );
    write(
        "spiffe_bundle",
        "flag.txt",
        b"spiffe://td-b.example=/etc/zt/td-b.json",
    );
    write(
        "spiffe_bundle",
        "id.txt",
        b"spiffe://fuzz.test/ns/prod/sa/agent-7",
    );
}

/// Signed notes: the specification's example, a checkpoint signed by a log and a witness, a
/// verifier key, a checkpoint's text with an extension line.
fn notes() {
    use zt_core::note::{sign, Checkpoint, NoteSigner};
    write(
        "signed_note",
        "spec-example.txt",
        "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n".as_bytes(),
    );
    let log = NoteSigner::from_seed("fuzz.test/log", &[7; 32]).unwrap();
    let witness = NoteSigner::from_seed("witness.test/w", &[8; 32]).unwrap();
    let cp = Checkpoint {
        origin: "fuzz.test/log".into(),
        size: 42,
        root: zt_core::Hash32::digest(b"root"),
        extensions: Vec::new(),
    };
    let signed = sign(&cp.to_text(), &[&log, &witness]).unwrap();
    write("signed_note", "checkpoint.txt", signed.as_bytes());
    write(
        "signed_note",
        "vkey.txt",
        log.verifier().to_string().as_bytes(),
    );
    let ext = Checkpoint {
        extensions: vec!["ext 1".into()],
        ..cp
    };
    write(
        "signed_note",
        "checkpoint-text.txt",
        ext.to_text().as_bytes(),
    );
}

/// Every generator, or those named on the command line (`otlp capability keyring proof
/// broker spiffe notes`).
fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    let gens: [(&str, fn()); 7] = [
        ("otlp", otlp),
        ("capability", capability),
        ("keyring", keyring),
        ("proof", proof),
        ("broker", broker_and_schema),
        ("spiffe", spiffe),
        ("notes", notes),
    ];
    for (name, gen) in gens {
        if only.is_empty() || only.iter().any(|o| o == name) {
            gen();
        }
    }
    println!(
        "seeds written under {}",
        root().join("fuzz/seeds").display()
    );
}
