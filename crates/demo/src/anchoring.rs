//! Steps 8 and 9 on a local anvil: anchor the ingest store's heads, reconcile, prove the
//! allowed decision.

use std::path::{Path, PathBuf};

use zt_anchor::evm::{Evm, Fees, Network, ZT_ANCHOR_ARTIFACT};
use zt_anchor::job::{Anchorer, JobConfig, RunOutcome};
use zt_core::keyring::Keyring;

use crate::{DemoError, Event, Step};

/// How the anchoring steps ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Anchoring {
    /// Anchored, reconciled, and the proof written here.
    Proven(PathBuf),
    /// No local node: skipped, and said how to get one.
    Skipped,
    /// Something did not check out (said so).
    Failed,
}

/// Steps 8 and 9, proving `record`.
pub(crate) async fn steps(
    anvil_flag: Option<&Path>,
    db: &Path,
    ring: &Keyring,
    record: &zt_core::Hash32,
    sink: &mut (dyn FnMut(Event) + Send),
) -> Result<Anchoring, DemoError> {
    sink(Event::Step(Step::Anchor));
    let started = zt_anchor::anvil::locate(anvil_flag)
        .and_then(|found| zt_anchor::anvil::Anvil::start(&found.path).map(|a| (found, a)));
    let anvil = match started {
        Ok((found, a)) => {
            sink(Event::AnvilStarted {
                binary: a.binary.clone(),
                source: found.source.to_string(),
                pid: a.pid(),
            });
            a
        }
        Err(e) => {
            sink(Event::AnchorSkipped {
                reason: e.to_string(),
            });
            sink(Event::Step(Step::ReconcileSkipped));
            return Ok(Anchoring::Skipped);
        }
    };
    let evm = Evm::connect(&anvil.url, Network::BaseSepolia).await?;
    let signer = zt_anchor::anvil::funded_key(&evm).await?;
    let (contract, deployed) = evm
        .deploy(&signer, ZT_ANCHOR_ARTIFACT, &Fees::default())
        .await?;
    sink(Event::Deployed {
        contract: format!("{contract:#x}"),
        gas: deployed.gas_used,
        url: anvil.url.to_string(),
    });
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
    .await?;
    let RunOutcome::Anchored(epoch) = outcome else {
        return Err(DemoError::NotAnchored(format!("{outcome:?}")));
    };
    sink(Event::Anchored {
        epoch: epoch.epoch,
        log: log.clone(),
        root: epoch.root.to_string(),
        leaves: epoch.leaf_count,
        tx: epoch.tx_hash.clone(),
        block: epoch.block_number,
        state: epoch.state.to_string(),
    });

    sink(Event::Step(Step::ReconcileProve));
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
        sink(Event::ReconcileFailed {
            findings: report.findings.len(),
        });
        return Ok(Anchoring::Failed);
    }
    sink(Event::Reconciled {
        epochs: report.confirmed_epochs,
        records: report.records_checked,
    });
    let bundle = zt_anchor::proof::make_proof(&store, Some(&log), record)?;
    let checked = zt_anchor::proof::verify_offline(&bundle, ring)?;
    let pins = zt_anchor::proof::Pins {
        contract,
        writer: signer.address(),
        owner: signer.address(),
    };
    let on = zt_anchor::proof::verify_on_chain(&bundle, &evm, &pins).await?;
    let proof_path = db.with_file_name("allowed-decision.proof.json");
    let text = serde_json::to_string_pretty(&bundle)
        .map_err(|e| DemoError::io("writing the proof", e.into()))?;
    std::fs::write(&proof_path, format!("{text}\n"))
        .map_err(|e| DemoError::io("writing the proof", e))?;
    sink(Event::Proven {
        record: checked.record.short(),
        links: bundle.links.len(),
        block: on.block_number,
        signatures: checked.signatures,
        path: proof_path.clone(),
    });
    Ok(Anchoring::Proven(proof_path))
}
