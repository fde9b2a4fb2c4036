//! `zt-bench verify`: generates a signed zt-infra-full chain, then measures in one run:
//! the backend's raw P-256 verify rate (one core, and the pure-Rust backend for reference),
//! `zt-audit verify` on the chain (this very binary, as a user runs it), and the Node/OpenSSL
//! reference verifier (`bench/node/verify.mjs`, embedded) on the same file. Medians of
//! `--runs` runs; the ratio is what docs/benchmarks.md quotes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use zt_core::crypto::{self, SigningKey};
use zt_core::envelope::{seal_zt_infra_full, zt_infra_full_hash, LineageFields};
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::Hash32;

const NODE_VERIFIER: &str = include_str!("../../../bench/node/verify.mjs");

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Records in the generated chain.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Timed runs of each verifier (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Node.js executable for the reference verifier (skipped when not found).
    #[arg(long, default_value = "node")]
    node: String,
    /// Keep the generated chain in this directory (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Writes a chain of `n` signed zt-infra-full records and its keyring into `dir`.
pub fn generate_chain(dir: &Path, n: usize) -> Result<(PathBuf, PathBuf, Hash32)> {
    let key = SigningKey::generate();
    let key_id = "arn:aws:kms:us-east-2:111122223333:key/bench-only-not-a-real-key";
    // Links are sequential; signatures are the cost, and independent: hash first, sign in
    // parallel, by sealing each record with its predecessor's hash.
    let actions = crate::data::ACTIONS;
    let owned: Vec<[String; 4]> = (0..n)
        .map(|i| {
            let a = actions[i % actions.len()];
            let deny = a.starts_with("aws.") || a.starts_with("shell.");
            [
                format!("agent-{}", i % 17),
                format!("bench/resource/{i}"),
                timestamp(i),
                if deny { "deny" } else { "allow" }.to_owned(),
            ]
        })
        .collect();
    let fields = |i: usize| {
        let [actor, resource, ts, decision] = &owned[i];
        LineageFields {
            actor,
            action: actions[i % actions.len()],
            resource,
            decision,
            reason: if decision == "deny" {
                "dangerous action denied by default"
            } else {
                "action allowed by policy"
            },
            timestamp: ts,
        }
    };
    // Links are sequential and cheap; signatures are the cost and independent: hash the chain
    // first, then seal (sign) every record in parallel.
    let mut prevs = Vec::with_capacity(n);
    let mut prev = Hash32::ZERO;
    for i in 0..n {
        prevs.push(prev);
        prev = zt_infra_full_hash(&fields(i), &prev);
    }
    let lines: Vec<String> = (0..n)
        .into_par_iter()
        .map(|i| seal_zt_infra_full(&fields(i), &prevs[i], (&key, key_id)).json)
        .collect();
    let chain = dir.join("chain.jsonl");
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&chain, text).with_context(|| format!("writing {}", chain.display()))?;
    let mut ring = Keyring::new();
    ring.insert(KeyEntry::new(key_id, key.public_key()))?;
    let ring_path = dir.join("keyring.json");
    std::fs::write(&ring_path, serde_json::to_string_pretty(&ring.to_json())?)?;
    Ok((chain, ring_path, prev))
}

fn timestamp(i: usize) -> String {
    let secs = 1_790_000_000i64 + i as i64;
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let ms = i % 1000;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn raw_rate(n: usize, pure: bool) -> f64 {
    let key = SigningKey::generate();
    let pk = key.public_key();
    let sigs: Vec<(Hash32, Vec<u8>)> = (0..256u32)
        .map(|i| {
            let d = Hash32::digest(&i.to_le_bytes());
            (d, key.sign_digest(&d))
        })
        .collect();
    let t = Instant::now();
    let mut ok = 0usize;
    for i in 0..n {
        let (d, s) = &sigs[i % sigs.len()];
        let r = if pure {
            pk.verify_digest_pure(d, s)
        } else {
            pk.verify_digest(d, s)
        };
        ok += usize::from(r.is_ok());
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ok, n, "benchmark signatures must verify");
    n as f64 / secs
}

/// Runs the benchmark.
pub fn run(a: VerifyArgs) -> Result<ExitCode> {
    if a.records == 0 || a.runs == 0 {
        bail!("--records and --runs must be at least 1");
    }
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    eprintln!(
        "generating a {}-record signed zt-infra-full chain in {} ...",
        a.records,
        dir.display()
    );
    let t = Instant::now();
    let (chain, ring, head) = generate_chain(&dir, a.records)?;
    eprintln!("  done in {:.1}s", t.elapsed().as_secs_f64());

    eprintln!("raw P-256 verify rate (one core) ...");
    let raw = raw_rate(20_000, false);
    let raw_pure = raw_rate(4_000, true);

    let exe = crate::procs::zt_audit()?;
    let mut ours = Vec::new();
    for i in 0..a.runs {
        let t = Instant::now();
        let out = Command::new(&exe)
            .arg("verify")
            .arg(&chain)
            .arg("--keyring")
            .arg(&ring)
            .arg("--expect-head")
            .arg(head.to_hex())
            .arg("--format")
            .arg("json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()
            .context("running zt-audit verify")?;
        let secs = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "zt-audit verify failed on the generated chain (exit {:?})",
                out.status.code()
            );
        }
        eprintln!("  zt-audit verify run {}: {:.3}s", i + 1, secs);
        ours.push(a.records as f64 / secs);
    }

    let script = dir.join("node-verify.mjs");
    std::fs::write(&script, NODE_VERIFIER)?;
    let mut node = Vec::new();
    let mut node_version = None;
    for i in 0..a.runs {
        let t = Instant::now();
        let out = match Command::new(&a.node)
            .arg(&script)
            .arg(&chain)
            .arg(&ring)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("  node reference verifier skipped: {e}");
                break;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["ok"] != serde_json::Value::Bool(true) {
            bail!(
                "node reference verifier did not verify the chain: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        node_version = v["node"]
            .as_str()
            .map(|s| format!("node {s}, OpenSSL {}", v["openssl"].as_str().unwrap_or("?")));
        eprintln!("  node reference run {}: {:.3}s", i + 1, secs);
        node.push(a.records as f64 / secs);
    }

    let ours_m = crate::stats::median(ours);
    let node_m = if node.is_empty() {
        None
    } else {
        Some(crate::stats::median(node))
    };
    let ratio = node_m.map(|n| ours_m / n);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "records": a.records,
                "cores": cores,
                "backend": crypto::backend_name(),
                "raw_verify_per_s_one_core": raw,
                "raw_verify_per_s_one_core_pure_rust": raw_pure,
                "zt_audit_verify_records_per_s": ours_m,
                "node_reference_records_per_s": node_m,
                "node": node_version,
                "ratio_vs_node": ratio,
            })
        );
    } else {
        println!(
            "zt-bench verify: {} records, {} cores, median of {} runs",
            a.records, cores, a.runs
        );
        println!(
            "  backend {:<28} raw verify, one core   {:>9.0} /s",
            crypto::backend_name(),
            raw
        );
        println!(
            "  backend {:<28} raw verify, one core   {:>9.0} /s",
            "p256 (pure Rust)", raw_pure
        );
        println!(
            "  zt-audit verify (end to end, whole process)         {:>9.0} records/s",
            ours_m
        );
        match (node_m, ratio) {
            (Some(n), Some(r)) => {
                println!(
                    "  Node reference verifier ({})  {:>9.0} records/s",
                    node_version.as_deref().unwrap_or("node"),
                    n
                );
                println!("  ratio zt-audit / Node: {r:.2}x");
            }
            _ => println!("  Node reference verifier: not run (no `{}`)", a.node),
        }
    }
    Ok(ExitCode::SUCCESS)
}
