//! `zt-bench control-plane`: decisions per second and latency of the control plane,
//! end to end: concurrent guarded clients over loopback HTTP, each decision decided by Cedar,
//! sealed, signed, committed (`synchronous=FULL`) before its answer, and verified by the
//! client (hash, signature, request binding). Afterwards the store is verified: the decision
//! chain and the control plane's own chain, no fork, every record accounted for.
//!
//! The reference, in the same run: the same control plane committing each decision on its
//! own (group size 1: one fsync per decision, the "lock, append, commit, answer" design).
//! Runs alternate between the two after one unmeasured warm-up run.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use zt_client::{ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options};

use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct CpArgs {
    /// Decisions per run (half allowed, half denied).
    #[arg(long, default_value_t = 1000)]
    decisions: usize,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Runs of each configuration (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Instead: authenticated p99 with and without a concurrent tokenless flood (and with
    /// the rate limits off), in the same run. --decisions is per phase (default 1000 here
    /// too), --clients the paced agents (use 4).
    #[arg(long)]
    flood: bool,
    /// With --flood or --slow-clients: the paced agents' decisions per second, all clients
    /// together.
    #[arg(long, value_name = "PER_S", default_value_t = 200.0)]
    rate: f64,
    /// Instead: the paced agents' p99 (as with --flood) and `serve`'s ingest rate, quiet and
    /// beside this many half-open connections held from other addresses, in the same run.
    #[arg(long, value_name = "N", conflicts_with = "flood")]
    slow_clients: Option<usize>,
    /// With --slow-clients: envelopes ingested per phase.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20_000,
        requires = "slow_clients"
    )]
    envelopes: usize,
    /// With --flood: flood threads, each sending tokenless requests as fast as it can.
    #[arg(long, value_name = "N", default_value_t = 16, requires = "flood")]
    flood_connections: usize,
}

#[derive(Debug, Clone, Copy)]
struct RunResult {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn one_run(decisions: usize, clients: usize, max_group: usize) -> Result<RunResult> {
    let tmp = tempfile::tempdir()?;
    let cp = ControlPlane::open(
        tmp.path(),
        Options {
            open: true,
            max_group,
            // Throughput is measured here; the limits have their own bench (--flood).
            actor_rate: zt_control_plane::RateLimit::OFF,
            ..Options::default()
        },
    )?;
    let keyring = std::fs::read(tmp.path().join("keyring.json"))?;
    let db = cp.decisions_db();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(cp.serve(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for (path, body) in [
        ("/agents", r#"{"actor":"agent-bench"}"#),
        ("/policies", r#"{"action":"bench.allowed"}"#),
    ] {
        let s = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .status();
        if s.as_u16() != 201 {
            bail!("set-up {path} answered {s}");
        }
    }
    let pinned = PinnedKey::from_keyring_json(&keyring)?;
    let clients = clients.max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let n = decisions / clients + usize::from(c < decisions % clients);
        let client = Arc::new(GuardedClient::new(ClientConfig::new(
            base.clone(),
            pinned.clone(),
        ))?);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let (allowed, req) = crate::data::request(c, i);
                let t = Instant::now();
                let got = client.decide(&req).await;
                lat.push(t.elapsed());
                match (allowed, got) {
                    (true, Ok(_)) | (false, Err(Refusal::Denied { .. })) => {}
                    (_, Err(r)) => return Err(anyhow::anyhow!("client {c}, decision {i}: {r}")),
                    (false, Ok(_)) => {
                        return Err(anyhow::anyhow!("client {c}, decision {i}: allowed"))
                    }
                }
            }
            Ok(lat)
        }));
    }
    let mut lat = Vec::with_capacity(decisions);
    for t in tasks {
        lat.extend(t.await.context("client task")??);
    }
    let wall = start.elapsed();
    let _ = stop.send(());
    let summary = server.await.context("server task")??;
    // The agent's registration is a record too.
    let expected = decisions as u64 + 1;
    if summary.decisions != expected {
        bail!(
            "{} records committed, {decisions} decisions asked (and one registration)",
            summary.decisions
        );
    }
    // The decision chain and the control plane's own (the registration), nothing forked,
    // every record verifies.
    let ring = zt_core::keyring::Keyring::from_json(&keyring)?;
    let report = zt_ingest::verify_db(&db, &ring)?;
    let store = zt_store::Store::open_read_only(&db)?;
    if !report.ok
        || report.records != expected
        || report.chains.len() != 2
        || store.count_forks()? != 0
    {
        bail!(
            "the chains do not verify as the decision chain and the admin chain, unforked: {} records, {} chains, {:?}",
            report.records,
            report.chains.len(),
            report.errors.first()
        );
    }
    lat.sort_unstable();
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = decisions as f64 / wall.as_secs_f64();
    Ok(RunResult {
        rate,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    })
}

fn median_by(v: &[RunResult], f: impl Fn(&RunResult) -> f64) -> f64 {
    crate::stats::median(v.iter().map(f))
}

pub fn run(a: CpArgs) -> Result<ExitCode> {
    let paced = crate::flood::FloodArgs {
        decisions: a.decisions,
        clients: a.clients,
        rate: a.rate,
        connections: a.flood_connections,
        runs: a.runs,
        json: a.json,
    };
    if a.flood {
        crate::flood::run(paced)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(held) = a.slow_clients {
        crate::slow::run(crate::slow::SlowArgs {
            held,
            agents: paced,
            records: a.envelopes,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    // Warm-up, not measured: the first run pays for thread pools, connections and a cold
    // page cache, and showed a p99 four times the others.
    rt.block_on(one_run(a.decisions.min(200), a.clients, 256))?;
    let mut grouped = Vec::new();
    let mut single = Vec::new();
    for r in 0..a.runs.max(1) {
        // Alternate, so drift on a noisy machine hits both alike.
        let g = rt.block_on(one_run(a.decisions, a.clients, 256))?;
        let s = rt.block_on(one_run(a.decisions, a.clients, 1))?;
        if !a.json {
            eprintln!(
                "run {}: group commit {:.0}/s (p99 {:.1} ms); one fsync per decision {:.0}/s (p99 {:.1} ms)",
                r + 1,
                g.rate,
                g.p99_ms,
                s.rate,
                s.p99_ms
            );
        }
        grouped.push(g);
        single.push(s);
    }
    let (gr, sr) = (
        median_by(&grouped, |r| r.rate),
        median_by(&single, |r| r.rate),
    );
    let row = |v: &[RunResult]| {
        (
            median_by(v, |r| r.rate),
            median_by(v, |r| r.p50_ms),
            median_by(v, |r| r.p99_ms),
        )
    };
    let (g, s) = (row(&grouped), row(&single));
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "decisions": a.decisions, "clients": a.clients, "runs": a.runs,
                "group_commit": {"decisions_per_s": g.0, "p50_ms": g.1, "p99_ms": g.2},
                "one_fsync_per_decision": {"decisions_per_s": s.0, "p50_ms": s.1, "p99_ms": s.2},
                "ratio": gr / sr,
            })
        );
    } else {
        println!(
            "control plane, {} decisions from {} guarded clients, medians of {} runs; each run's store verified (its two chains, no fork)",
            a.decisions, a.clients, a.runs
        );
        println!(
            "{:<34} {:>12} {:>9} {:>9}",
            "", "decisions/s", "p50 ms", "p99 ms"
        );
        println!(
            "{:<34} {:>12.0} {:>9.2} {:>9.2}",
            "group commit (zt-audit)", g.0, g.1, g.2
        );
        println!(
            "{:<34} {:>12.0} {:>9.2} {:>9.2}",
            "one fsync per decision (reference)", s.0, s.1, s.2
        );
        println!("ratio {:.2}x", gr / sr);
    }
    Ok(ExitCode::SUCCESS)
}
