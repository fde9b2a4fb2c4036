//! Numbers against an implementation zt-audit did not write: Node's `JSON.stringify` (the
//! ECMAScript algorithm RFC 8785 adopts) on a million doubles, byte for byte, and the reading
//! rule (an integer-form text no double holds exactly is refused, nothing else) against
//! BigInt's verdict; and records with large doubles from an independent producer verify.

use std::process::Command;

use crate::{fixtures, s, v1_keyring, verify_json};

fn node(args: &[&str]) {
    let script = crate::repo().join("scripts/numbers.mjs");
    let o = Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .expect("node (scripts/test.sh needs Node.js)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_million_doubles_match_json_stringify_and_the_exactness_rule() {
    let d = tempfile::tempdir().unwrap();
    let corpus = d.path().join("corpus.txt");
    node(&["corpus", corpus.to_str().unwrap(), "1000000"]);
    let text = std::fs::read_to_string(&corpus).unwrap();
    let (mut rows, mut inexact) = (0, 0);
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let mut parts = line.split(' ');
        let (bits, want, verdict) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        let mut got = Vec::new();
        zt_core::json::write_number(f, &mut got);
        assert_eq!(std::str::from_utf8(&got).unwrap(), want, "bits {bits}");
        match (zt_core::json::parse(want.as_bytes()), verdict) {
            (Ok(zt_core::json::Value::Number(back)), "exact") => {
                assert!(back == f, "{want} read as {back}, not {f}");
            }
            (Err(e), "inexact") => {
                assert!(e.to_string().contains("no double holds exactly"), "{e}");
                inexact += 1;
            }
            (read, verdict) => panic!("{want}: node says {verdict}, zt-audit read {read:?}"),
        }
        rows += 1;
    }
    assert_eq!(rows, 1_000_000);
    assert!(
        inexact > 1000,
        "the corpus has inexact texts to refuse: {inexact}"
    );
}

#[test]
fn an_independent_producers_large_doubles_verify() {
    let d = tempfile::tempdir().unwrap();
    let chain = d.path().join("node-producer.jsonl");
    node(&[
        "chain",
        chain.to_str().unwrap(),
        s(&fixtures().join("keys/test-only-a.key.pem")),
        "test-only-a",
    ]);
    let verify = || verify_json(&["--keyring", s(&v1_keyring()), s(&chain)]);
    let (code, report) = verify();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["records"], 3);
    // the same chain with one integer text no double holds: malformed, the path named
    let text = std::fs::read_to_string(&chain).unwrap();
    assert!(text.contains("9007199254740992"));
    std::fs::write(&chain, text.replace("9007199254740992", "9007199254740993")).unwrap();
    let (code, report) = verify();
    assert_eq!(code, 1, "{report:#}");
    let f = &report["findings"][0];
    assert_eq!(
        (f["index"].as_u64(), f["kind"].as_str()),
        (Some(2), Some("malformed"))
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("context.numbers.amount"),
        "{f}"
    );
}
