//! `zt-bench anchor`: what anchoring costs, on a local anvil.
//!
//! - Gas per anchor and per record at 1, 100 and 10,000 chains: a store with that many chains
//!   (`--records-per-chain` records each), anchored twice by the real job (the second epoch,
//!   after every chain moved again, is the steady state; the first pays once for the log's
//!   storage slot). The reference, in the same run: the lineage's `DAALog.logAction`, one
//!   transaction per record, and `DAALog.logBatch`.
//! - Reconcile time for `--epochs` epochs over `--reconcile-records` records: the store is
//!   built directly (records signed in parallel, epochs and their transactions sent with
//!   explicit nonces), then `reconcile` runs `--runs` times; the median is reported.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy::primitives::{Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use zt_anchor::evm::{Evm, Fees, Network, DAALOG_ARTIFACT, ZT_ANCHOR_ARTIFACT};
use zt_anchor::job::{Anchorer, JobConfig, RunOutcome};
use zt_anchor::tree::{LogRef, Tree};
use zt_core::crypto::SigningKey;
use zt_core::{Envelope, Hash32, Profile};
use zt_store::{EpochRow, EpochState, LeafRow, NewRecord, Store};

use zt_anchor::anvil::{funded_key, Anvil};

#[derive(Debug, clap::Args)]
pub struct AnchorArgs {
    /// Chain counts for the gas table (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,100,10000")]
    chains: Vec<usize>,
    /// Records each chain gains per epoch in the gas table.
    #[arg(long, default_value_t = 10)]
    records_per_chain: usize,
    /// Epochs for the reconcile timing.
    #[arg(long, default_value_t = 10_000)]
    epochs: usize,
    /// Records for the reconcile timing (spread over 100 chains).
    #[arg(long, default_value_t = 1_000_000)]
    reconcile_records: usize,
    /// Timed reconcile runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, value_name = "PATH", help = zt_anchor::anvil::FLAG_HELP)]
    anvil: Option<PathBuf>,
}

/// `n` records of chain `name` from `start`, sealed with `key`; their JSON and hashes.
fn chain_records(
    name: &str,
    start: u64,
    n: usize,
    prev: Hash32,
    key: &SigningKey,
) -> Vec<(String, Hash32)> {
    crate::data::signed_chain(name, start, n, prev, key, |seq| crate::data::Shape {
        actor: "agent-bench".into(),
        action: "hello-world.say_hello".into(),
        resource: format!("bench/{seq}"),
        decision: "allow",
    })
}

fn insert(store: &mut Store, recs: &[(String, Hash32)]) -> Result<()> {
    for chunk in recs.chunks(20_000) {
        let envs: Vec<Envelope> = chunk
            .par_iter()
            .map(|(j, _)| Envelope::from_json(j.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("generated record: {e}"))?;
        let rows: Vec<NewRecord<'_>> = chunk
            .iter()
            .zip(&envs)
            .map(|((j, _), e)| NewRecord {
                raw: j.as_bytes(),
                envelope: e,
                profile: Profile::V1,
                status: zt_core::chain::SigStatus::Verified,
                source: "bench",
                sender: None,
                received_at_ms: 0,
            })
            .collect();
        store.insert_batch(&rows, &[])?;
    }
    Ok(())
}

/// Gas of the steady-state anchor for `chains` chains.
async fn gas_for(
    evm: &Evm,
    signer: &PrivateKeySigner,
    contract: alloy::primitives::Address,
    chains: usize,
    per: usize,
    key: &SigningKey,
) -> Result<(u64, u64)> {
    let tmp = tempfile::tempdir()?;
    let mut store = Store::open(&tmp.path().join("gas.db"))?;
    store.set_synchronous(false)?;
    let mut heads = vec![Hash32::ZERO; chains];
    let mut gas = Vec::new();
    for round in 0..2u64 {
        let batches: Vec<Vec<(String, Hash32)>> = (0..chains)
            .into_par_iter()
            .map(|c| chain_records(&format!("gas-{c}"), round * per as u64, per, heads[c], key))
            .collect();
        for (c, b) in batches.iter().enumerate() {
            heads[c] = b.last().map_or(heads[c], |r| r.1);
            insert(&mut store, b)?;
        }
        let mut cfg = JobConfig::new(format!("gas-{chains}"), contract);
        cfg.fees.gas_cap = 1_000_000;
        let outcome = Anchorer::new(&mut store, evm, signer, cfg)
            .run_once()
            .await?;
        let RunOutcome::Anchored(e) = outcome else {
            bail!("{chains} chains: not anchored: {outcome:?}")
        };
        let tx: B256 = e.tx_hash.as_deref().unwrap_or_default().parse()?;
        let r = evm.receipt(tx).await?.context("receipt")?;
        gas.push(r.gas_used);
    }
    Ok((gas[0], gas[1]))
}

/// Median gas of `DAALog.logAction` over `n` records, and of one `logBatch`.
async fn daalog_gas(evm: &Evm, signer: &PrivateKeySigner, n: usize) -> Result<(u64, u64)> {
    let (addr, _) = evm
        .deploy(signer, DAALOG_ARTIFACT, &Fees::default())
        .await?;
    let fees = Fees {
        gas_cap: 1_000_000,
        ..Fees::default()
    };
    let mut gas = Vec::new();
    for i in 0..n {
        let h = B256::from(Hash32::digest(format!("record {i}").as_bytes()).0);
        let call = zt_anchor::evm::DAALog::logActionCall {
            actionHash: h,
            metadata: format!(
                "{{\"actor\":\"agent-bench\",\"action\":\"hello-world.say_hello\",\"i\":{i}}}"
            ),
        };
        let r = evm
            .send_and_wait(
                signer,
                Some(addr),
                Bytes::from(call.abi_encode()),
                &fees,
                Duration::from_secs(30),
            )
            .await?;
        gas.push(r.gas_used);
    }
    gas.sort_unstable();
    let batch = zt_anchor::evm::DAALog::logBatchCall {
        batchRoot: B256::repeat_byte(7),
        count: U256::from(1000),
    };
    let b = evm
        .send_and_wait(
            signer,
            Some(addr),
            Bytes::from(batch.abi_encode()),
            &fees,
            Duration::from_secs(30),
        )
        .await?;
    Ok((gas[gas.len() / 2], b.gas_used))
}

pub fn run(a: AnchorArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(bench(a))
}

async fn bench(a: AnchorArgs) -> Result<ExitCode> {
    let found = zt_anchor::anvil::locate(a.anvil.as_deref())?;
    // History pruned so long runs stay small.
    let anvil = Anvil::start_with(
        &found.path,
        &["--prune-history", "--gas-limit", "1000000000"],
    )?;
    let evm = Evm::connect(&anvil.url, Network::BaseSepolia).await?;
    let signer = funded_key(&evm).await?;
    let key = SigningKey::generate();
    let (contract, deployed) = evm
        .deploy(&signer, ZT_ANCHOR_ARTIFACT, &Fees::default())
        .await?;
    println!(
        "anvil (chain id {}), ZtAnchor deployed: {} gas",
        evm.chain_id(),
        deployed.gas_used
    );

    // Gas.
    println!(
        "\n{:>8} {:>10} {:>11} {:>14} {:>13}",
        "chains", "records", "first gas", "anchor gas", "gas/record"
    );
    for &chains in &a.chains {
        let (first, steady) =
            gas_for(&evm, &signer, contract, chains, a.records_per_chain, &key).await?;
        let records = (chains * a.records_per_chain) as f64;
        #[allow(clippy::cast_precision_loss, reason = "gas fits f64 exactly")]
        let per = steady as f64 / records;
        println!(
            "{chains:>8} {:>10} {first:>11} {steady:>14} {per:>13.2}",
            chains * a.records_per_chain
        );
    }
    let (action, batch) = daalog_gas(&evm, &signer, 20).await?;
    println!(
        "reference, lineage DAALog: logAction {action} gas per record (one transaction each); logBatch {batch} gas per batch"
    );

    // Reconcile.
    let chains = 100usize.min(a.reconcile_records.max(1));
    let per_chain = (a.reconcile_records / chains).max(1);
    let epochs = a.epochs.clamp(1, per_chain);
    let tmp = tempfile::tempdir()?;
    let db = tmp.path().join("reconcile.db");
    let mut store = Store::open(&db)?;
    store.set_synchronous(false)?;
    let t = Instant::now();
    let mut hashes: Vec<Vec<Hash32>> = Vec::with_capacity(chains);
    for group in (0..chains).collect::<Vec<_>>().chunks(8) {
        let made: Vec<Vec<(String, Hash32)>> = group
            .par_iter()
            .map(|c| chain_records(&format!("rec-{c}"), 0, per_chain, Hash32::ZERO, &key))
            .collect();
        for m in made {
            insert(&mut store, &m)?;
            hashes.push(m.into_iter().map(|r| r.1).collect());
        }
    }
    eprintln!(
        "built {} records in {:.1} s",
        chains * per_chain,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let log = "bench-reconcile";
    let log_ref = LogRef::new(signer.address(), log);
    let mut nonce = evm.pending_nonce(signer.address()).await?;
    let fees = Fees {
        max_fee: Some(2_000_000_000),
        priority_fee: Some(1_000_000),
        gas_cap: 200_000,
    };
    for e in 1..=epochs {
        let pos = e * per_chain / epochs - 1;
        let leaves: Vec<LeafRow> = (0..chains)
            .map(|c| LeafRow {
                chain: format!("rec-{c}"),
                position: pos as u64,
                head: hashes[c][pos],
            })
            .collect();
        let tree = Tree::new(leaves);
        let input =
            Evm::anchor_calldata(&log_ref, e as u64, B256::from(tree.root().0), chains as u64);
        let (hash, raw) = evm
            .sign(&signer, Some(contract), input, nonce, &fees)
            .await?;
        evm.send_raw(&raw).await?;
        nonce += 1;
        let r = evm
            .wait_receipt(hash, Duration::from_secs(30))
            .await?
            .context("receipt")?;
        let now = zt_store::now_ms();
        store.insert_epoch(
            &EpochRow {
                log: log.into(),
                epoch: e as u64,
                root: tree.root(),
                leaf_count: chains as u64,
                state: EpochState::Included,
                network_chain_id: Some(evm.chain_id()),
                contract: Some(format!("{contract:#x}")),
                owner: Some(format!("{:#x}", signer.address())),
                tx_hash: Some(format!("{hash:#x}")),
                raw_tx: None,
                nonce: None,
                block_number: Some(r.block_number),
                block_hash: Some(format!("{:#x}", r.block_hash)),
                attempts: 1,
                note: None,
                created_at_ms: now,
                updated_at_ms: now,
            },
            tree.leaves(),
        )?;
    }
    eprintln!(
        "anchored {epochs} epochs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let store = Store::open(&db)?;
    let mut times = Vec::new();
    for _ in 0..a.runs.max(1) {
        let t = Instant::now();
        let report = zt_anchor::reconcile::reconcile(
            &store,
            &evm,
            contract,
            &log_ref,
            &zt_anchor::reconcile::Options::default(),
        )
        .await?;
        times.push(t.elapsed().as_secs_f64());
        if !report.ok
            || report.confirmed_epochs != epochs as u64
            || report.records_checked != (chains * per_chain) as u64
        {
            bail!(
                "reconcile did not confirm the bench store: {:?}",
                report.findings.first()
            );
        }
    }
    let med = crate::stats::median(times.iter().copied());
    // Reference, same store, same run: a full `verify --db` pass (hashes, links and
    // signatures of every record), which reconcile does not repeat.
    let mut ring = zt_core::keyring::Keyring::new();
    ring.insert(zt_core::keyring::KeyEntry::new(
        "bench-key",
        key.public_key(),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut vtimes = Vec::new();
    for _ in 0..a.runs.max(1) {
        let t = Instant::now();
        let mut v = zt_verifier::Verifier::new(&ring, zt_verifier::Options::default());
        zt_ingest::verify_store(&mut v, &store)?;
        let r = v.finish();
        vtimes.push(t.elapsed().as_secs_f64());
        if !r.ok {
            bail!("the bench store does not verify");
        }
    }
    let vmed = crate::stats::median(vtimes);
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let rate = (chains * per_chain) as f64 / med;
    println!(
        "\nreconcile: {epochs} epochs, {} records in {chains} chains: median {med:.2} s of {} runs ({rate:.0} records/s), every epoch confirmed, every anchored head checked",
        chains * per_chain,
        times.len()
    );
    println!(
        "reference, same store: verify --db median {vmed:.2} s (hashes, links and signatures); reconcile/verify {:.2}",
        med / vmed
    );
    Ok(ExitCode::SUCCESS)
}
