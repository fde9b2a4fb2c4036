//! `zt-bench ingest --hostile`: `zt-audit serve` under requests built to exhaust it,
//! while a legitimate exporter keeps sending.
//!
//! The bomb: an `ExportLogsServiceRequest` of 8.4 million empty LogRecords (2 bytes each on
//! the wire, just under the 16 MiB body limit once decompressed), gzip-compressed to ~16 KiB.
//! Decoded whole it is ~1.5 GB. Three phases, each on a fresh `serve` and store, in one run:
//!
//! 1. **exporter alone** (the reference): signed v1 envelopes in requests of `--batch` over
//!    one keep-alive connection; envelopes/s, latency, the server's peak RSS and CPU time;
//! 2. **exporter and `--bombs` bomb senders** at once, each sending bombs back to back on its
//!    own connection for as long as the exporter runs; the same measures, plus what the
//!    bombs got back. Every envelope the exporter was answered 200 for must be in the store;
//! 3. **one bomb, limits lifted** (`--max-log-records` and `--max-decoded-bytes` set out of
//!    reach): what a single bomb costs when it is decoded, the behaviour before the limits.
//!
//! Phases 1 and 2 alternate over `--runs` runs (medians; the peak RSS reported is the highest
//! of any run, since the claim is a bound); phase 3 runs once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zt_core::crypto::SigningKey;
use zt_core::keyring::{KeyEntry, Keyring};

use crate::ingest::{encode, envelopes, replay};
use crate::procs::{peak_rss_mib, Serve};
use crate::stats::percentile;

/// The hostile benchmark's settings.
#[derive(Debug, Clone, Copy)]
pub struct HostileArgs {
    /// Envelopes the exporter sends per phase.
    pub records: usize,
    /// Envelopes per request.
    pub batch: usize,
    /// Concurrent bomb senders.
    pub bombs: usize,
    /// Run phase 3 (one bomb with the limits lifted).
    pub reference: bool,
    /// Runs of phases 1 and 2.
    pub runs: usize,
    /// One JSON object instead of a table.
    pub json: bool,
}

/// Largest count of empty records that keeps the decompressed request under 16 MiB.
const BOMB_RECORDS: usize = (16 << 20) / 2 - 16;

fn varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

/// The bomb, written on the wire directly (building it with prost would cost what it costs
/// the server), then gzip-compressed.
fn bomb() -> Result<Vec<u8>> {
    let mut scope = Vec::with_capacity(2 * BOMB_RECORDS + 16);
    scope.push(0x12); // ResourceLogs.scope_logs
    varint(2 * BOMB_RECORDS, &mut scope);
    for _ in 0..BOMB_RECORDS {
        scope.extend_from_slice(&[0x12, 0x00]); // ScopeLogs.log_records: an empty LogRecord
    }
    let mut req = vec![0x0a]; // ExportLogsServiceRequest.resource_logs
    varint(scope.len(), &mut req);
    req.extend_from_slice(&scope);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&req)?;
    Ok(gz.finish()?)
}

/// One request on its own connection: (status, message of the answer).
fn post_bomb(addr: &str, body: &[u8]) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let msg = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.chars().filter(|c| !c.is_control()).collect())
        .unwrap_or_default();
    Ok((status, msg))
}

#[derive(Debug, Default)]
struct BombCounts {
    sent: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

/// One phase's measures.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Phase {
    envelopes_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    landed: u64,
    server_peak_rss_mib: f64,
    server_cpu_s: f64,
    bombs_sent: u64,
    bombs_413: u64,
    bombs_other: u64,
}

fn exporter_phase(
    dir: &Path,
    ring: &Path,
    requests: &[Vec<u8>],
    envelopes: u64,
    bombs: usize,
    bomb: &Arc<Vec<u8>>,
    run: usize,
) -> Result<Phase> {
    let db = dir.join(format!("run-{run}-bombs-{bombs}.db"));
    let srv = Serve::start(&db, ring, &[])?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(BombCounts::default());
    let mut senders = Vec::new();
    for _ in 0..bombs {
        let (stop, counts, bomb, addr) = (
            Arc::clone(&stop),
            Arc::clone(&counts),
            Arc::clone(bomb),
            srv.addr.clone(),
        );
        senders.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let got = post_bomb(&addr, &bomb);
                counts.sent.fetch_add(1, Ordering::Relaxed);
                match got {
                    Ok((413, _)) => &counts.refused,
                    _ => &counts.other,
                }
                .fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    if bombs > 0 {
        // Every sender has its first bomb in before the exporter starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        while counts.sent.load(Ordering::Relaxed) < bombs as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let cpu0 = srv.cpu_secs().unwrap_or(0.0);
    let t = Instant::now();
    let lat = replay(&srv.addr, requests);
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    let cpu = srv.cpu_secs().unwrap_or(0.0) - cpu0;
    let rss = peak_rss_mib(srv.pid()).unwrap_or(f64::NAN);
    srv.stop();
    let mut lat = lat?;
    lat.sort_unstable();
    let landed = zt_store::Store::open(&db)?.count_records()?;
    if landed != envelopes {
        bail!("{landed} envelopes in the store, {envelopes} acknowledged");
    }
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = envelopes as f64 / secs;
    Ok(Phase {
        envelopes_per_s: rate,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        landed,
        server_peak_rss_mib: rss,
        server_cpu_s: cpu,
        bombs_sent: counts.sent.load(Ordering::Relaxed),
        bombs_413: counts.refused.load(Ordering::Relaxed),
        bombs_other: counts.other.load(Ordering::Relaxed),
    })
}

/// One bomb against a server whose limits are out of reach.
fn unlimited_phase(dir: &Path, ring: &Path, bomb: &[u8]) -> Result<(Phase, f64, u16)> {
    let db = dir.join("unlimited.db");
    let srv = Serve::start(
        &db,
        ring,
        &[
            "--max-log-records",
            "1000000000",
            "--max-decoded-bytes",
            "1000000000000",
        ],
    )?;
    let cpu0 = srv.cpu_secs().unwrap_or(0.0);
    let t = Instant::now();
    let (status, _) = post_bomb(&srv.addr, bomb)?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = srv.cpu_secs().unwrap_or(0.0) - cpu0;
    let rss = peak_rss_mib(srv.pid()).unwrap_or(f64::NAN);
    srv.stop();
    Ok((
        Phase {
            server_peak_rss_mib: rss,
            server_cpu_s: cpu,
            bombs_sent: 1,
            bombs_413: u64::from(status == 413),
            bombs_other: u64::from(status != 413),
            ..Phase::default()
        },
        secs,
        status,
    ))
}

/// Medians of the runs; the highest peak RSS (the bound is what matters); bombs summed.
fn summarise(runs: &[Phase]) -> Phase {
    let median = |f: &dyn Fn(&Phase) -> f64| crate::stats::median(runs.iter().map(f));
    Phase {
        envelopes_per_s: median(&|p| p.envelopes_per_s),
        p50_ms: median(&|p| p.p50_ms),
        p99_ms: median(&|p| p.p99_ms),
        landed: runs.iter().map(|p| p.landed).min().unwrap_or(0),
        server_peak_rss_mib: runs
            .iter()
            .map(|p| p.server_peak_rss_mib)
            .fold(f64::NAN, f64::max),
        server_cpu_s: median(&|p| p.server_cpu_s),
        bombs_sent: runs.iter().map(|p| p.bombs_sent).sum(),
        bombs_413: runs.iter().map(|p| p.bombs_413).sum(),
        bombs_other: runs.iter().map(|p| p.bombs_other).sum(),
    }
}

pub fn run(a: &HostileArgs) -> Result<()> {
    if a.records == 0 || a.batch == 0 {
        bail!("--records and --batch must be at least 1");
    }
    let tmp = tempfile::tempdir()?;
    let key = SigningKey::generate();
    let chain = envelopes(1, a.records, &key)
        .pop()
        .context("no envelopes")?;
    let mut ring = Keyring::new();
    ring.insert(KeyEntry::new("bench-key", key.public_key()))?;
    let ring_path = tmp.path().join("keyring.json");
    std::fs::write(&ring_path, serde_json::to_string(&ring.to_json())?)?;
    let requests: Vec<Vec<u8>> = chain.chunks(a.batch).map(encode).collect();
    let bomb = Arc::new(bomb()?);
    let n = chain.len() as u64;
    eprintln!(
        "bomb: {} bytes of gzip, {BOMB_RECORDS} empty LogRecords; exporter: {n} envelopes in {} requests",
        bomb.len(),
        requests.len()
    );
    let (mut alones, mut hostiles) = (Vec::new(), Vec::new());
    for r in 0..a.runs.max(1) {
        let one = exporter_phase(tmp.path(), &ring_path, &requests, n, 0, &bomb, r)?;
        let two = exporter_phase(tmp.path(), &ring_path, &requests, n, a.bombs, &bomb, r)?;
        eprintln!(
            "run {}: exporter alone {:.0} envelopes/s (p99 {:.1} ms, peak RSS {:.0} MiB); beside {} bomb senders {:.0} envelopes/s (p99 {:.1} ms, peak RSS {:.0} MiB, {} bombs refused)",
            r + 1,
            one.envelopes_per_s,
            one.p99_ms,
            one.server_peak_rss_mib,
            a.bombs,
            two.envelopes_per_s,
            two.p99_ms,
            two.server_peak_rss_mib,
            two.bombs_413
        );
        alones.push(one);
        hostiles.push(two);
    }
    let (alone, hostile) = (summarise(&alones), summarise(&hostiles));
    let (one, one_secs, one_status) = if a.reference {
        eprintln!("phase 3: one bomb, limits lifted ...");
        unlimited_phase(tmp.path(), &ring_path, &bomb)?
    } else {
        (Phase::default(), 0.0, 0)
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "bomb_bytes": bomb.len(), "bomb_log_records": BOMB_RECORDS,
                "envelopes": n, "batch": a.batch, "bombs": a.bombs,
                "exporter_alone": alone, "exporter_and_bombs": hostile,
                "one_bomb_limits_lifted": {"status": one_status, "seconds": one_secs, "server_peak_rss_mib": one.server_peak_rss_mib, "server_cpu_s": one.server_cpu_s},
            })
        );
        return Ok(());
    }
    println!(
        "zt-bench ingest --hostile: {n} signed envelopes ({} a request) from one exporter; bombs of {} bytes holding {BOMB_RECORDS} empty LogRecords; medians of {} runs (peak RSS: the highest; bombs: all runs)",
        a.batch,
        bomb.len(),
        a.runs.max(1)
    );
    println!(
        "{:<34} {:>11} {:>8} {:>8} {:>8} {:>9} {:>8} {:>12}",
        "", "envelopes/s", "p50 ms", "p99 ms", "landed", "peak RSS", "CPU s", "bombs (413)"
    );
    for (name, p) in [
        ("exporter alone (reference)", &alone),
        ("exporter + bomb senders", &hostile),
    ] {
        println!(
            "{:<34} {:>11.0} {:>8.1} {:>8.1} {:>8} {:>5.0} MiB {:>8.2} {:>5} ({:>4})",
            name,
            p.envelopes_per_s,
            p.p50_ms,
            p.p99_ms,
            p.landed,
            p.server_peak_rss_mib,
            p.server_cpu_s,
            p.bombs_sent,
            p.bombs_413
        );
    }
    if a.reference {
        println!(
            "{:<34} {:>11} {:>8} {:>8} {:>8} {:>5.0} MiB {:>8.2}     1 (answered {one_status} after {one_secs:.2} s)",
            "one bomb, limits lifted", "-", "-", "-", "-", one.server_peak_rss_mib, one.server_cpu_s
        );
    }
    if hostile.bombs_other > 0 {
        bail!("{} bombs were not refused with 413", hostile.bombs_other);
    }
    Ok(())
}
