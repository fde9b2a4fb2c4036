//! `zt-audit prove` and `zt-audit verify-proof`: self-contained proofs that a record was part
//! of an anchored chain.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use zt_anchor::proof::{
    make_proof, verify_offline, verify_on_chain, Pins, ProofBundle, ProofError,
};
use zt_core::text::escape;
use zt_core::Hash32;
use zt_store::Store;

use crate::cmd::anchor::{parse_address, ChainArgs};
use crate::style::Style;

/// Write a proof bundle for one record: the record, the links up to its anchored head, the
/// inclusion proof, root, epoch, contract, chain id, transaction and block.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    /// The evidence store (a SQLite file or `postgres://USER@HOST:PORT/DB`).
    #[arg(long, value_name = "PATH|URL")]
    db: zt_store::Location,
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

/// Check a proof bundle against a trust root you give: a keyring (required), and for the
/// on-chain check the contract and the anchoring address. Nothing in the bundle vouches for
/// itself. Exit status: 0 valid; 1 invalid; 2 usage or runtime error.
#[derive(Debug, clap::Args)]
pub struct VerifyProofArgs {
    /// The bundle.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The keys the records must be signed with (required: a proof is only as good as the
    /// keys it is checked with).
    #[command(flatten)]
    keys: crate::common::KeyArgs,
    /// Also check the anchor through this node: the contract must hold the root, and the
    /// transaction must be the writer's (needs --contract and --writer).
    #[arg(long, value_name = "URL", requires_all = ["contract", "writer"])]
    rpc: Option<zt_anchor::rpc::RpcUrl>,
    /// The network the node must be (with --rpc).
    #[arg(long, value_name = "NAME", default_value = "base-sepolia", value_parser = ["base-sepolia", "base", "local"])]
    network: String,
    /// The ZtAnchor deployment the root must be in (with --rpc; the bundle's own is only
    /// compared with it).
    #[arg(long, value_name = "ADDR", requires = "rpc")]
    contract: Option<String>,
    /// The anchoring address: the transaction must be sent by it (with --rpc).
    #[arg(long, value_name = "ADDR", requires = "rpc")]
    writer: Option<String>,
    /// Whose log it is, when the writer anchors for another owner (default: the writer).
    #[arg(long, value_name = "ADDR", requires = "writer")]
    owner: Option<String>,
}

pub fn prove(a: ProveArgs) -> Result<ExitCode> {
    let hash = Hash32::from_hex(a.record.trim().trim_start_matches("0x"))
        .ok_or_else(|| anyhow!("--record {:?} is not a 64-digit hex hash", a.record))?;
    let store = Store::open_existing(&a.db)
        .with_context(|| format!("cannot open store {}", crate::style::store(&a.db)))?;
    let bundle = make_proof(&store, a.log.as_deref(), &hash).context("no proof written")?;
    let json = serde_json::to_string_pretty(&bundle)?;
    std::fs::write(&a.out, format!("{json}\n"))
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    // Chain, log and transaction come from the store: shown escaped.
    eprintln!(
        "wrote {}: record at {} position {}, {} link(s) to the head anchored in epoch {} of {} of owner {} (tx {}, block {}, {})",
        crate::style::path(&a.out),
        escape(&bundle.chain),
        bundle.position,
        bundle.links.len(),
        bundle.epoch,
        escape(&bundle.log),
        escape(&bundle.owner),
        escape(&bundle.transaction),
        bundle.block_number,
        escape(&bundle.state)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn verify_proof(a: VerifyProofArgs) -> Result<ExitCode> {
    if !a.keys.given() {
        bail!(
            "verify-proof needs --keyring FILE (or --key ID=PEM): a proof is only as good as the \
             keys it is checked with, and a bundle cannot supply its own"
        );
    }
    // The pins are parsed before anything is read: a usage error is exit 2 whatever the file.
    let pins = pins(&a)?;
    let ring = a.keys.load()?;
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let bundle: ProofBundle = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a proof bundle", a.file.display()))?;
    let s = Style::stdout();
    // Everything in the bundle, and the errors that quote it, is whoever wrote the file's
    // text: shown escaped.
    let checked = match verify_offline(&bundle, &ring) {
        Ok(c) => c,
        Err(e) => {
            println!("{}: {}", s.bad("INVALID"), escape(&e.to_string()));
            return Ok(ExitCode::from(1));
        }
    };
    print_trust_root(&a, &checked);
    println!(
        "offline: record {} and {} link(s) recompute, verify under the keyring and chain to the head; leaf {} of {} is under root {}",
        checked.record,
        bundle.links.len(),
        bundle.leaf_index,
        bundle.tree_size,
        escape(&bundle.root),
    );
    let (Some(rpc), Some(pins)) = (&a.rpc, pins) else {
        println!(
            "on chain: not checked (offline only): nothing here shows the root was anchored; \
             check it with --rpc URL --contract ADDR --writer ADDR"
        );
        println!(
            "{} (offline only: the anchor was not checked on chain)",
            s.ok("VALID")
        );
        return Ok(ExitCode::SUCCESS);
    };
    if !check_on_chain(&a, rpc, &pins, &bundle, s)? {
        return Ok(ExitCode::from(1));
    }
    println!("{}", s.ok("VALID"));
    Ok(ExitCode::SUCCESS)
}

/// The pins `--rpc` needs, parsed (None offline).
fn pins(a: &VerifyProofArgs) -> Result<Option<Pins>> {
    Ok(match (&a.rpc, &a.contract, &a.writer) {
        (Some(_), Some(c), Some(w)) => {
            let writer = parse_address(w)?;
            Some(Pins {
                contract: parse_address(c)?,
                writer,
                owner: a.owner.as_deref().map(parse_address).transpose()?.unwrap_or(writer),
            })
        }
        (Some(_), _, _) => bail!("--rpc needs --contract ADDR and --writer ADDR: the anchor is checked against what you pin, never against the bundle's own claims"),
        _ => None,
    })
}

/// What the records were checked with: the trust root given, and the keys that signed.
fn print_trust_root(a: &VerifyProofArgs, checked: &zt_anchor::proof::Checked) {
    let mut root = Vec::new();
    if let Some(p) = &a.keys.keyring {
        root.push(format!("keyring {}", crate::style::path(p)));
    }
    if !a.keys.keys.is_empty() {
        root.push(format!("{} key(s) given with --key", a.keys.keys.len()));
    }
    println!(
        "trust root: {}; the {} record(s) are signed by {}",
        root.join(" and "),
        checked.records,
        checked
            .keys
            .iter()
            .map(|k| escape(k))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The anchor, on chain, against what the person verifying pinned; false when it does not
/// hold (said so).
fn check_on_chain(
    a: &VerifyProofArgs,
    rpc: &zt_anchor::rpc::RpcUrl,
    pins: &Pins,
    bundle: &ProofBundle,
    s: Style,
) -> Result<bool> {
    let chain = ChainArgs {
        rpc: rpc.clone(),
        network: a.network.clone(),
    };
    let rt = crate::common::runtime()?;
    let result = rt.block_on(async {
        let evm = chain.connect().await?;
        Ok::<_, anyhow::Error>(verify_on_chain(bundle, &evm, pins).await)
    })?;
    match result {
        Ok(on) => println!(
            "on chain: network chain id {} ({}); contract {:#x} (pinned) holds root {} for epoch {} of log {} of owner {:#x} (pinned); tx {} sent by writer {:#x} (pinned) in block {} ({} blocks deep){}",
            on.chain_id,
            a.network,
            pins.contract,
            escape(&bundle.root),
            bundle.epoch,
            escape(&bundle.log),
            pins.owner,
            escape(&bundle.transaction),
            pins.writer,
            on.block_number,
            on.latest.saturating_sub(on.block_number),
            if on.same_block { "" } else { " (moved by a reorg since the proof was made)" }
        ),
        Err(ProofError::Rpc(e)) => bail!("asking the node: {e}"),
        Err(e) => {
            println!("{}: {}", s.bad("INVALID"), escape(&e.to_string()));
            return Ok(false);
        }
    }
    Ok(true)
}
