//! `zt-audit prove` and `zt-audit verify-proof`: self-contained proofs that a record was part
//! of an anchored chain.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use zt_anchor::proof::{make_proof, verify_offline, verify_on_chain, ProofBundle};
use zt_core::text::escape;
use zt_core::Hash32;
use zt_store::Store;

use crate::cmd::anchor::ChainArgs;
use crate::cmd::verify::load_keyring;
use crate::style::Style;

/// Write a proof bundle for one record: the record, the links up to its anchored head, the
/// inclusion proof, root, epoch, contract, chain id, transaction and block.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// The evidence store.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// The record's current_hash (64 hex digits).
    #[arg(long, value_name = "HASH")]
    record: String,
    /// Where to write the bundle (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The log (default: the first log with an anchor covering the record).
    #[arg(long, value_name = "NAME")]
    log: Option<String>,
}

/// Check a proof bundle: offline (every hash, link and the inclusion proof), and against the
/// chain with --rpc. Exit status: 0 valid; 1 invalid; 2 usage or runtime error.
#[derive(Debug, clap::Args)]
pub struct VerifyProofArgs {
    /// The bundle.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Also check the transaction and the contract's root through this node.
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
    /// The network the node must be (with --rpc).
    #[arg(long, value_name = "NAME", default_value = "base-sepolia", value_parser = ["base-sepolia", "base", "local"])]
    network: String,
    /// Verify the records' signatures with this keyring.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
}

pub fn prove(a: ProveArgs) -> Result<ExitCode> {
    let hash = Hash32::from_hex(a.record.trim().trim_start_matches("0x"))
        .ok_or_else(|| anyhow!("--record {:?} is not a 64-digit hex hash", a.record))?;
    if !a.db.is_file() {
        bail!("no store at {}", a.db.display());
    }
    let store =
        Store::open(&a.db).with_context(|| format!("cannot open store {}", a.db.display()))?;
    let bundle = make_proof(&store, a.log.as_deref(), &hash)?;
    let json = serde_json::to_string_pretty(&bundle)?;
    std::fs::write(&a.out, format!("{json}\n"))
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    // Chain, log and transaction come from the store: shown escaped.
    eprintln!(
        "wrote {}: record at {} position {}, {} link(s) to the head anchored in epoch {} of {} (tx {}, block {}, {})",
        crate::style::path(&a.out),
        escape(&bundle.chain),
        bundle.position,
        bundle.links.len(),
        bundle.epoch,
        escape(&bundle.log),
        escape(&bundle.transaction),
        bundle.block_number,
        escape(&bundle.state)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn verify_proof(a: VerifyProofArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", a.file.display()))?;
    let ring = match &a.keyring {
        Some(_) => Some(load_keyring(a.keyring.as_ref(), &[])?),
        None => None,
    };
    let s = Style::stdout();
    // Everything in the bundle, and the errors that quote it, is whoever wrote the file's
    // text: shown escaped.
    let checked = match verify_offline(&bundle, ring.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            println!("{}: {}", s.bad("INVALID"), escape(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
    };
    println!(
        "offline: record {} and {} link(s) recompute and chain to the head; leaf {} of {} is under root {}{}",
        checked.record,
        bundle.links.len(),
        bundle.leaf_index,
        bundle.tree_size,
        escape(&bundle.root),
        if ring.is_some() {
            format!("; {} signature(s) verified", checked.signatures)
        } else {
            String::new()
        }
    );
    if let Some(rpc) = &a.rpc {
        let chain = ChainArgs {
            rpc: rpc.clone(),
            network: a.network.clone(),
        };
        let rt = crate::cmd::runtime()?;
        let result = rt.block_on(async {
            let evm = chain.connect().await?;
            Ok::<_, anyhow::Error>(verify_on_chain(&bundle, &evm).await)
        })?;
        match result {
            Ok(on) => println!(
                "on chain: contract {} holds root {} for epoch {} of {}; tx {} in block {} ({} blocks deep){}",
                escape(&bundle.contract),
                escape(&bundle.root),
                bundle.epoch,
                escape(&bundle.log),
                escape(&bundle.transaction),
                on.block_number,
                on.latest.saturating_sub(on.block_number),
                if on.same_block { "" } else { " (moved by a reorg since the proof was made)" }
            ),
            Err(zt_anchor::proof::ProofError::Rpc(e)) => bail!("asking the node: {e}"),
            Err(e) => {
                println!("{}: {}", s.bad("INVALID"), escape(&e.to_string()));
                return Ok(ExitCode::from(1));
            }
        }
    }
    println!("{}", s.ok("VALID"));
    Ok(ExitCode::SUCCESS)
}
