//! Records: one record's parse (envelope, every profile's hash, RFC 8785), the record splitter
//! and the whole verifier.

use zt_core::envelope::{lineage_answer, Envelope, Shape};
use zt_core::json::{self, canonicalize, Value};
use zt_core::keyring::Keyring;
use zt_core::Profile;
use zt_verifier::source::{Batch, RecordReader};
use zt_verifier::{Options, Verifier};

use crate::shown::shown;

/// `parse_record`: one record. `Envelope::from_json`, every profile's hash and profile
/// detection; the RFC 8785 round trip (the canonical form re-parses to a value with the same
/// canonical form); and, for a record the envelope reader accepts in record shape, the
/// control plane's answer shape around it (`lineage_answer`) reads back as the same envelope
/// with the same hash under every profile.
pub fn parse_record(data: &[u8]) {
    let env = Envelope::from_json(data).ok();
    if let Some(env) = &env {
        for p in Profile::ALL {
            let _ = env.compute_hash(p);
        }
        let _ = env.detect_profile();
    }

    let Ok(v) = json::parse(data) else {
        assert!(env.is_none(), "an envelope from text that is not JSON");
        return;
    };
    let once = canonicalize(&v);
    // A number text may be exact while its RFC 8785 form is not: "88888888888889888" is the
    // double 88888888888889888, whose shortest form is "88888888888889890", an integer no
    // double holds exactly. Every RFC 8785 reader hashes the same bytes for it, but that form
    // is not accepted as input text (a producer must not write it: the control plane refuses
    // such a value, `json::first_inexact_number`), so the round trip is asked only of values
    // without one. Found by this target (fuzz/README.md).
    if json::first_inexact_number(&v).is_some() {
        assert!(
            json::parse(&once).is_err(),
            "an inexact canonical number re-parses\ninput: {}",
            shown(data)
        );
        return;
    }
    let reparsed = match json::parse(&once) {
        Ok(r) => r,
        Err(e) => panic!(
            "canonical form does not re-parse: {e}\ninput: {}\ncanonical: {}",
            shown(data),
            shown(&once)
        ),
    };
    let twice = canonicalize(&reparsed);
    assert!(
        once == twice,
        "canonicalization is not a fixed point\ninput: {}\nonce:  {}\ntwice: {}",
        shown(data),
        shown(&once),
        shown(&twice)
    );
    // The canonical form is the same record.
    let canon_env = Envelope::from_json(&once);
    assert_eq!(
        env.is_some(),
        canon_env.is_ok(),
        "the envelope reader disagrees with itself on the canonical form\ninput: {}",
        shown(data)
    );

    let (Some(env), Value::Object(members)) = (env, v) else {
        return;
    };
    // The answer shape has `ok` and `audit` of its own: a record with members of those names
    // is ambiguous in it by design (README, "Found and not changed").
    if env.shape != Shape::Record || members.contains_key("ok") || members.contains_key("audit") {
        return;
    }
    let answer = lineage_answer(&members);
    let back = match Envelope::from_json(&answer) {
        Ok(b) => b,
        Err(e) => panic!(
            "the answer shape around an accepted record does not read: {e}\ninput: {}\nanswer: {}",
            shown(data),
            shown(&answer)
        ),
    };
    assert_eq!(back.shape, Shape::HttpResponse);
    assert_eq!(
        (
            &back.actor,
            &back.action,
            &back.resource,
            &back.decision,
            &back.reason,
            &back.timestamp,
            back.previous_hash,
            back.current_hash,
            &back.signature,
            &back.v1
        ),
        (
            &env.actor,
            &env.action,
            &env.resource,
            &env.decision,
            &env.reason,
            &env.timestamp,
            env.previous_hash,
            env.current_hash,
            &env.signature,
            &env.v1
        ),
        "answer shape changed the record\ninput: {}",
        shown(data)
    );
    for p in Profile::ALL {
        assert_eq!(
            back.compute_hash(p),
            env.compute_hash(p),
            "answer shape changed the {p} hash\ninput: {}",
            shown(data)
        );
    }
}

/// `split_records`: the record splitter (JSONL / JSON array / pretty documents) over a tiny
/// read buffer, so records and layout decisions straddle `fill_buf` boundaries. Records over
/// 4096 bytes are skipped by length.
pub fn split_records(data: &[u8]) {
    // A 1..=16-byte read buffer, varied by input length so seeds keep their first bytes.
    let cap = 1 + data.len() % 16;
    let mut rr = RecordReader::new(std::io::BufReader::with_capacity(cap, data), 4096);
    let mut batch = Batch::default();
    let mut next: u64 = 0;
    let mut total_bytes = 0usize;
    while rr
        .next_batch(&mut batch)
        .unwrap_or_else(|e| panic!("reading from a slice cannot fail: {e}"))
    {
        for meta in &batch.records {
            let bytes = batch.bytes(meta);
            assert_eq!(meta.index, next, "record indexes must increase by one");
            next += 1;
            assert!(
                bytes.len() <= 4096,
                "record longer than the limit was kept: {}",
                bytes.len()
            );
            if meta.oversized.is_some() {
                assert!(bytes.is_empty(), "an oversized record must carry no bytes");
            }
            total_bytes += bytes.len();
        }
    }
    assert_eq!(rr.records_read(), next);
    assert!(total_bytes <= data.len());
    assert!(rr.bytes_read() <= data.len() as u64);
}

/// `verify_stream`: the whole verifier over one input stream, with an empty keyring and
/// default options. An ok report has records.
pub fn verify_stream(data: &[u8]) {
    let ring = Keyring::new();
    let mut v = Verifier::new(&ring, Options::default());
    v.verify_reader("fuzz", std::io::BufReader::new(data), &mut |_| {})
        .unwrap_or_else(|e| panic!("reading from a slice cannot fail: {e}"));
    let r = v.finish();
    assert!(!r.ok || r.records > 0, "ok report with no records: {r:?}");
}
