//! The record splitter (JSONL / JSON array / pretty documents) over a tiny read buffer, so
//! records and layout decisions straddle `fill_buf` boundaries. Records over 4096 bytes are
//! skipped by length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zt_verifier::source::{Batch, RecordReader};

fuzz_target!(|data: &[u8]| {
    // A 1..=16-byte read buffer, varied by input length so seeds keep their first bytes.
    let cap = 1 + data.len() % 16;
    let input = data;
    let mut rr = RecordReader::new(std::io::BufReader::with_capacity(cap, input), 4096);
    let mut batch = Batch::default();
    let mut next: u64 = 0;
    let mut total_bytes = 0usize;
    while rr.next_batch(&mut batch).expect("reading from a slice cannot fail") {
        for meta in &batch.records {
            let bytes = batch.bytes(meta);
            assert_eq!(meta.index, next, "record indexes must increase by one");
            next += 1;
            assert!(bytes.len() <= 4096, "record longer than the limit was kept: {}", bytes.len());
            if meta.oversized.is_some() {
                assert!(bytes.is_empty(), "an oversized record must carry no bytes");
            }
            total_bytes += bytes.len();
        }
    }
    assert_eq!(rr.records_read(), next);
    assert!(total_bytes <= input.len());
    assert!(rr.bytes_read() <= input.len() as u64);
});
