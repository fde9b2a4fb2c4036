//! Every fuzz target's seeds and saved regressions, replayed through its body under a stable
//! `cargo test`: `fuzz/seed.sh` writes them into a temporary folder (fixtures, `fuzz/seeds/`,
//! `fuzz/regressions/`), one test per target replays its folder. With
//! `ZT_FUZZ_CORPUS=DIR`, `DIR/<target>/` is replayed too (a corpus a fuzzing run left).
//!
//! Then a smoke run: [`MUTANTS`] inputs per target made from its seeds by deterministic
//! mutations (bit flips, cuts, splices, inserted bytes that matter to JSON and protobuf), the
//! same each run, so a body that a small change of a seed breaks fails here without libFuzzer.
//! A mutant that fails is named by its seed and number (`ZT_FUZZ_MUTANTS=N` for more).
#![allow(
    clippy::unwrap_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use zt_fuzz_bodies::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn seeded() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .arg(fuzz_dir().join("seed.sh"))
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn replay(target: &str) {
    let body = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .unwrap_or_else(|| panic!("no target {target}"))
        .1;
    let mut inputs = files(&seeded().join(target));
    assert!(!inputs.is_empty(), "{target} has no seeds");
    if let Some(extra) = std::env::var_os("ZT_FUZZ_CORPUS") {
        inputs.extend(files(&Path::new(&extra).join(target)));
    }
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let r = std::panic::catch_unwind(|| body(&data));
        if let Err(e) = r {
            std::panic::resume_unwind(Box::new(format!(
                "{target}: {} fails: {}",
                path.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic)")
            )));
        }
    }
    eprintln!("{target}: {} inputs replayed", inputs.len());
    smoke(target, body, &inputs);
}

/// Mutants per target in the smoke run.
const MUTANTS: usize = 600;

/// splitmix64: a small deterministic generator, so every run tries the same mutants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap()
    }
}

/// Bytes that mean something to the parsers under test.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"\r",
    b"\\u0000",
    b"\\ud800",
    b"\xe2\x80\xae",
    b"1e999",
    b"-0",
    b"9007199254740993",
    b"null",
    b"\x0a\xff\xff\xff\xff\x0f",
    b"\x80",
    b"\xc0\xaf",
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            2 => {
                let bytes = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, bytes.iter().copied());
            }
            3 => v.truncate(at),
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from) + 1;
                v.splice(at..at, other[from..from + len].iter().copied());
            }
            _ if !v.is_empty() => {
                let from = rng.below(v.len());
                let len = (rng.below(32) + 1).min(v.len() - from);
                let chunk = v[from..from + len].to_vec();
                v.splice(at..at, chunk);
            }
            _ => v.push(u8::try_from(rng.below(256)).unwrap()),
        }
    }
    v
}

fn smoke(target: &str, body: zt_fuzz_bodies::Body, inputs: &[PathBuf]) {
    let n = std::env::var("ZT_FUZZ_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTANTS);
    let seeds: Vec<Vec<u8>> = inputs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let mut rng = Rng(target
        .bytes()
        .fold(0, |h, b| h.wrapping_mul(31) ^ u64::from(b)));
    for m in 0..n {
        let which = m % seeds.len();
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, &seeds[which], other);
        if let Err(e) = std::panic::catch_unwind(|| body(&input)) {
            let saved = std::env::temp_dir().join(format!("zt-fuzz-{target}-mutant-{m}"));
            std::fs::write(&saved, &input).unwrap();
            std::panic::resume_unwind(Box::new(format!(
                "{target}: mutant {m} of {} fails (saved as {}): {}",
                inputs[which].display(),
                saved.display(),
                e.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| e.downcast_ref::<&str>().copied())
                    .unwrap_or("(panic)")
            )));
        }
    }
    eprintln!("{target}: {n} mutants survived");
}

macro_rules! replay_tests {
    ($($t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                replay(stringify!($t));
            }
        )*

        /// The targets here, in `TARGETS`, in `fuzz/Cargo.toml` and in `seed.sh` are the same.
        #[test]
        fn every_target_is_replayed_built_and_seeded() {
            let mut here = vec![$(stringify!($t)),*];
            here.sort_unstable();
            let mut listed: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            listed.sort_unstable();
            assert_eq!(here, listed, "replay tests vs zt_fuzz_bodies::TARGETS");
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
            let mut bins: Vec<&str> = manifest
                .split("[[bin]]")
                .skip(1)
                .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = ")))
                .map(|n| n.trim_matches('"'))
                .collect();
            bins.sort_unstable();
            assert_eq!(bins, listed, "fuzz/Cargo.toml [[bin]]s vs TARGETS");
            for t in &listed {
                assert!(seeded().join(t).is_dir(), "seed.sh does not seed {t}");
            }
        }
    };
}

replay_tests!(
    parse_record,
    split_records,
    verify_stream,
    otlp_protobuf,
    otlp_json,
    capability_token,
    capability_chain,
    keyring,
    proof_bundle,
    broker_lines,
    json_schema,
    control_plane_http,
    spiffe_bundle,
    signed_note,
);
