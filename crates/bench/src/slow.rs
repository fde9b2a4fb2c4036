//! `zt-bench control-plane --slow-clients N`: do thousands of connections held open by
//! slow clients cost other clients their answers, their latency, or their throughput?
//!
//! The attacker (`zt-bench slow-sender`, its own process under `nice -n 19`: on this
//! two-core machine an attacker would otherwise be measured taking CPU the server needs)
//! holds N connections that each send half a request line and wait; whenever the server
//! closes one (its header timeout), it opens another. They come from other addresses than the
//! clients (127.0.0.10 and up, 200 per address: under the default per-address limit of 256,
//! so every one of them is held, not refused at accept). In the same run, alternating:
//!
//! 1. the control plane's paced guarded agents (as in `--flood`), quiet and then beside the
//!    held connections: p50, p99, failures;
//! 2. `zt-audit serve`'s ingest rate (signed envelopes over OTLP/HTTP, committed), quiet and
//!    then beside the held connections.
//!
//! The server's `zt_connections_open` while the attack is on is reported too: it shows the
//! connections were held, not refused.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flood::{phase, Flood, FloodArgs, Phase};
use crate::procs::Held;

/// Connections from each attacking address (under the default limit of 256 per address).
const PER_ADDRESS: usize = 200;

/// `zt-bench slow-sender`: holds `connections` half-open connections to `addr` from
/// 127.0.0.10 and up until standard input closes, then prints its counts as JSON.
#[derive(Debug, clap::Args)]
pub struct SlowSenderArgs {
    /// The server.
    #[arg(long)]
    addr: SocketAddr,
    /// Connections to hold.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
}

/// The address connection `i` comes from.
fn source(i: usize) -> IpAddr {
    let n = 10 + i / PER_ADDRESS;
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        u8::try_from(n / 250).unwrap_or(255),
        u8::try_from(n % 250).unwrap_or(255),
    ))
}

#[derive(Debug, Default)]
struct Counts {
    opened: AtomicU64,
    closed: AtomicU64,
    failed: AtomicU64,
    first_round: AtomicUsize,
}

/// One held connection, opened again whenever the server closes it, until `stop`.
async fn hold(
    i: usize,
    addr: SocketAddr,
    counts: Arc<Counts>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut first = true;
    while !*stop.borrow() {
        let connected = async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source(i), 0))?;
            let mut s = socket.connect(addr).await?;
            s.write_all(b"POST /actions HTT").await?;
            std::io::Result::Ok(s)
        }
        .await;
        if first {
            counts.first_round.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        let Ok(mut s) = connected else {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => return,
            }
            continue;
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => {
                        counts.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(_) => {}
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Runs a holder (see [`SlowSenderArgs`]).
pub fn sender(a: SlowSenderArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let counts = Arc::new(Counts::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.block_on(async {
        let tasks: Vec<_> = (0..a.connections)
            .map(|i| tokio::spawn(hold(i, a.addr, Arc::clone(&counts), stop_rx.clone())))
            .collect();
        // Ready once every connection was tried once (at most 20 s).
        for _ in 0..2000 {
            if counts.first_round.load(Ordering::Relaxed) >= a.connections {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("ready");
        // Stop when the parent closes our stdin (or goes away).
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
    });
    let held = Held {
        opened: counts.opened.load(Ordering::Relaxed),
        closed_by_server: counts.closed.load(Ordering::Relaxed),
        connect_failed: counts.failed.load(Ordering::Relaxed),
    };
    println!("{}", serde_json::to_string(&held)?);
    Ok(())
}

/// The settings of a slow-clients run.
#[derive(Debug, Clone, Copy)]
pub struct SlowArgs {
    /// Connections held.
    pub held: usize,
    /// The agents (decisions per phase, clients, rate) as in `--flood`.
    pub agents: FloodArgs,
    /// Envelopes per ingest phase.
    pub records: usize,
}

fn median(v: &[Phase], f: impl Fn(&Phase) -> f64) -> f64 {
    crate::stats::median(v.iter().map(f))
}

/// Runs the bench (see the module docs).
pub fn run(a: SlowArgs) -> Result<()> {
    if a.held == 0 || a.agents.decisions == 0 || a.records == 0 {
        bail!("--slow-clients, --decisions and the envelopes must be positive");
    }
    let runs = a.agents.runs.max(1);
    // Warm-up, not measured.
    phase(
        FloodArgs {
            decisions: a.agents.decisions.min(100),
            ..a.agents
        },
        Flood::None,
        true,
    )?;
    let ingest = crate::ingest::Prepared::new(a.records, 8, 100)?;
    let (mut quiet, mut held, mut ingest_quiet, mut ingest_held) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ingest_open = Vec::new();
    for r in 0..runs {
        let q = phase(a.agents, Flood::None, true)?;
        let h = phase(a.agents, Flood::Held(a.held), true)?;
        let iq = ingest.run(0)?;
        let ih = ingest.run(a.held)?;
        if !a.agents.json {
            eprintln!(
                "run {}: agents p99 quiet {:.1} ms, held {:.1} ms ({} failed, {} open); ingest quiet {:.0}/s, held {:.0}/s ({} open)",
                r + 1,
                q.p99_ms,
                h.p99_ms,
                h.failed,
                h.held.map_or(0, |(_, open)| open),
                iq.0,
                ih.0,
                ih.1
            );
        }
        quiet.push(q);
        held.push(h);
        ingest_quiet.push(iq.0);
        ingest_held.push(ih.0);
        ingest_open.push(ih.1 as f64);
    }
    let open = crate::stats::median(
        held.iter()
            .map(|p| p.held.map_or(0.0, |(_, open)| open as f64)),
    );
    let reopened: u64 = held
        .iter()
        .filter_map(|p| p.held)
        .map(|(h, _)| h.closed_by_server)
        .sum();
    let out = serde_json::json!({
        "held_connections": a.held, "runs": runs,
        "decisions": a.agents.decisions, "clients": a.agents.clients, "rate": a.agents.rate,
        "agents_quiet": {"p50_ms": median(&quiet, |p| p.p50_ms), "p99_ms": median(&quiet, |p| p.p99_ms),
            "failed": quiet.iter().map(|p| p.failed).sum::<usize>()},
        "agents_held": {"p50_ms": median(&held, |p| p.p50_ms), "p99_ms": median(&held, |p| p.p99_ms),
            "failed": held.iter().map(|p| p.failed).sum::<usize>(),
            "server_connections_open": open, "closed_by_server": reopened},
        "ingest_quiet_envelopes_per_s": crate::stats::median(ingest_quiet.iter().copied()),
        "ingest_held_envelopes_per_s": crate::stats::median(ingest_held.iter().copied()),
        "ingest_held_server_connections_open": crate::stats::median(ingest_open.iter().copied()),
    });
    if a.agents.json {
        println!("{out}");
        return Ok(());
    }
    println!(
        "slow clients: {} half-open connections held from other addresses; {} decisions at {}/s from {} guarded agents and {} envelopes per phase; medians of {runs} runs",
        a.held, a.agents.decisions, a.agents.rate, a.agents.clients, a.records
    );
    println!(
        "  control plane, agents quiet (reference)  p50 {:>7.2} ms  p99 {:>7.2} ms  failed {}",
        out["agents_quiet"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
        out["agents_quiet"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        out["agents_quiet"]["failed"]
    );
    println!(
        "  control plane, agents beside the held    p50 {:>7.2} ms  p99 {:>7.2} ms  failed {}  ({open:.0} connections open, {reopened} closed by the server)",
        out["agents_held"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
        out["agents_held"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        out["agents_held"]["failed"]
    );
    println!(
        "  serve, ingest quiet (reference)          {:>9.0} envelopes/s",
        out["ingest_quiet_envelopes_per_s"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    println!(
        "  serve, ingest beside the held            {:>9.0} envelopes/s  ({:.0} connections open)",
        out["ingest_held_envelopes_per_s"]
            .as_f64()
            .unwrap_or(f64::NAN),
        out["ingest_held_server_connections_open"]
            .as_f64()
            .unwrap_or(f64::NAN)
    );
    Ok(())
}
