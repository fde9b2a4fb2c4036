//! Test-only keys from `fixtures/keys`, v1 chains sealed from drafts, and files of records.

use std::path::{Path, PathBuf};

use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::Hash32;

/// The test-only private key `fixtures/keys/NAME.key.pem`.
pub fn fixture_key(name: &str) -> SigningKey {
    let pem = std::fs::read_to_string(crate::fixture(&format!("keys/{name}.key.pem"))).unwrap();
    SigningKey::from_pkcs8_pem(&pem).unwrap()
}

/// `fixtures/v1/keyring.json`: the test-only keys `test-only-a` and `test-only-b`.
pub fn v1_keyring() -> PathBuf {
    crate::fixture("v1/keyring.json")
}

/// `fixtures/interop/zt-infra-full`: the shared interop vectors.
pub fn interop_dir() -> PathBuf {
    crate::fixture("interop/zt-infra-full")
}

/// The keyring of the interop vectors.
pub fn interop_keyring() -> PathBuf {
    interop_dir().join("keyring.json")
}

/// The records of the interop `valid.jsonl`, split on `\n` only.
pub fn valid_lines() -> Vec<String> {
    std::fs::read_to_string(interop_dir().join("valid.jsonl"))
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Records `start..start + n` sealed one after another, each the draft `draft(seq)` made
/// linked to the one before it (the first to `prev`), signed by `signer` (`None`: unsigned):
/// (JSON, hash) each.
pub fn seal_chain(
    start: u64,
    n: u64,
    prev: Hash32,
    signer: Option<(&SigningKey, &str)>,
    mut draft: impl FnMut(u64) -> V1Draft,
) -> Vec<(String, Hash32)> {
    let mut prev = prev;
    (start..start + n)
        .map(|seq| {
            let s = V1Draft {
                previous_hash: prev,
                ..draft(seq)
            }
            .seal(signer);
            prev = s.current_hash;
            (s.json, s.current_hash)
        })
        .collect()
}

/// Writes `lines` to `path`, each ended by `\n`.
pub fn write_lines<S: AsRef<str>>(path: &Path, lines: &[S]) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l.as_ref());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Writes the JSON of sealed records (`(JSON, hash)`, as [`seal_chain`] makes them) to `path`,
/// one a line.
pub fn write_records(path: &Path, records: &[(String, Hash32)]) {
    let lines: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    write_lines(path, &lines);
}

/// Shuffles `v` in place, the same way for the same seed (xorshift).
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut seed = seed | 1;
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}
