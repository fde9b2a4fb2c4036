//! `zt-audit demo`: the five-minute quickstart, on loopback only.
//!
//! Starts an ingest (`zt-audit serve`'s receiver) and a control plane exporting to it, then
//! walks an agent through the control point with the guarded client: a dangerous action is
//! denied and does not run; a narrow policy is applied; the harmless action is allowed and
//! runs; its envelope is printed; the ingest store is verified; its chain heads are anchored on a
//! local anvil (chain id 84532), reconciled, and the allowed decision proven. The stores stay
//! in DIR.
//!
//! Everything shown that the control plane, the stores or the file system hand back (ids,
//! reasons, the envelope, paths) goes through `zt_core::text::escape`, as in every report:
//! a directory reused from an earlier run is evidence like any other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options};
use zt_core::keyring::Keyring;
use zt_core::text::escape;
use zt_export::ExportConfig;

use crate::style::Style;

/// The five-minute quickstart: a control plane and an ingest on loopback, an agent denied,
/// a narrow policy, an allowed action, its signed envelope, a verified store.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the stores go (default: a new directory, printed).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The local chain node for the anchoring steps (default: env ZT_ANVIL, else anvil on
    /// PATH, else node_modules/.bin/anvil here or in the source tree, which
    /// scripts/npm-tools.sh installs). Without one those steps are skipped, and said so.
    #[arg(long, value_name = "PATH")]
    anvil: Option<PathBuf>,
}

const STEPS: u32 = 9;

const AGENT: &str = "agent-hello";
const DANGEROUS: &str = "aws.ec2.terminate_instances";
const HELLO: &str = "hello-world.say_hello";
const GREETING: &str = "demo/greeting";

struct Out {
    style: Style,
    step: u32,
}

impl Out {
    fn step(&mut self, text: &str) {
        self.step += 1;
        println!(
            "\n{} {text}",
            self.style.bold(&format!("[{}/{STEPS}]", self.step))
        );
    }

    fn line(&self, text: &str) {
        println!("      {text}");
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let dir = match args.dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("zt-audit-demo-")
            .tempdir()
            .context("creating the demo directory")?
            .keep(),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    let rt = crate::common::runtime()?;
    rt.block_on(demo(&dir, args.anvil.as_deref()))
}

async fn demo(dir: &Path, anvil: Option<&Path>) -> Result<ExitCode> {
    let started = Instant::now();
    let style = Style::stdout();
    let mut out = Out { style, step: 0 };
    println!(
        "{}",
        out.style
            .bold("zt-audit demo: the control point in five minutes, on loopback only")
    );
    println!("data directory: {}", crate::style::path(dir));

    // 1. Ingest and control plane.
    let cp_dir = dir.join("control-plane");
    let ingest_db = dir.join("ingest.db");
    let ingest_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the ingest")?;
    let ingest_url = format!("http://{}/v1/logs", ingest_listener.local_addr()?);
    let mut export = ExportConfig::new(ingest_url.clone());
    export.service_name = "zt-control-plane".into();
    let cp = ControlPlane::open(
        &cp_dir,
        Options {
            open: true,
            export: Some(export.clone()),
            ..Options::default()
        },
    )
    .with_context(|| format!("opening the control plane in {}", cp_dir.display()))?;
    let keyring_path = cp_dir.join("keyring.json");
    let keyring_bytes = std::fs::read(&keyring_path)?;
    let ring = Keyring::from_json(&keyring_bytes).context("the control plane's keyring")?;
    let store = zt_store::Store::open(&ingest_db)
        .with_context(|| format!("opening {}", ingest_db.display()))?;
    let (stop_ingest, ingest_stopped) = tokio::sync::oneshot::channel::<()>();
    let ingest = tokio::spawn(zt_ingest::server::serve(
        ingest_listener,
        store,
        ring.clone(),
        zt_ingest::server::Config::default(),
        async {
            let _ = ingest_stopped.await;
        },
    ));
    let cp_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the control plane")?;
    let cp_url = format!("http://{}", cp_listener.local_addr()?);
    let (chain_id, key_id) = (cp.chain_id().to_owned(), cp.key_id().to_owned());
    let (stop_cp, cp_stopped) = tokio::sync::oneshot::channel::<()>();
    let (watch_tx, watch_rx) = tokio::sync::oneshot::channel();
    let control_plane = tokio::spawn(cp.serve_with(
        cp_listener,
        async {
            let _ = cp_stopped.await;
        },
        move |w| {
            let _ = watch_tx.send(w);
        },
    ));
    let watch = watch_rx.await.ok().flatten();
    out.step("start a control plane and an ingest");
    out.line(&format!(
        "control plane  {cp_url}  (Cedar, deny by default; open mode: loopback, no tokens)"
    ));
    out.line(&format!(
        "signing key    {}  chain {}",
        escape(&key_id),
        escape(&chain_id)
    ));
    out.line(&format!(
        "ingest         {ingest_url}  -> {}",
        crate::style::path(&ingest_db)
    ));

    // 2. Register the agent.
    out.step(&format!("register {AGENT}"));
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{cp_url}/agents"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"actor":"{AGENT}"}}"#))
        .send()
        .await
        .context("POST /agents")?;
    match resp.status().as_u16() {
        201 => {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            out.line(&format!(
                "POST /agents -> 201 Created; the registration is a signed record too, on the control plane's own chain {} (seq {})",
                zt_core::text::escape(v["audit"]["chain_id"].as_str().unwrap_or("?")),
                v["audit"]["seq"]
            ));
        }
        409 => {
            out.line("POST /agents -> 409: already registered by an earlier run in this directory")
        }
        s => bail!(
            "POST /agents answered {s}: {}",
            resp.text().await.unwrap_or_default()
        ),
    }

    let mut cfg = ClientConfig::new(
        cp_url.clone(),
        PinnedKey::from_keyring_json(&keyring_bytes).context("pinning the control plane's key")?,
    );
    cfg.export = Some(export);
    let client = GuardedClient::new(cfg)?;

    // 3. The dangerous action.
    out.step(&format!("{AGENT} asks to run {DANGEROUS} on i-0demo"));
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let req = ActionRequest::new(AGENT, DANGEROUS).resource("i-0demo");
    let outcome = client
        .guarded_call(&req, move |_| async move {
            r.store(true, Ordering::SeqCst);
            println!("      !! terminating i-0demo");
        })
        .await;
    let denied_ok = match &outcome {
        Err(Refusal::Denied { reason, status, .. }) => {
            out.line(&format!(
                "{} (HTTP {status}): {}",
                out.style.bad("DENIED"),
                escape(reason)
            ));
            true
        }
        Err(other) => {
            out.line(&format!("refused: {}", escape(&other.to_string())));
            false
        }
        Ok(_) => false,
    };
    if ran.load(Ordering::SeqCst) || !denied_ok {
        bail!("the dangerous action was not denied as expected: {outcome:?}");
    }
    out.line("the action did not run");

    // 4. A narrow policy.
    out.step(&format!(
        "apply a narrow policy: allow {HELLO} on {GREETING}"
    ));
    let resp = http
        .post(format!("{cp_url}/policies"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"id":"demo-allow-hello","action":"{HELLO}","resource":"{GREETING}","reason":"saying hello is harmless"}}"#
        ))
        .send()
        .await
        .context("POST /policies")?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    match status {
        201 => out.line(&format!(
            "POST /policies -> 201; policy set {}",
            escape(body["version"].as_str().unwrap_or("?"))
        )),
        409 => out.line("POST /policies -> 409: already applied by an earlier run"),
        s => bail!("POST /policies answered {s}: {body}"),
    }

    // 5. The allowed action.
    out.step(&format!("{AGENT} asks to run {HELLO} on {GREETING}"));
    let req = ActionRequest::new(AGENT, HELLO).resource(GREETING);
    let done = client
        .guarded_call(&req, |_| async {
            println!("      >> hello, world (the action ran: the allow verified)");
        })
        .await
        .map_err(|r| anyhow::anyhow!("the hello action was refused: {r}"))?;
    out.line(&format!(
        "{}: {}",
        out.style.ok("ALLOWED"),
        escape(&done.decision.reason)
    ));

    // 6. The envelope.
    out.step(&format!(
        "the signed envelope of that decision (chain {}, seq {})",
        escape(&done.decision.chain_id),
        done.decision.seq
    ));
    let parsed =
        zt_core::json::parse(done.decision.envelope.as_bytes()).context("the verified envelope")?;
    // JSON escapes C0 controls but not DEL, C1, bidi or zero-width characters: this is text
    // for people, so it is escaped like any other.
    for l in zt_core::json::to_pretty(&parsed).lines() {
        out.line(&escape(l));
    }

    // 7. Everything reached ingest, and it verifies.
    out.step("verify the ingest store");
    let caught_up = match &watch {
        Some(w) => {
            let w = Arc::clone(w);
            tokio::task::spawn_blocking(move || w.wait_caught_up(Duration::from_secs(30)))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    let client_flushed = client.flush_export(Duration::from_secs(10));
    let _ = stop_cp.send(());
    control_plane
        .await
        .context("control plane task")?
        .context("control plane")?;
    let _ = stop_ingest.send(());
    ingest.await.context("ingest task")?.context("ingest")?;
    drop(client);
    if !caught_up {
        bail!(
            "the control plane's export did not reach {ingest_url} within 30 s: {}",
            watch
                .and_then(|w| w.last_error())
                .unwrap_or_else(|| "no error reported".into())
        );
    }
    let report = verify_db(&ingest_db, &ring)?;
    let cp_report = verify_db(&cp_dir.join("decisions.db"), &ring)?;
    let ok = report.ok && cp_report.ok && cp_report.records == report.records;
    if ok {
        out.line(&format!(
            "{}: {} ({} records, {} chain{}, every hash, link and signature verified; same as the control plane's own store)",
            out.style.ok("OK"),
            crate::style::path(&ingest_db),
            report.records,
            report.chains.len(),
            if report.chains.len() == 1 { "" } else { "s" },
        ));
    } else {
        out.line(&format!(
            "{}: ingest {} records ({} findings), control plane {} records ({} findings)",
            out.style.bad("FAILED"),
            report.records,
            report.findings.len(),
            cp_report.records,
            cp_report.findings.len()
        ));
        for e in report.errors.iter().chain(&cp_report.errors).take(10) {
            out.line(&escape(e));
        }
    }
    if !client_flushed {
        out.line("(the guarded client's own re-export had not finished; the control plane's did)");
    }

    // 8 and 9. Anchor, reconcile, prove.
    let anchoring = if ok {
        anchor_steps(
            &mut out,
            anvil,
            &ingest_db,
            &keyring_path,
            &done.decision.current_hash,
        )
        .await?
    } else {
        Anchoring::Failed
    };

    let rel = |p: &Path| crate::style::path(p);
    println!(
        "\n{} in {:.1} s. Next:",
        out.style.bold("done"),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  zt-audit verify --db {} --keyring {}",
        rel(&ingest_db),
        rel(&keyring_path)
    );
    println!(
        "  zt-audit verify --db {} --keyring {}   # the control plane's own copy",
        rel(&cp_dir.join("decisions.db")),
        rel(&keyring_path)
    );
    // Only commands whose inputs exist: the proof only when it was written.
    if let Anchoring::Proven(proof) = &anchoring {
        // Offline: the demo's node stops with it, so no --rpc (and no --contract/--writer).
        println!(
            "  zt-audit verify-proof {} --keyring {}   # offline: the demo's node is gone",
            rel(proof),
            rel(&keyring_path)
        );
    }
    println!(
        "  zt-audit control-plane --dir {} --open      # the same control plane, to try your own agents",
        rel(&cp_dir)
    );
    std::io::stdout().flush()?;
    Ok(if ok && anchoring != Anchoring::Failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// How the anchoring steps ended.
#[derive(Debug, PartialEq, Eq)]
enum Anchoring {
    /// Anchored, reconciled, and the proof written here.
    Proven(PathBuf),
    /// No local node: skipped, and said how to get one.
    Skipped,
    /// Something did not check out (said so).
    Failed,
}

/// Steps 8 and 9 on a local anvil.
async fn anchor_steps(
    out: &mut Out,
    anvil_flag: Option<&Path>,
    db: &Path,
    keyring: &Path,
    record: &zt_core::Hash32,
) -> Result<Anchoring> {
    use zt_anchor::evm::{Evm, Fees, Network, ZT_ANCHOR_ARTIFACT};
    use zt_anchor::job::{Anchorer, JobConfig, RunOutcome};

    out.step("anchor the ingest store's chain heads on a local chain (anvil, chain id 84532)");
    let started = zt_anchor::anvil::locate(anvil_flag)
        .and_then(|found| zt_anchor::anvil::Anvil::start(&found.path).map(|a| (found, a)));
    let anvil = match started {
        Ok((found, a)) => {
            out.line(&format!(
                "anvil {} (from {}), pid {}",
                crate::style::path(&a.binary),
                found.source,
                a.pid()
            ));
            a
        }
        Err(e) => {
            out.line(&format!("skipped: {}", escape(&e.to_string())));
            out.line("(Base Sepolia itself: see the README's anchoring guide)");
            out.step("reconcile and prove: skipped (no local chain node)");
            return Ok(Anchoring::Skipped);
        }
    };
    let evm = Evm::connect(&anvil.url, Network::BaseSepolia).await?;
    let signer = zt_anchor::anvil::funded_key(&evm).await?;
    let (contract, deployed) = evm
        .deploy(&signer, ZT_ANCHOR_ARTIFACT, &Fees::default())
        .await
        .context("deploying ZtAnchor")?;
    out.line(&format!(
        "ZtAnchor deployed at {contract:#x} ({} gas) on {}",
        deployed.gas_used, anvil.url
    ));
    // One log per deployment: the node is new on every run.
    let log = format!("demo-{}", &format!("{contract:x}")[..8]);
    let mut store = zt_store::Store::open(db)?;
    let outcome = Anchorer::new(
        &mut store,
        &evm,
        &signer,
        JobConfig::new(log.clone(), contract),
    )
    .run_once()
    .await
    .context("anchoring")?;
    let RunOutcome::Anchored(epoch) = outcome else {
        bail!("the anchor did not land: {outcome:?}");
    };
    out.line(&format!(
        "epoch {} of log {log}: root {} over {} chain head(s)",
        epoch.epoch, epoch.root, epoch.leaf_count
    ));
    out.line(&format!(
        "tx {} in block {} ({})",
        escape(epoch.tx_hash.as_deref().unwrap_or("-")),
        epoch.block_number.unwrap_or(0),
        epoch.state
    ));

    out.step("reconcile the store with the chain, and prove the allowed decision");
    // The demo is its own verifier: it pins what it deployed and the address it anchored with.
    let log_ref = zt_anchor::tree::LogRef::new(signer.address(), log.clone());
    let report = zt_anchor::reconcile::reconcile(
        &store,
        &evm,
        contract,
        &log_ref,
        &zt_anchor::reconcile::Options::default(),
    )
    .await?;
    if !report.ok {
        out.line(&format!(
            "{}: {} finding(s)",
            out.style.bad("FAILED"),
            report.findings.len()
        ));
        return Ok(Anchoring::Failed);
    }
    out.line(&format!(
        "{}: {} epoch(s) confirmed on chain, {} record(s) checked against the anchored heads",
        out.style.ok("reconcile OK"),
        report.confirmed_epochs,
        report.records_checked
    ));
    let bundle = zt_anchor::proof::make_proof(&store, Some(&log), record)?;
    let ring = Keyring::from_json(&std::fs::read(keyring)?)?;
    let checked = zt_anchor::proof::verify_offline(&bundle, &ring)?;
    let pins = zt_anchor::proof::Pins {
        contract,
        writer: signer.address(),
        owner: signer.address(),
    };
    let on = zt_anchor::proof::verify_on_chain(&bundle, &evm, &pins).await?;
    let proof_path = db.with_file_name("allowed-decision.proof.json");
    std::fs::write(
        &proof_path,
        format!("{}\n", serde_json::to_string_pretty(&bundle)?),
    )?;
    out.line(&format!(
        "{}: record {} -> {} link(s) -> head -> inclusion proof -> root -> tx in block {} ({} signature(s) verified under the keyring; contract and writer pinned)",
        out.style.ok("proof VALID"),
        checked.record.short(),
        bundle.links.len(),
        on.block_number,
        checked.signatures
    ));
    out.line(&format!(
        "written to {} (`zt-audit verify-proof` checks it offline; this node stops with the demo)",
        crate::style::path(&proof_path)
    ));
    Ok(Anchoring::Proven(proof_path))
}

fn verify_db(db: &Path, ring: &Keyring) -> Result<zt_verifier::Report> {
    zt_ingest::verify_db(db, ring).with_context(|| format!("verifying {}", db.display()))
}
