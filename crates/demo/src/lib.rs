//! The five-minute quickstart (`zt-audit demo`), on loopback only, as a library.
//!
//! [`run`] starts an ingest (`zt-audit serve`'s receiver) and a control plane exporting to it,
//! then walks an agent through the control point with the guarded client: a dangerous action is
//! denied and does not run; a narrow policy is applied; the harmless action is allowed and
//! runs; its envelope is shown; the ingest store is verified; its chain heads are anchored on a
//! local anvil (chain id 84532), reconciled, and the allowed decision proven. The stores stay
//! in the directory given.
//!
//! What happens is reported as typed [`Event`]s to a sink; the CLI renders them for people
//! (escaping what the stores hand back: a directory reused from an earlier run is evidence
//! like any other). Tests and other programs can run the same steps and look at the facts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey, Refusal};
use zt_control_plane::{ControlPlane, Options};
use zt_core::keyring::Keyring;
use zt_export::ExportConfig;

mod anchoring;
mod error;
mod event;

pub use anchoring::Anchoring;
pub use error::DemoError;
pub use event::{Event, Step, STEPS};

/// The agent the demo registers.
pub const AGENT: &str = "agent-hello";
/// The action it is denied.
pub const DANGEROUS: &str = "aws.ec2.terminate_instances";
/// The action the narrow policy allows.
pub const HELLO: &str = "hello-world.say_hello";
/// The resource of the allowed action.
pub const GREETING: &str = "demo/greeting";

/// How a run ended, and where its files are (for the commands to try next).
#[derive(Debug)]
pub struct Summary {
    /// From start to end.
    pub elapsed: Duration,
    /// The ingest's store.
    pub ingest_db: PathBuf,
    /// The control plane's folder (its keyring, its own store).
    pub control_plane_dir: PathBuf,
    /// The control plane's keyring, the trust root of everything shown.
    pub keyring: PathBuf,
    /// Both stores verified, and hold the same records.
    pub verified: bool,
    /// How the anchoring steps ended.
    pub anchoring: Anchoring,
}

impl Summary {
    /// Everything checked out (anchoring skipped for want of a node still counts as success).
    pub fn ok(&self) -> bool {
        self.verified && self.anchoring != Anchoring::Failed
    }

    /// The control plane's own store.
    pub fn control_plane_db(&self) -> PathBuf {
        self.control_plane_dir.join("decisions.db")
    }
}

/// Runs the quickstart in `dir` (created if missing; an earlier run's stores are continued),
/// with the local chain node `anvil` names or finds (`zt_anchor::anvil::locate`).
///
/// # Errors
/// A step that could not run at all (a port, a store, the control plane); a check that ran
/// and failed is reported in the events and the [`Summary`] instead.
pub async fn run(
    dir: &Path,
    anvil: Option<&Path>,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<Summary, DemoError> {
    let started = Instant::now();
    let cp_dir = dir.join("control-plane");
    let ingest_db = dir.join("ingest.db");
    let keyring = cp_dir.join("keyring.json");

    // 1. Ingest and control plane.
    let ingest_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| DemoError::io("binding the ingest", e))?;
    let ingest_url = format!(
        "http://{}/v1/logs",
        ingest_listener
            .local_addr()
            .map_err(|e| DemoError::io("the ingest's address", e))?
    );
    let mut export = ExportConfig::new(ingest_url.clone());
    export.service_name = "zt-control-plane".into();
    let options = Options {
        open: true,
        export: Some(export.clone()),
        ..Options::default()
    };
    let cp = ControlPlane::open(&cp_dir, options).map_err(|source| DemoError::ControlPlane {
        dir: cp_dir.clone(),
        source,
    })?;
    let keyring_bytes =
        std::fs::read(&keyring).map_err(|e| DemoError::io("reading the keyring", e))?;
    let ring = Keyring::from_json(&keyring_bytes)?;
    let store = zt_store::Store::open(&ingest_db)?;
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
        .map_err(|e| DemoError::io("binding the control plane", e))?;
    let cp_url = format!(
        "http://{}",
        cp_listener
            .local_addr()
            .map_err(|e| DemoError::io("the control plane's address", e))?
    );
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
    sink(Event::Step(Step::Start));
    sink(Event::Started {
        control_plane: cp_url.clone(),
        key_id,
        chain_id,
        ingest_url: ingest_url.clone(),
        ingest_db: ingest_db.clone(),
    });

    // 2 to 6: the agent, its decisions, the envelope.
    let http = reqwest::Client::new();
    register(&http, &cp_url, sink).await?;
    let mut cfg = ClientConfig::new(
        cp_url.clone(),
        PinnedKey::from_keyring_json(&keyring_bytes)?,
    );
    cfg.export = Some(export);
    let client = GuardedClient::new(cfg)?;
    dangerous(&client, sink).await?;
    policy(&http, &cp_url, sink).await?;
    let record = hello(&client, sink).await?;

    // 7. Everything reached ingest, and it verifies.
    sink(Event::Step(Step::Verify));
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
    control_plane.await.map_err(DemoError::task)??;
    let _ = stop_ingest.send(());
    ingest
        .await
        .map_err(DemoError::task)?
        .map_err(|e| DemoError::io("the ingest", e))?;
    drop(client);
    if !caught_up {
        return Err(DemoError::ExportBehind {
            url: ingest_url,
            error: watch
                .and_then(|w| w.last_error())
                .unwrap_or_else(|| "no error reported".into()),
        });
    }
    let verified = verify_stores(&ingest_db, &cp_dir.join("decisions.db"), &ring, sink)?;
    if !client_flushed {
        sink(Event::ClientExportPending);
    }

    // 8 and 9. Anchor, reconcile, prove.
    let anchoring = if verified {
        anchoring::steps(anvil, &ingest_db, &ring, &record, sink).await?
    } else {
        Anchoring::Failed
    };
    Ok(Summary {
        elapsed: started.elapsed(),
        ingest_db,
        control_plane_dir: cp_dir,
        keyring,
        verified,
        anchoring,
    })
}

/// Step 2: `POST /agents` (409 when an earlier run in this folder registered it).
async fn register(
    http: &reqwest::Client,
    cp_url: &str,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<(), DemoError> {
    sink(Event::Step(Step::Register));
    let resp = http
        .post(format!("{cp_url}/agents"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"actor":"{AGENT}"}}"#))
        .send()
        .await
        .map_err(|e| DemoError::http("POST /agents", e))?;
    match resp.status().as_u16() {
        201 => {
            let v: serde_json::Value = resp.json().await.unwrap_or_default();
            sink(Event::Registered {
                chain_id: v["audit"]["chain_id"].as_str().unwrap_or("?").to_owned(),
                seq: v["audit"]["seq"].as_u64(),
            });
        }
        409 => sink(Event::AlreadyRegistered),
        status => {
            return Err(DemoError::Answer {
                request: "POST /agents",
                status,
                body: resp.text().await.unwrap_or_default(),
            })
        }
    }
    Ok(())
}

/// Step 3: the dangerous action must be denied, and must not run.
async fn dangerous(
    client: &GuardedClient,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<(), DemoError> {
    sink(Event::Step(Step::AskDangerous));
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let req = ActionRequest::new(AGENT, DANGEROUS).resource("i-0demo");
    let outcome = client
        .guarded_call(&req, move |_| async move {
            r.store(true, Ordering::SeqCst);
        })
        .await;
    let denied = match &outcome {
        Err(Refusal::Denied { reason, status, .. }) => {
            sink(Event::Denied {
                status: *status,
                reason: reason.clone(),
            });
            true
        }
        Err(other) => {
            sink(Event::Refused {
                error: other.to_string(),
            });
            false
        }
        Ok(_) => false,
    };
    if ran.load(Ordering::SeqCst) {
        sink(Event::ActionRan {
            output: "!! terminating i-0demo",
        });
    }
    if ran.load(Ordering::SeqCst) || !denied {
        return Err(DemoError::NotDenied(format!("{outcome:?}")));
    }
    sink(Event::ActionDidNotRun);
    Ok(())
}

/// Step 4: a narrow policy (409 when an earlier run applied it).
async fn policy(
    http: &reqwest::Client,
    cp_url: &str,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<(), DemoError> {
    sink(Event::Step(Step::Policy));
    let resp = http
        .post(format!("{cp_url}/policies"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"id":"demo-allow-hello","action":"{HELLO}","resource":"{GREETING}","reason":"saying hello is harmless"}}"#
        ))
        .send()
        .await
        .map_err(|e| DemoError::http("POST /policies", e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match status {
        201 => {
            let body: serde_json::Value =
                serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            sink(Event::PolicyApplied {
                version: body["version"].as_str().unwrap_or("?").to_owned(),
            });
        }
        409 => sink(Event::PolicyAlreadyApplied),
        status => {
            return Err(DemoError::Answer {
                request: "POST /policies",
                status,
                body: text,
            })
        }
    }
    Ok(())
}

/// Steps 5 and 6: the allowed action runs, and its envelope; returns the record's hash.
async fn hello(
    client: &GuardedClient,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<zt_core::Hash32, DemoError> {
    sink(Event::Step(Step::AskHello));
    let req = ActionRequest::new(AGENT, HELLO).resource(GREETING);
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let done = client
        .guarded_call(&req, move |_| async move {
            r.store(true, Ordering::SeqCst);
        })
        .await
        .map_err(|r| DemoError::Refused(r.to_string()))?;
    if ran.load(Ordering::SeqCst) {
        sink(Event::ActionRan {
            output: ">> hello, world (the action ran: the allow verified)",
        });
    }
    sink(Event::Allowed {
        reason: done.decision.reason.clone(),
    });
    sink(Event::Step(Step::Envelope {
        chain_id: done.decision.chain_id.clone(),
        seq: done.decision.seq,
    }));
    let parsed = zt_core::json::parse(done.decision.envelope.as_bytes())?;
    sink(Event::Envelope {
        pretty: zt_core::json::to_pretty(&parsed),
    });
    Ok(done.decision.current_hash)
}

/// Step 7's check: both stores verify and hold the same records.
fn verify_stores(
    ingest_db: &Path,
    cp_db: &Path,
    ring: &Keyring,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<bool, DemoError> {
    let verify = |db: &Path| {
        zt_ingest::verify_db(db, ring).map_err(|source| DemoError::Verify {
            db: db.to_owned(),
            source,
        })
    };
    let ingest = verify(ingest_db)?;
    let cp = verify(cp_db)?;
    let ok = ingest.ok && cp.ok && cp.records == ingest.records;
    sink(if ok {
        Event::StoresVerified {
            db: ingest_db.to_owned(),
            records: ingest.records,
            chains: ingest.chains.len(),
        }
    } else {
        Event::StoresFailed {
            ingest_records: ingest.records,
            ingest_findings: ingest.findings.len(),
            control_plane_records: cp.records,
            control_plane_findings: cp.findings.len(),
            errors: ingest
                .errors
                .iter()
                .chain(&cp.errors)
                .take(10)
                .cloned()
                .collect(),
        }
    });
    Ok(ok)
}
