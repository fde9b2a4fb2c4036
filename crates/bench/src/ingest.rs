//! `zt-audit bench ingest`: a load generator for `zt-audit serve`.
//!
//! Generates signed v1 envelopes (one chain per connection, so nothing forks), pre-encodes
//! them as OTLP protobuf requests, starts this binary's `serve` on a fresh store, replays the
//! requests over keep-alive connections, and reports envelopes/s (signature checks and
//! durable commits included), request latency percentiles and the server's peak RSS, beside
//! `zt-audit verify`'s offline rate on the same envelopes in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::Hash32;
use zt_ingest::otlp;

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Envelopes in all.
    #[arg(long, default_value_t = 40_000)]
    records: usize,
    /// Concurrent connections (one chain each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Envelopes per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Instead: a legitimate exporter alone, then beside --bombs concurrent senders of 16 KiB
    /// gzip requests holding 8.4 million empty LogRecords each, then one such request with
    /// the limits lifted (the reference: what one costs when it is decoded).
    #[arg(long)]
    hostile: bool,
    /// With --hostile: concurrent bomb senders.
    #[arg(long, default_value_t = 64, requires = "hostile")]
    bombs: usize,
    /// With --hostile: runs of phases 1 and 2, alternating (medians; peak RSS: the highest).
    #[arg(long, default_value_t = 3, requires = "hostile")]
    runs: usize,
    /// With --hostile: skip the one bomb with the limits lifted (it takes ~1.5 GB).
    #[arg(long, requires = "hostile")]
    no_reference: bool,
}

pub(crate) fn envelopes(n_chains: usize, per_chain: usize, key: &SigningKey) -> Vec<Vec<String>> {
    (0..n_chains)
        .into_par_iter()
        .map(|c| {
            let mut prev = Hash32::ZERO;
            (0..per_chain as u64)
                .map(|seq| {
                    let s = V1Draft {
                        chain_id: format!("bench-{c}"),
                        seq,
                        actor: format!("agent-{c}"),
                        action: if seq % 5 == 0 {
                            "aws.ec2.terminate_instances"
                        } else {
                            "hello-world.say_hello"
                        }
                        .into(),
                        resource: format!("bench/{c}/{seq}"),
                        decision: if seq % 5 == 0 { "deny" } else { "allow" }.into(),
                        reason: "bench".into(),
                        timestamp: "2026-10-01T00:00:00.000Z".into(),
                        previous_hash: prev,
                        context: None,
                    }
                    .seal(Some((key, "bench-key")));
                    prev = s.current_hash;
                    s.json
                })
                .collect()
        })
        .collect()
}

pub(crate) fn encode(batch: &[String]) -> Vec<u8> {
    otlp::request(batch.iter().map(|j| otlp::envelope_record(j)).collect())
}

/// One keep-alive connection: POST each body in turn, wait for each answer.
pub(crate) fn replay(addr: &str, bodies: &[Vec<u8>]) -> Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut lat = Vec::with_capacity(bodies.len());
    for body in bodies {
        let t = Instant::now();
        write!(
            w,
            "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        w.write_all(body)?;
        let mut status = String::new();
        r.read_line(&mut status)?;
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            r.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        r.read_exact(&mut buf)?;
        if !status.contains(" 200 ") {
            bail!("server answered {}", status.trim());
        }
        lat.push(t.elapsed());
    }
    Ok(lat)
}

pub(crate) fn peak_rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn offline_verify_rate(exe: &Path, dir: &Path, chains: &[Vec<String>], ring: &Path) -> Result<f64> {
    let file = dir.join("offline.jsonl");
    let mut text = String::new();
    for c in chains {
        for l in c {
            text.push_str(l);
            text.push('\n');
        }
    }
    std::fs::write(&file, text)?;
    let n: usize = chains.iter().map(Vec::len).sum();
    let t = Instant::now();
    let st = Command::new(exe)
        .args(["verify", "--format", "json", "--keyring"])
        .arg(ring)
        .arg(&file)
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("offline verify failed on the generated envelopes");
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

pub fn run(a: IngestArgs) -> Result<ExitCode> {
    if a.hostile {
        crate::hostile::run(&crate::hostile::HostileArgs {
            records: a.records,
            batch: a.batch,
            bombs: a.bombs,
            reference: !a.no_reference,
            runs: a.runs,
            json: a.json,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.records == 0 || a.connections == 0 || a.batch == 0 {
        bail!("--records, --connections and --batch must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let per_chain = a.records.div_ceil(a.connections);
    eprintln!(
        "generating {} signed v1 envelopes in {} chains ...",
        per_chain * a.connections,
        a.connections
    );
    let key = SigningKey::generate();
    let chains = envelopes(a.connections, per_chain, &key);
    let mut ring = Keyring::new();
    ring.insert(KeyEntry::new("bench-key", key.public_key()))?;
    let ring_path = tmp.path().join("keyring.json");
    std::fs::write(&ring_path, serde_json::to_string(&ring.to_json())?)?;
    let requests: Vec<Vec<Vec<u8>>> = chains
        .iter()
        .map(|c| c.chunks(a.batch).map(encode).collect())
        .collect();

    let exe = std::env::current_exe()?;
    eprintln!("offline zt-audit verify on the same envelopes ...");
    let offline = offline_verify_rate(&exe, tmp.path(), &chains, &ring_path)?;

    let db = tmp.path().join("bench.db");
    let server = crate::hostile::Serve::start(&db, &ring_path, &[])?;
    let addr = server.addr.clone();
    let pid = server.pid();
    eprintln!(
        "replaying {} requests over {} connections to {addr} ...",
        requests.iter().map(Vec::len).sum::<usize>(),
        a.connections
    );
    let t = Instant::now();
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| s.spawn(|| replay(&addr, r)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("client thread panicked")))
            })
            .collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let rss = peak_rss_mib(pid);
    server.stop();
    let mut lat: Vec<Duration> = Vec::new();
    for r in results {
        lat.extend(r?);
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let total: usize = chains.iter().map(Vec::len).sum();
    let rate = total as f64 / secs;
    let store = zt_store::Store::open(&db)?;
    let stored = store.count_records()?;
    if stored != total as u64 {
        bail!("store holds {stored} envelopes, {total} were sent");
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "envelopes": total, "connections": a.connections, "batch": a.batch,
                "ingest_envelopes_per_s": rate, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "server_peak_rss_mib": rss, "offline_verify_records_per_s": offline,
                "ratio_to_offline_verify": rate / offline,
            })
        );
    } else {
        println!("zt-audit bench ingest: {total} signed v1 envelopes, {} connections, {} per request, synchronous=FULL", a.connections, a.batch);
        println!(
            "  ingest (verified + durably committed)   {rate:>9.0} envelopes/s   ({secs:.2} s)"
        );
        println!(
            "  request latency                         p50 {:.1} ms   p99 {:.1} ms",
            pct(0.5),
            pct(0.99)
        );
        println!(
            "  server peak RSS                         {:.0} MiB",
            rss.unwrap_or(f64::NAN)
        );
        println!("  offline zt-audit verify, same envelopes {offline:>9.0} records/s");
        println!(
            "  ratio ingest / offline verify: {:.2} (target: at least 0.5)",
            rate / offline
        );
    }
    Ok(ExitCode::SUCCESS)
}
