//! `zt-bench control-plane --flood`: does a tokenless flood cost authenticated agents
//! their decisions, or their latency?
//!
//! A control plane with tokens runs in-process on its own runtime. Guarded clients with an
//! agent token ask for decisions at a fixed pace (open loop: latency is measured from when
//! each request was due, so a stalled server cannot hide its stall by slowing the clients),
//! each answer verified (hash, pinned-key signature, request binding) before it counts. Four
//! phases per run, in the same run:
//!
//! 1. **quiet**: the agents alone (the reference: their normal p50 and p99);
//! 2. **flood**: the same agents while a flood sender sends tokenless `POST /actions` as
//!    fast as it can on many keep-alive connections (raw HTTP/1.1, reconnecting whenever
//!    the server closes). The sender is another process (`zt-bench flood-sender`)
//!    run under `nice -n 19`: on this two-core machine the attacker would otherwise be
//!    measured taking CPU from the control plane, which an attacker on another machine
//!    cannot; what the control plane spends refusing the flood is still at full priority
//!    and still measured;
//! 3. **flood, sender not niced**: the same with the sender at normal priority, for
//!    comparison: the attacker's own CPU competes with the control plane here;
//! 4. **flood, limits off**: phase 2 with the rate limits turned off, which shows what the
//!    limits buy (every tokenless request sealed, signed and fsynced).
//!
//! After each phase the store is checked: the decision chain and the control plane's own
//! chain verify (no fork), every authenticated
//! decision in it, and every flood request either sealed individually or counted in a
//! sealed summary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zt_client::{ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options, RateLimit};

use crate::procs::Sender;
use crate::stats::percentile;

/// The flood's settings.
#[derive(Debug, Clone, Copy)]
pub struct FloodArgs {
    /// Authenticated decisions per phase.
    pub decisions: usize,
    /// Authenticated clients.
    pub clients: usize,
    /// Authenticated decisions per second, all clients together.
    pub rate: f64,
    /// Flood threads (one connection each at a time).
    pub connections: usize,
    /// Runs (medians are reported).
    pub runs: usize,
    /// One JSON object instead of a table.
    pub json: bool,
}

/// A control plane on its own runtime thread.
struct Server {
    addr: SocketAddr,
    admin: String,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<Result<u64>>>,
}

impl Server {
    fn start(dir: &Path, limits: bool) -> Result<Self> {
        let opts = Options {
            unauthenticated_rate: if limits {
                RateLimit::UNAUTHENTICATED
            } else {
                RateLimit::OFF
            },
            actor_rate: if limits {
                RateLimit::PER_ACTOR
            } else {
                RateLimit::OFF
            },
            ..Options::default()
        };
        let cp = ControlPlane::open(dir, opts)?;
        let admin = std::fs::read_to_string(cp.admin_token_file().context("no admin token")?)?
            .trim()
            .to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let join = std::thread::spawn(move || -> Result<u64> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("zt-cp-server")
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = ready_tx.send(listener.local_addr()?);
                let summary = cp
                    .serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await?;
                Ok(summary.decisions)
            })
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .context("the control plane did not start")?;
        Ok(Self {
            addr,
            admin,
            dir: dir.to_owned(),
            stop: Some(stop),
            join: Some(join),
        })
    }

    /// Stops and drains; the records committed over the run.
    fn stop(mut self) -> Result<u64> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.join.take() {
            Some(j) => j
                .join()
                .map_err(|_| anyhow::anyhow!("the control plane panicked"))?,
            None => Ok(0),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// What the flood threads got back.
#[derive(Debug, Default)]
struct FloodCounts {
    connections: AtomicU64,
    sent: AtomicU64,
    unauthorized: AtomicU64,
    limited: AtomicU64,
    unavailable: AtomicU64,
    other: AtomicU64,
}

/// One flood thread: tokenless requests as fast as the connection goes.
fn flood(addr: SocketAddr, stop: &AtomicBool, counts: &FloodCounts) {
    let body = br#"{"actor":"agent-bench","action":"bench.allowed","resource":"flood"}"#;
    let head = format!(
        "POST /actions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        counts.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Ok(mut w) = stream.try_clone() else {
            continue;
        };
        let mut r = BufReader::new(stream);
        // Keep-alive while the server allows it; a refusal whose body was not read ends
        // the connection, and the next request opens another.
        while !stop.load(Ordering::Relaxed) {
            if w.write_all(&request).is_err() {
                break;
            }
            let mut status = String::new();
            if r.read_line(&mut status).unwrap_or(0) == 0 {
                break;
            }
            let (mut len, mut close) = (0usize, false);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 {
                    close = true;
                    break;
                }
                if h == "\r\n" {
                    break;
                }
                let h = h.to_ascii_lowercase();
                if let Some(v) = h.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if h.starts_with("connection:") && h.contains("close") {
                    close = true;
                }
            }
            let mut buf = vec![0; len];
            if r.read_exact(&mut buf).is_err() {
                close = true;
            }
            counts.sent.fetch_add(1, Ordering::Relaxed);
            let code = status.split(' ').nth(1).unwrap_or("");
            match code {
                "401" => &counts.unauthorized,
                "429" => &counts.limited,
                "503" => &counts.unavailable,
                _ => &counts.other,
            }
            .fetch_add(1, Ordering::Relaxed);
            if close {
                break;
            }
        }
    }
}

/// One phase's result.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) failed: usize,
    flood_per_s: f64,
    flood_sent: u64,
    flood_limited: u64,
    flood_sealed: u64,
    flood_unavailable: u64,
    summaries: u64,
    /// With [`Flood::Held`]: what the holder did, and the connections the server had open
    /// when the agents were done.
    pub(crate) held: Option<(crate::procs::Held, u64)>,
}

async fn agents(
    base: String,
    token: String,
    keyring: Vec<u8>,
    a: FloodArgs,
) -> Result<(Vec<Duration>, usize)> {
    let pinned = PinnedKey::from_keyring_json(&keyring)?;
    let clients = a.clients.max(1);
    let interval = Duration::from_secs_f64(clients as f64 / a.rate.max(1.0));
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let n = a.decisions / clients + usize::from(c < a.decisions % clients);
        let mut cfg = ClientConfig::new(base.clone(), pinned.clone());
        cfg.token = Some(token.clone().into());
        let client = GuardedClient::new(cfg)?;
        // Clients start spread over one interval, not all at once.
        let offset = interval.mul_f64(c as f64 / clients as f64);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            let mut failed = 0;
            for i in 0..n {
                let due = start + offset + interval * u32::try_from(i).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due.into()).await;
                let (allowed, req) = crate::data::request(c, i);
                let got = client.decide(&req).await;
                // From when it was due: a late start is latency too.
                lat.push(due.elapsed());
                match (allowed, got) {
                    (true, Ok(_)) | (false, Err(Refusal::Denied { .. })) => {}
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let mut lat = Vec::with_capacity(a.decisions);
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.context("client task")?;
        lat.extend(l);
        failed += f;
    }
    Ok((lat, failed))
}

/// Which flood a phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flood {
    None,
    Niced,
    Normal,
    /// `bench slow-sender`, niced, holding this many half-open connections.
    Held(usize),
}

/// What a sender reports.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    /// Connections opened.
    pub connections: u64,
    /// Requests answered.
    pub sent: u64,
    /// 401 (refused and sealed one by one).
    pub unauthorized: u64,
    /// 429 (rate-limited, counted in a summary).
    pub limited: u64,
    /// 503.
    pub unavailable: u64,
    /// Anything else.
    pub other: u64,
}

/// `zt-bench flood-sender`: floods `addr` with tokenless `POST /actions` on
/// `connections` threads until standard input closes, then prints its counts as JSON.
#[derive(Debug, clap::Args)]
pub struct SenderArgs {
    /// The control plane.
    #[arg(long)]
    addr: SocketAddr,
    /// Threads, one connection each at a time.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

/// Runs a flood sender (see [`SenderArgs`]).
pub fn sender(a: SenderArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(FloodCounts::default());
    let mut threads = Vec::new();
    for _ in 0..a.connections.max(1) {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        threads.push(
            std::thread::Builder::new()
                .name("zt-flood".into())
                .spawn(move || flood(a.addr, &stop, &counts))?,
        );
    }
    println!("ready");
    // Stop when the parent closes our stdin (or goes away).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let load = |x: &AtomicU64| x.load(Ordering::Relaxed);
    let sent = Sent {
        connections: load(&counts.connections),
        sent: load(&counts.sent),
        unauthorized: load(&counts.unauthorized),
        limited: load(&counts.limited),
        unavailable: load(&counts.unavailable),
        other: load(&counts.other),
    };
    println!("{}", serde_json::to_string(&sent)?);
    Ok(())
}

pub(crate) fn phase(a: FloodArgs, flood: Flood, limits: bool) -> Result<Phase> {
    let tmp = tempfile::tempdir()?;
    let server = Server::start(tmp.path(), limits)?;
    let base = format!("http://{}", server.addr);
    let keyring = std::fs::read(tmp.path().join("keyring.json"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("zt-agents")
        .enable_all()
        .build()?;
    let token = rt.block_on(async {
        let http = reqwest::Client::new();
        let reg: serde_json::Value = http
            .post(format!("{base}/agents"))
            .bearer_auth(&server.admin)
            .header("content-type", "application/json")
            .body(r#"{"actor":"agent-bench"}"#)
            .send()
            .await?
            .json()
            .await?;
        let s = http
            .post(format!("{base}/policies"))
            .bearer_auth(&server.admin)
            .header("content-type", "application/json")
            .body(r#"{"action":"bench.allowed"}"#)
            .send()
            .await?
            .status();
        if s.as_u16() != 201 {
            bail!("POST /policies answered {s}");
        }
        reg["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the registration")
    })?;
    let sender = match flood {
        Flood::None => None,
        Flood::Niced => Some(Sender::start(server.addr, a.connections, true)?),
        Flood::Normal => Some(Sender::start(server.addr, a.connections, false)?),
        Flood::Held(n) => Some(crate::procs::holder(server.addr, n)?),
    };
    let t = Instant::now();
    let measured = rt.block_on(agents(base, token, keyring.clone(), a));
    let secs = t.elapsed().as_secs_f64();
    let (counts, held) = match (flood, sender) {
        (Flood::Held(_), Some(s)) => {
            let open = crate::procs::open_connections(&server.addr.to_string());
            (Sent::default(), Some((s.finish()?, open)))
        }
        (_, Some(s)) => (s.finish()?, None),
        (_, None) => (Sent::default(), None),
    };
    let (mut lat, failed) = measured?;
    let dir = server.dir.clone();
    let committed = server.stop()?;
    // The chains (decisions; the control plane's own: registrations, summaries) verify, and
    // every flood request is accounted for.
    let db = dir.join("decisions.db");
    let ring = zt_core::keyring::Keyring::from_json(&keyring)?;
    let report = zt_ingest::verify_db(&db, &ring)?;
    let store = zt_store::Store::open(&db)?;
    if !report.ok || report.chains.len() > 2 || report.records != committed {
        bail!(
            "the chains do not verify: {} records ({} committed), {} chains, {:?}",
            report.records,
            committed,
            report.chains.len(),
            report.errors.first()
        );
    }
    let (sealed, summaries, summarised) = count_flood(&store)?;
    let limited = counts.limited;
    // A request whose answer the sender did not read (cut off at the end) may still have
    // been sealed; everything answered must be on record.
    if summarised < limited || sealed < counts.unauthorized {
        bail!(
            "flood not accounted for: {sealed} sealed vs {} answered 401, {summarised} summarised vs {limited} answered 429",
            counts.unauthorized
        );
    }
    lat.sort_unstable();
    let sent = counts.sent;
    Ok(Phase {
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        max_ms: percentile(&lat, 1.0),
        failed,
        flood_per_s: sent as f64 / secs,
        flood_sent: sent,
        flood_limited: limited,
        flood_sealed: sealed,
        flood_unavailable: counts.unavailable,
        summaries,
        held,
    })
}

/// Records of unauthenticated refusals sealed one by one, summary records, and the
/// requests the summaries count.
fn count_flood(store: &zt_store::Store) -> Result<(u64, u64, u64)> {
    let (mut sealed, mut summaries, mut summarised) = (0, 0, 0);
    for c in store.chains()? {
        let mut after = None;
        loop {
            let page = store.page_chain(&c.chain, after, 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor());
            for r in &page {
                let v: serde_json::Value = serde_json::from_slice(&r.raw)?;
                if v["action"] == "zt.ratelimit.summary" {
                    summaries += 1;
                    summarised += v["context"]["refused"].as_u64().unwrap_or(0);
                } else if v["context"]["identity"] == "unauthenticated" {
                    sealed += 1;
                }
            }
        }
    }
    Ok((sealed, summaries, summarised))
}

fn median(v: &[Phase], f: impl Fn(&Phase) -> f64) -> f64 {
    crate::stats::median(v.iter().map(f))
}

pub fn run(a: FloodArgs) -> Result<()> {
    if a.decisions == 0 || a.rate <= 0.0 {
        bail!("--decisions and --rate must be positive");
    }
    // Warm-up, not measured.
    phase(
        FloodArgs {
            decisions: a.decisions.min(100),
            ..a
        },
        Flood::None,
        true,
    )?;
    let (mut quiet, mut flooded, mut normal, mut unlimited) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..a.runs.max(1) {
        // In turn, so drift on a noisy machine hits every phase alike.
        let q = phase(a, Flood::None, true)?;
        let f = phase(a, Flood::Niced, true)?;
        let n = phase(a, Flood::Normal, true)?;
        let u = phase(a, Flood::Niced, false)?;
        if !a.json {
            eprintln!(
                "run {}: quiet p99 {:.1} ms; flood p99 {:.1} ms ({} failed, {:.0} flood req/s); sender not niced p99 {:.1} ms ({} failed, {:.0} req/s); limits off p99 {:.1} ms ({} failed)",
                r + 1,
                q.p99_ms,
                f.p99_ms,
                f.failed,
                f.flood_per_s,
                n.p99_ms,
                n.failed,
                n.flood_per_s,
                u.p99_ms,
                u.failed
            );
        }
        quiet.push(q);
        flooded.push(f);
        normal.push(n);
        unlimited.push(u);
    }
    let row = |v: &[Phase]| {
        serde_json::json!({
            "p50_ms": median(v, |p| p.p50_ms),
            "p99_ms": median(v, |p| p.p99_ms),
            "max_ms": median(v, |p| p.max_ms),
            "failed": v.iter().map(|p| p.failed).sum::<usize>(),
            "flood_requests_per_s": median(v, |p| p.flood_per_s),
            "flood_sent": v.iter().map(|p| p.flood_sent).sum::<u64>(),
            "flood_429": v.iter().map(|p| p.flood_limited).sum::<u64>(),
            "flood_sealed_one_by_one": v.iter().map(|p| p.flood_sealed).sum::<u64>(),
            "flood_503": v.iter().map(|p| p.flood_unavailable).sum::<u64>(),
            "summary_records": v.iter().map(|p| p.summaries).sum::<u64>(),
        })
    };
    let (q, f, n, u) = (row(&quiet), row(&flooded), row(&normal), row(&unlimited));
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "decisions": a.decisions, "clients": a.clients, "rate": a.rate,
                "flood_connections": a.connections, "runs": a.runs,
                "quiet": q, "flood": f, "flood_sender_not_niced": n, "flood_limits_off": u,
            })
        );
        return Ok(());
    }
    println!(
        "control plane under a tokenless flood: {} authenticated decisions at {}/s from {} guarded clients per phase, {} flood connections, medians of {} runs",
        a.decisions, a.rate, a.clients, a.connections, a.runs
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>7} {:>11} {:>10} {:>8} {:>9}",
        "",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "flood req/s",
        "flood 429",
        "sealed",
        "summaries"
    );
    for (name, v) in [
        ("quiet (reference)", &q),
        ("tokenless flood", &f),
        ("flood, sender not niced", &n),
        ("flood, rate limits off", &u),
    ] {
        let int = |k: &str| v[k].as_u64().unwrap_or(0);
        println!(
            "{:<28} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>11.0} {:>10} {:>8} {:>9}",
            name,
            v["p50_ms"].as_f64().unwrap_or(f64::NAN),
            v["p99_ms"].as_f64().unwrap_or(f64::NAN),
            v["max_ms"].as_f64().unwrap_or(f64::NAN),
            int("failed"),
            v["flood_requests_per_s"].as_f64().unwrap_or(0.0),
            int("flood_429"),
            int("flood_sealed_one_by_one"),
            int("summary_records"),
        );
    }
    Ok(())
}
