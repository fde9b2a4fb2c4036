//! This project's own v1 vectors (`fixtures/v1/`), made with the test-only keys in
//! `fixtures/keys/`. `cargo test -p zt-audit --test cli -- --ignored regenerate_v1_fixtures`
//! rewrites them. With the default AWS-LC backend the signature bytes change on every
//! regeneration (random nonces); the records, hashes and EXPECT.json do not.

use std::path::PathBuf;

use zt_core::crypto::{self, SigningKey};
use zt_core::envelope::V1Draft;
use zt_core::json::{Map, Value};
use zt_core::Hash32;
use zt_testkit::keys::{seal_chain, write_lines};

use crate::{first_finding, fixture_key, fixtures, verify_json};

fn dir() -> PathBuf {
    fixtures().join("v1")
}

fn draft(chain: &str, seq: u64, prev: Hash32, action: &str) -> V1Draft {
    let deny = action.starts_with("aws.");
    let mut ctx = Map::new();
    ctx.push(
        "request_id".into(),
        Value::String(format!("req-{chain}-{seq}")),
    );
    ctx.push("policy_id".into(), Value::String("default".into()));
    ctx.push("policy_version".into(), Value::String("sha256:3f1c".into()));
    ctx.push(
        "identity".into(),
        Value::String("spiffe://example.org/agent/hello".into()),
    );
    V1Draft {
        chain_id: chain.into(),
        seq,
        actor: "agent-hello".into(),
        action: action.into(),
        resource: format!("demo/{seq}"),
        decision: if deny { "deny" } else { "allow" }.into(),
        reason: if deny {
            "dangerous action denied by default"
        } else {
            "allowed by policy"
        }
        .into(),
        timestamp: format!("2026-10-01T08:{:02}:00.000Z", seq % 60),
        previous_hash: prev,
        context: Some(ctx),
    }
}

fn chain(name: &str, n: u64, k: Option<(&SigningKey, &str)>) -> Vec<(String, Hash32)> {
    seal_chain(0, n, Hash32::ZERO, k, |i| {
        let action = if i % 3 == 1 {
            "aws.ec2.terminate_instances"
        } else {
            "hello-world.say_hello"
        };
        draft(name, i, Hash32::ZERO, action)
    })
}

fn write(name: &str, lines: &[String]) {
    write_lines(&dir().join(name), lines);
}

#[test]
#[ignore = "rewrites fixtures/v1; run on purpose"]
fn regenerate_v1_fixtures() {
    let a = fixture_key("test-only-a");
    let b = fixture_key("test-only-b");
    let ka = Some((&a, "test-only-a"));
    std::fs::create_dir_all(dir()).unwrap();

    // two interleaved chains
    let c1 = chain("cp-east", 6, ka);
    let c2 = chain("cp-west", 6, ka);
    let valid: Vec<String> = c1
        .iter()
        .zip(&c2)
        .flat_map(|(x, y)| [x.0.clone(), y.0.clone()])
        .collect();
    write("valid.jsonl", &valid);

    // a producer that skipped a sequence number (links intact, signatures valid)
    let mut prev = Hash32::ZERO;
    let mut lines = Vec::new();
    for seq in [0u64, 1, 2, 4, 5] {
        let s = draft("cp-east", seq, prev, "hello-world.say_hello").seal(ka);
        prev = s.current_hash;
        lines.push(s.json);
    }
    write("seq-gap.jsonl", &lines);

    // two validly signed records claiming one predecessor (a forked control plane)
    let base = chain("cp-east", 3, ka);
    let mut lines: Vec<String> = base.iter().map(|x| x.0.clone()).collect();
    let mut other = draft("cp-east", 2, base[1].1, "fs.read");
    other.reason = "a second decision for the same position".into();
    lines.push(other.seal(ka).json);
    write("fork.jsonl", &lines);

    // edited context: hashed, so the hash no longer recomputes
    let mut lines: Vec<String> = c1.iter().map(|x| x.0.clone()).collect();
    lines[3] = lines[3].replace("req-cp-east-3", "req-cp-east-X");
    write("edited-context.jsonl", &lines);

    // kms_signature names another key than the hashed signer
    let mut lines: Vec<String> = c1.iter().map(|x| x.0.clone()).collect();
    let (head, tail) = lines[2].split_at(lines[2].find("\"kms_signature\"").unwrap());
    lines[2] = format!(
        "{head}{}",
        tail.replace("\"key_id\":\"test-only-a\"", "\"key_id\":\"test-only-b\"")
    );
    write("signer-mismatch.jsonl", &lines);

    // signed by key b, which the keyring says expired before these timestamps
    let lines: Vec<String> = chain("cp-b", 3, Some((&b, "test-only-b-expired")))
        .into_iter()
        .map(|x| x.0)
        .collect();
    write("expired-key.jsonl", &lines);

    // unsigned (algorithm none): a finding unless --allow-unsigned
    let lines: Vec<String> = chain("cp-dev", 3, None).into_iter().map(|x| x.0).collect();
    write("unsigned.jsonl", &lines);

    // a chain exported from seq 2: starts past genesis
    let lines: Vec<String> = c1[2..].iter().map(|x| x.0.clone()).collect();
    write("missing-start.jsonl", &lines);

    // A number past 2^53-1 in the hashed context: hashed and signed as 9007199254740992, the
    // text then says ...993, which parses to the same double (one hash, two texts).
    let mut d = draft("cp-east", 1, c1[0].1, "payments.transfer");
    let mut ctx = d.context.take().unwrap_or_default();
    ctx.push("amount".into(), Value::Number(9_007_199_254_740_992.0));
    d.context = Some(ctx);
    let signed = d.seal(ka).json;
    assert!(signed.contains("9007199254740992"));
    write(
        "number-past-2-53.jsonl",
        &[
            c1[0].0.clone(),
            signed.replace("9007199254740992", "9007199254740993"),
        ],
    );

    write_profile_vectors(&a);

    let ring = serde_json::json!({"keys": [
        {"key_id": "test-only-a", "public_key_pem": a.public_key().to_pem()},
        {"key_id": "test-only-b-expired", "public_key_pem": b.public_key().to_pem(),
         "not_before": "2026-01-01T00:00:00Z", "not_after": "2026-09-30T00:00:00Z"},
    ]});
    std::fs::write(
        dir().join("keyring.json"),
        serde_json::to_string_pretty(&ring).unwrap() + "\n",
    )
    .unwrap();
}

/// Lineage records of the legacy and hello-world profiles, signed with a test key.
fn write_profile_vectors(a: &SigningKey) {
    let out = fixtures().join("profiles");
    let lineage = |i: u64, prev: Hash32, legacy: bool| -> (serde_json::Value, Hash32) {
        let mut m = Map::new();
        let s = |x: &str| Value::String(x.to_owned());
        m.push("actor".into(), s("agent-legacy"));
        m.push("action".into(), s("fs.read"));
        if !legacy {
            m.push("resource".into(), s(&format!("/tmp/{i}")));
        }
        m.push("decision".into(), s("allow"));
        m.push("reason".into(), s("capability read-file-cap"));
        m.push(
            "timestamp".into(),
            s(&format!("2025-01-01T00:00:0{i}.000Z")),
        );
        m.push("previous_hash".into(), s(&prev.to_hex()));
        let h = Hash32::digest(&zt_core::json::canonicalize(&Value::Object(m)));
        let sig = crypto::encode_signature(&a.sign_digest(&h));
        let mut rec = serde_json::json!({
            "actor": "agent-legacy", "action": "fs.read", "decision": "allow",
            "reason": "capability read-file-cap", "timestamp": format!("2025-01-01T00:00:0{i}.000Z"),
            "previous_hash": prev.to_hex(), "current_hash": h.to_hex(),
            "kms_signature": {"algorithm": "ECDSA_SHA_256", "key_id": "test-only-a", "signature": sig},
        });
        if !legacy {
            rec["resource"] = serde_json::Value::String(format!("/tmp/{i}"));
        }
        (rec, h)
    };
    let mut prev = Hash32::ZERO;
    let mut lines = Vec::new();
    for i in 0..4 {
        let (r, h) = lineage(i, prev, true);
        prev = h;
        lines.push(serde_json::to_string(&r).unwrap());
    }
    write_lines(&out.join("legacy.jsonl"), &lines);
    // zt-infra-full, then a legacy-hashed record: each hash recomputes under its own profile
    let (r0, h0) = lineage(0, Hash32::ZERO, false);
    let (r1, h1) = lineage(1, h0, false);
    let (r2, _) = lineage(2, h1, true);
    let mixed: Vec<String> = [r0, r1.clone(), r2]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    write_lines(&out.join("mixed-profiles.jsonl"), &mixed);
    // A zt-infra-full chain where someone added a member no hash covers: the signature still
    // verifies, so only the profile's member list shows it.
    let (r2, _) = lineage(2, h1, false);
    let mut approved = r1.clone();
    approved["approved_by"] = serde_json::Value::String("CISO".into());
    let added: Vec<String> = [lineage(0, Hash32::ZERO, false).0, approved, r2]
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    write_lines(&out.join("approved-by-added.jsonl"), &added);
    // a hello-world chain as a JSON array of HTTP responses, signed for real
    let mut prev = Hash32::ZERO;
    let mut docs = Vec::new();
    for i in 0..3u64 {
        let ts = format!("2026-05-01T00:00:0{i}.000Z");
        let resource = format!("local-demo-{i}");
        let mut hashed = Vec::new();
        let members: Vec<(&str, Value)> = vec![
            ("actor", Value::String("hello-world-agent".into())),
            ("action", Value::String("hello-world.say_hello".into())),
            ("resource", Value::String(resource.clone())),
            ("result", Value::String("allow".into())),
            (
                "reason",
                Value::String("Mock policy allows the hello world action.".into()),
            ),
            ("timestamp", Value::String(ts.clone())),
            ("previousHash", Value::String(prev.to_hex())),
        ];
        let refs: Vec<(&str, &Value)> = members.iter().map(|(k, v)| (*k, v)).collect();
        zt_core::json::write_ordered_object(&refs, &mut hashed);
        let h = Hash32::digest(&hashed);
        docs.push(serde_json::json!({
            "ok": true, "actor": "hello-world-agent", "action": "hello-world.say_hello",
            "resource": resource, "decision": "allow", "reason": "Mock policy allows the hello world action.",
            "audit": {"timestamp": ts, "previous_hash": prev.to_hex(), "current_hash": h.to_hex(),
                "kms_signature": {"algorithm": "ECDSA_SHA_256", "key_id": "test-only-a",
                    "signature": crypto::encode_signature(&a.sign_digest(&h))}},
        }));
        prev = h;
    }
    std::fs::write(
        out.join("hello-world-chain.json"),
        serde_json::to_string_pretty(&docs).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn every_v1_case_holds() {
    run_expect(&dir());
}

#[test]
fn every_profile_case_holds() {
    run_expect(&fixtures().join("profiles"));
}

fn run_expect(dir: &std::path::Path) {
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("EXPECT.json")).unwrap()).unwrap();
    let keyring = dir.join(expect["keyring"].as_str().unwrap_or("keyring.json"));
    let cases = expect["cases"].as_object().unwrap();
    assert!(cases.len() >= 4);
    for (file, case) in cases {
        let path = dir.join(file);
        let mut args = vec!["--keyring", keyring.to_str().unwrap()];
        let extra: Vec<String> = case["args"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        args.extend(extra.iter().map(String::as_str));
        args.push(path.to_str().unwrap());
        let (code, report) = verify_json(&args);
        let ok = case["ok"].as_bool().unwrap();
        assert_eq!(
            report["ok"].as_bool(),
            Some(ok),
            "{file} {extra:?}: {report:#}"
        );
        assert_eq!(code, if ok { 0 } else { 1 }, "{file}");
        if !ok {
            assert_eq!(
                first_finding(&report),
                Some((
                    case["first_bad_index"].as_u64().unwrap(),
                    case["kind"].as_str().unwrap().to_owned()
                )),
                "{file}: {report:#}"
            );
        }
        if let Some(chains) = case["chains"].as_u64() {
            assert_eq!(
                report["chains"].as_array().unwrap().len() as u64,
                chains,
                "{file}"
            );
        }
    }
}

#[test]
fn allowed_unsigned_records_are_never_reported_as_verified() {
    let (code, report) = verify_json(&[
        "--allow-unsigned",
        dir().join("unsigned.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let c = &report["chains"][0];
    assert_eq!(c["verified_signatures"], 0);
    assert_eq!(c["unsigned_allowed"], 3);
}

#[test]
fn forcing_the_wrong_profile_fails() {
    let (code, report) = verify_json(&[
        "--keyring",
        dir().join("keyring.json").to_str().unwrap(),
        "--profile",
        "zt-infra-full",
        dir().join("valid.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(first_finding(&report), Some((0, "hash_mismatch".into())));
}

#[test]
fn hello_world_mock_signature_passes_only_when_allowed() {
    let path = fixtures().join("profiles/hello-world-denied.json");
    let (code, report) = verify_json(&["--allow-unsigned", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["chains"][0]["profile"], "hello-world");
    assert_eq!(report["chains"][0]["verified_signatures"], 0);
    assert_eq!(report["chains"][0]["unsigned_allowed"], 1);
}

#[test]
fn profiles_do_not_mix_within_a_chain() {
    let dir = fixtures().join("profiles");
    let (_, report) = verify_json(&[
        "--keyring",
        fixtures().join("v1/keyring.json").to_str().unwrap(),
        dir.join("mixed-profiles.jsonl").to_str().unwrap(),
    ]);
    let msg = report["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("matches profile legacy") && msg.contains("do not mix"),
        "{msg}"
    );
}
