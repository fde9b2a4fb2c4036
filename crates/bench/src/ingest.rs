//! `zt-bench ingest`: a load generator for `zt-audit serve`.
//!
//! Generates signed v1 envelopes (one chain per connection, so nothing forks), pre-encodes
//! them as OTLP protobuf requests, starts this binary's `serve` on a fresh store, replays the
//! requests over keep-alive connections, and reports envelopes/s (signature checks and
//! durable commits included), request latency percentiles and the server's peak RSS, beside
//! `zt-audit verify`'s offline rate on the same envelopes in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::procs::peak_rss_mib;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use zt_core::crypto::SigningKey;
use zt_core::keyring::{KeyEntry, Keyring};
use zt_core::Hash32;
use zt_ingest::otlp;

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Envelopes in all.
    #[arg(long, default_value_t = 40_000)]
    pub(crate) records: usize,
    /// Concurrent connections (one chain each).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Envelopes per request.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Instead: a legitimate exporter alone, then beside --bombs concurrent senders of 16 KiB
    /// gzip requests holding 8.4 million empty LogRecords each, then one such request with
    /// the limits lifted (the reference: what one costs when it is decoded).
    #[arg(long)]
    pub(crate) hostile: bool,
    /// With --hostile: concurrent bomb senders.
    #[arg(long, default_value_t = 64, requires = "hostile")]
    pub(crate) bombs: usize,
    /// Runs (medians): with --hostile, of phases 1 and 2, alternating (peak RSS: the highest);
    /// with --db, of each configuration.
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// With --hostile: skip the one bomb with the limits lifted (it takes ~1.5 GB).
    #[arg(long, requires = "hostile")]
    pub(crate) no_reference: bool,
    /// Also ingest into PostgreSQL (`postgres://USER@HOST:PORT/DB` of a server the user may
    /// create databases on): 1, 2 and 4 receivers on one fresh database each, beside the
    /// SQLite run, with the database's CPU share and cost per envelope.
    #[arg(long, value_name = "URL", conflicts_with = "hostile")]
    db: Option<String>,
}

pub(crate) fn envelopes(n_chains: usize, per_chain: usize, key: &SigningKey) -> Vec<Vec<String>> {
    (0..n_chains)
        .into_par_iter()
        .map(|c| {
            let shape = |seq: u64| {
                let denied = seq.is_multiple_of(5);
                crate::data::Shape {
                    actor: format!("agent-{c}"),
                    action: if denied {
                        "aws.ec2.terminate_instances"
                    } else {
                        "hello-world.say_hello"
                    }
                    .into(),
                    resource: format!("bench/{c}/{seq}"),
                    decision: if denied { "deny" } else { "allow" },
                }
            };
            crate::data::signed_chain(
                &format!("bench-{c}"),
                0,
                per_chain,
                Hash32::ZERO,
                key,
                shape,
            )
            .into_iter()
            .map(|(json, _)| json)
            .collect()
        })
        .collect()
}

pub(crate) fn encode(batch: &[String]) -> Vec<u8> {
    otlp::request(batch.iter().map(|j| otlp::envelope_record(j)).collect())
}

/// One keep-alive connection: POST each body in turn, wait for each answer.
/// Each client's requests replayed on a thread of its own, client `i` to `addrs[i % len]`:
/// each client's latencies, or why it stopped.
fn replay_all(requests: &[Vec<Vec<u8>>], addrs: &[&str]) -> Vec<Result<Vec<Duration>>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let addr = addrs[i % addrs.len()];
                s.spawn(move || replay(addr, r))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("client thread panicked")))
            })
            .collect()
    })
}

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

    let exe = crate::procs::zt_audit()?;
    eprintln!("offline zt-audit verify on the same envelopes ...");
    let offline = offline_verify_rate(&exe, tmp.path(), &chains, &ring_path)?;

    let sqlite = tmp.path().join("bench.db");
    let total: usize = chains.iter().map(Vec::len).sum();
    let reference = ingest(
        &zt_store::Location::Sqlite(sqlite),
        &ring_path,
        &requests,
        1,
        total,
    )?;
    if let Some(server) = &a.db {
        return postgres(
            &a, server, &ring_path, &requests, total, &reference, offline,
        );
    }
    let Run {
        rate,
        secs,
        p50,
        p99,
        rss,
        ..
    } = reference;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "envelopes": total, "connections": a.connections, "batch": a.batch,
                "ingest_envelopes_per_s": rate, "p50_ms": p50, "p99_ms": p99,
                "server_peak_rss_mib": rss, "offline_verify_records_per_s": offline,
                "ratio_to_offline_verify": rate / offline,
            })
        );
    } else {
        println!("zt-bench ingest: {total} signed v1 envelopes, {} connections, {} per request, synchronous=FULL", a.connections, a.batch);
        println!(
            "  ingest (verified + durably committed)   {rate:>9.0} envelopes/s   ({secs:.2} s)"
        );
        println!("  request latency                         p50 {p50:.1} ms   p99 {p99:.1} ms");
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

/// One ingest run's figures.
#[derive(Debug, Clone)]
struct Run {
    rate: f64,
    secs: f64,
    p50: f64,
    p99: f64,
    rss: Option<f64>,
    /// PostgreSQL: CPU seconds of the server (postmaster and its processes).
    db_cpu: Option<f64>,
    /// PostgreSQL: statements the receivers sent.
    statements: u64,
    /// PostgreSQL: WAL bytes and database growth.
    wal_bytes: i64,
    db_bytes: i64,
}

/// Starts `receivers` `serve` processes on `db`, replays the requests (connections spread
/// over them), checks the store holds every envelope once.
fn ingest(
    db: &zt_store::Location,
    ring: &Path,
    requests: &[Vec<Vec<u8>>],
    receivers: usize,
    total: usize,
) -> Result<Run> {
    let url = db.to_string();
    let servers: Vec<crate::procs::Serve> = (0..receivers)
        .map(|_| crate::procs::Serve::start_at(&url, ring, &[]))
        .collect::<Result<_>>()?;
    let probe = zt_store::Store::connect(db)?;
    let before = probe.postgres_stats()?;
    let postmaster = before.and_then(|s| parent_pid(s.backend_pid));
    let cpu_before = postmaster.and_then(tree_cpu_secs);
    eprintln!(
        "replaying {} requests over {} connections to {receivers} receiver(s) on {db} ...",
        requests.iter().map(Vec::len).sum::<usize>(),
        requests.len()
    );
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let t = Instant::now();
    let results = replay_all(requests, &addrs);
    let secs = t.elapsed().as_secs_f64();
    let cpu_after = postmaster.and_then(tree_cpu_secs);
    let after = probe.postgres_stats()?;
    let rss = servers
        .iter()
        .filter_map(|s| peak_rss_mib(s.pid()))
        .reduce(f64::max);
    let statements: u64 = servers
        .iter()
        .map(|s| crate::procs::metric(&s.addr, "zt_ingest_store_statements_total"))
        .sum();
    for s in servers {
        s.stop();
    }
    let mut lat: Vec<Duration> = Vec::new();
    for r in results {
        lat.extend(r?);
    }
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let stored = probe.count_records()?;
    if stored != total as u64 {
        bail!("store holds {stored} envelopes, {total} were sent");
    }
    Ok(Run {
        rate: total as f64 / secs,
        secs,
        p50: pct(0.5),
        p99: pct(0.99),
        rss,
        db_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        statements,
        wal_bytes: before
            .zip(after)
            .map_or(0, |(b, a)| a.wal_bytes - b.wal_bytes),
        db_bytes: before
            .zip(after)
            .map_or(0, |(b, a)| a.database_bytes - b.database_bytes),
    })
}

fn parent_pid(pid: i64) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// CPU seconds of a process, its reaped children, and its live children: a PostgreSQL server
/// (the postmaster and its backends, WAL writer, checkpointer, ...), when it runs here.
fn tree_cpu_secs(root: u32) -> Option<f64> {
    let stat = |pid: &str| -> Option<(u32, f64, f64)> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
        let ppid: u32 = f.get(1)?.parse().ok()?;
        let own = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        let reaped = f.get(13)?.parse::<f64>().ok()? + f.get(14)?.parse::<f64>().ok()?;
        Some((ppid, own, reaped))
    };
    let (_, own, reaped) = stat(&root.to_string())?;
    let mut ticks = own + reaped;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some((ppid, own, _)) = stat(pid) {
            if ppid == root {
                ticks += own;
            }
        }
    }
    Some(ticks / crate::procs::clock_ticks())
}

fn median_run(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    runs.swap_remove(runs.len() / 2)
}

/// The PostgreSQL comparison: SQLite (one receiver, the reference already run) beside
/// PostgreSQL with 1, 2 and 4 receivers.
fn postgres(
    a: &IngestArgs,
    server: &str,
    ring: &Path,
    requests: &[Vec<Vec<u8>>],
    total: usize,
    first_sqlite: &Run,
    offline: f64,
) -> Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64;
    let runs = a.runs.max(1);
    let tmp = tempfile::tempdir()?;
    let mut sqlite = vec![first_sqlite.clone()];
    for i in 1..runs {
        let db = zt_store::Location::Sqlite(tmp.path().join(format!("bench-{i}.db")));
        sqlite.push(ingest(&db, ring, requests, 1, total)?);
    }
    let sqlite = median_run(sqlite);
    let mut pg = Vec::new();
    for receivers in [1usize, 2, 4] {
        let mut each = Vec::new();
        for _ in 0..runs {
            let db = zt_store::ScratchDatabase::create(server, "zt_bench")?;
            each.push(ingest(db.location(), ring, requests, receivers, total)?);
        }
        pg.push((receivers, median_run(each)));
    }
    let one = &pg[0].1;
    let ratio = one.rate / sqlite.rate;
    let per = |v: f64| v / total as f64;
    if a.json {
        let rows: Vec<serde_json::Value> = pg
            .iter()
            .map(|(n, r)| {
                serde_json::json!({
                    "receivers": n, "envelopes_per_s": r.rate, "p50_ms": r.p50, "p99_ms": r.p99,
                    "db_cpu_share": r.db_cpu.map(|c| c / (r.secs * cores)),
                    "statements_per_envelope": per(r.statements as f64),
                    "wal_bytes_per_envelope": per(r.wal_bytes as f64),
                    "db_bytes_per_envelope": per(r.db_bytes as f64),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "envelopes": total, "connections": a.connections, "batch": a.batch, "runs": runs,
                "sqlite": {"envelopes_per_s": sqlite.rate, "p50_ms": sqlite.p50, "p99_ms": sqlite.p99},
                "postgres": rows, "ratio_postgres_1_to_sqlite": ratio,
                "offline_verify_records_per_s": offline,
            })
        );
    } else {
        println!(
            "zt-bench ingest --db postgres: {total} signed v1 envelopes, {} connections, {} per request, durable commits, medians of {runs}",
            a.connections, a.batch
        );
        println!(
            "  SQLite,     1 receiver   {:>8.0} envelopes/s   p50 {:>5.1} ms   p99 {:>6.1} ms",
            sqlite.rate, sqlite.p50, sqlite.p99
        );
        for (n, r) in &pg {
            println!(
                "  PostgreSQL, {n} receiver{} {:>8.0} envelopes/s   p50 {:>5.1} ms   p99 {:>6.1} ms   database CPU {:>4.0}% of {cores} cores",
                if *n == 1 { " " } else { "s" },
                r.rate,
                r.p50,
                r.p99,
                r.db_cpu.map_or(f64::NAN, |c| 100.0 * c / (r.secs * cores)),
            );
        }
        println!(
            "  PostgreSQL cost per envelope (1 receiver): {:.2} statements, {:.0} WAL bytes, {:.0} bytes of table and index growth, {:.0} µs of database CPU",
            per(one.statements as f64),
            per(one.wal_bytes as f64),
            per(one.db_bytes as f64),
            one.db_cpu.map_or(f64::NAN, |c| per(c) * 1e6),
        );
        println!("  ratio PostgreSQL (1 receiver) / SQLite: {ratio:.2} (target: at least 0.5)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Envelopes made once (their chains, keyring and OTLP requests), ingested again into a fresh
/// store by each [`Prepared::run`]: for benches that compare ingest rates in one run.
pub(crate) struct Prepared {
    dir: tempfile::TempDir,
    ring: std::path::PathBuf,
    requests: Vec<Vec<Vec<u8>>>,
    total: usize,
}

impl Prepared {
    /// `records` signed envelopes in `connections` chains, `batch` per request.
    pub(crate) fn new(records: usize, connections: usize, batch: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let per_chain = records.div_ceil(connections);
        let key = SigningKey::generate();
        let chains = envelopes(connections, per_chain, &key);
        let mut ring = Keyring::new();
        ring.insert(KeyEntry::new("bench-key", key.public_key()))?;
        let ring_path = dir.path().join("keyring.json");
        std::fs::write(&ring_path, serde_json::to_string(&ring.to_json())?)?;
        Ok(Self {
            requests: chains
                .iter()
                .map(|c| c.chunks(batch).map(encode).collect())
                .collect(),
            total: chains.iter().map(Vec::len).sum(),
            ring: ring_path,
            dir,
        })
    }

    /// Ingests them into a fresh SQLite store through one `serve`, beside `held` half-open
    /// connections (none: 0); envelopes per second, and the connections the server had open
    /// at the end. Every envelope must be stored once.
    pub(crate) fn run(&self, held: usize) -> Result<(f64, u64)> {
        let db = tempfile::NamedTempFile::new_in(self.dir.path())?.into_temp_path();
        std::fs::remove_file(&db)?;
        let server = crate::procs::Serve::start(&db, &self.ring, &[])?;
        let holder = match held {
            0 => None,
            n => Some(crate::procs::holder(server.addr.parse()?, n)?),
        };
        let t = Instant::now();
        let results = replay_all(&self.requests, &[server.addr.as_str()]);
        let secs = t.elapsed().as_secs_f64();
        let open = crate::procs::open_connections(&server.addr);
        if let Some(h) = holder {
            h.finish::<crate::procs::Held>()?;
        }
        server.stop();
        for r in results {
            r?;
        }
        let stored = zt_store::Store::open(&db)?.count_records()?;
        if stored != self.total as u64 {
            bail!("store holds {stored} envelopes, {} were sent", self.total);
        }
        Ok((self.total as f64 / secs, open))
    }
}
