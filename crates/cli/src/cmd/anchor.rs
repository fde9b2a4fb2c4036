//! `zt-audit anchor deploy` and `zt-audit anchor run`: the contract and the scheduled job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{anyhow, bail, Context, Result};
use zt_anchor::evm::{Evm, Fees, Network, ZT_ANCHOR_ARTIFACT};
use zt_anchor::job::{self, JobConfig, RunOutcome, Tick};
use zt_anchor::rpc::RpcUrl;
use zt_core::text::escape;
use zt_store::Store;

use crate::common::{parse_duration, shutdown_signal};

#[derive(Debug, clap::Subcommand)]
pub enum Anchor {
    /// Deploy the ZtAnchor contract and print its address.
    Deploy(DeployArgs),
    /// Anchor the heads of the store's chains: once, or on a schedule.
    Run(RunArgs),
    /// Let another address anchor your log (or stop it): the key is the log's owner.
    SetWriter(SetWriterArgs),
}

/// Where the chain is. The RPC URL may come from env `ZT_ANCHOR_RPC`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// JSON-RPC URL of a node (e.g. https://sepolia.base.org, or a local anvil). It may carry
    /// a provider key: it is only ever shown redacted.
    #[arg(
        long,
        value_name = "URL",
        env = "ZT_ANCHOR_RPC",
        hide_env_values = true
    )]
    pub rpc: RpcUrl,
    /// The network; the node's chain id must match (base-sepolia 84532, base 8453, local any).
    #[arg(long, value_name = "NAME", default_value = "base-sepolia", value_parser = ["base-sepolia", "base", "local"])]
    pub network: String,
}

impl ChainArgs {
    pub fn network(&self) -> Network {
        Network::from_name(&self.network).unwrap_or(Network::BaseSepolia)
    }

    pub async fn connect(&self) -> Result<Evm> {
        // `RpcUrl` shows itself redacted, and the errors of `Evm` are scrubbed of it.
        Evm::connect(self.rpc.clone(), self.network())
            .await
            .with_context(|| format!("connecting to {}", self.rpc))
    }
}

/// Who pays: env `ZT_ANCHOR_KEY` (hex private key) or an encrypted keystore file whose
/// password is in env `ZT_ANCHOR_KEYSTORE_PASSWORD`. The key is never printed or logged.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// An Ethereum JSON keystore (password in env ZT_ANCHOR_KEYSTORE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub keystore: Option<PathBuf>,
}

impl KeyArgs {
    pub fn signer(&self) -> Result<PrivateKeySigner> {
        if let Some(path) = &self.keystore {
            let password = std::env::var("ZT_ANCHOR_KEYSTORE_PASSWORD").map_err(|_| {
                anyhow!("--keystore needs its password in env ZT_ANCHOR_KEYSTORE_PASSWORD")
            })?;
            return PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|e| anyhow!("cannot open keystore {}: {e}", path.display()));
        }
        let hex_key = std::env::var("ZT_ANCHOR_KEY").map_err(|_| {
            anyhow!("no anchoring key: set env ZT_ANCHOR_KEY (hex) or give --keystore FILE")
        })?;
        // The parse error could echo the input: say only what is wrong with it.
        PrivateKeySigner::from_str(hex_key.trim())
            .map_err(|_| anyhow!("env ZT_ANCHOR_KEY is not a 32-byte hex private key"))
    }
}

/// Fee settings (default: the node's EIP-1559 estimate).
#[derive(Debug, Clone, clap::Args)]
pub struct FeeArgs {
    /// maxFeePerGas, in gwei.
    #[arg(long, value_name = "GWEI")]
    pub max_fee_gwei: Option<f64>,
    /// maxPriorityFeePerGas, in gwei.
    #[arg(long, value_name = "GWEI")]
    pub priority_fee_gwei: Option<f64>,
    /// Refuse anchor transactions that need more gas than this.
    #[arg(long, value_name = "GAS", default_value_t = 200_000)]
    pub gas_limit: u64,
}

impl FeeArgs {
    pub fn fees(&self) -> Result<Fees> {
        let wei = |g: Option<f64>, name: &str| -> Result<Option<u128>> {
            match g {
                None => Ok(None),
                Some(g) if g.is_finite() && g >= 0.0 =>
                {
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "checked finite and non-negative; gwei to wei"
                    )]
                    Ok(Some((g * 1e9).round() as u128))
                }
                Some(_) => bail!("--{name} must be a non-negative number"),
            }
        };
        Ok(Fees {
            max_fee: wei(self.max_fee_gwei, "max-fee-gwei")?,
            priority_fee: wei(self.priority_fee_gwei, "priority-fee-gwei")?,
            gas_cap: self.gas_limit,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    fees: FeeArgs,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["once", "every"])))]
pub struct RunArgs {
    /// The evidence store: a SQLite file, or a PostgreSQL database (the primary). On
    /// PostgreSQL one job at a time leads each log (an advisory lock): another job started
    /// for it stands by, and takes over when the leader's connection ends.
    #[arg(long, value_name = "PATH|URL")]
    db: zt_store::Location,
    #[command(flatten)]
    chain: ChainArgs,
    /// The ZtAnchor contract.
    #[arg(long, value_name = "ADDR")]
    contract: String,
    /// The log's name. On chain the log is its owner's: its id is
    /// keccak256(abi.encode(owner, keccak256(NAME))), so nobody else can write it or take the
    /// name first.
    #[arg(long, value_name = "NAME")]
    log: String,
    /// Whose log to anchor, when the key is a writer the owner authorized (`anchor
    /// set-writer`); default: the key's own address.
    #[arg(long, value_name = "ADDR")]
    owner: Option<String>,
    /// One run: settle the epoch in flight, anchor what moved, exit.
    #[arg(long)]
    once: bool,
    /// Run every DURATION (`30s`, `10m`, `1h`) until SIGINT/SIGTERM; RPC outages are ridden
    /// out with backoff.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    every: Option<Duration>,
    /// How long a run waits for its transaction to be mined.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    receipt_timeout: Duration,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    fees: FeeArgs,
}

#[derive(Debug, clap::Args)]
pub struct SetWriterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The ZtAnchor contract.
    #[arg(long, value_name = "ADDR")]
    contract: String,
    /// Your log's name.
    #[arg(long, value_name = "NAME")]
    log: String,
    /// The address that may anchor it (it then runs `anchor run --owner <your address>`).
    #[arg(long, value_name = "ADDR")]
    writer: String,
    /// Take the permission back instead.
    #[arg(long)]
    revoke: bool,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    fees: FeeArgs,
}

pub fn parse_address(s: &str) -> Result<Address> {
    Address::from_str(s.trim()).map_err(|_| anyhow!("{s:?} is not a 0x address"))
}

pub fn run(cmd: Anchor) -> Result<ExitCode> {
    let rt = crate::common::runtime()?;
    match cmd {
        Anchor::Deploy(a) => rt.block_on(deploy(a)),
        Anchor::Run(a) => rt.block_on(run_job(a)),
        Anchor::SetWriter(a) => rt.block_on(set_writer(a)),
    }
}

async fn set_writer(a: SetWriterArgs) -> Result<ExitCode> {
    let signer = a.key.signer()?;
    let contract = parse_address(&a.contract)?;
    let writer = parse_address(&a.writer)?;
    let evm = a.chain.connect().await?;
    let receipt = evm
        .send_and_wait(
            &signer,
            Some(contract),
            Evm::set_writer_calldata(&a.log, writer, !a.revoke),
            &a.fees.fees()?,
            Duration::from_secs(120),
        )
        .await
        .context("setWriter")?;
    if !receipt.success {
        bail!("setWriter reverted (block {})", receipt.block_number);
    }
    println!(
        "{writer:#x} {} anchor log {} of {:#x} on {contract:#x} (block {})",
        if a.revoke { "may no longer" } else { "may" },
        escape(&a.log),
        signer.address(),
        receipt.block_number
    );
    Ok(ExitCode::SUCCESS)
}

async fn deploy(a: DeployArgs) -> Result<ExitCode> {
    let signer = a.key.signer()?;
    let evm = a.chain.connect().await?;
    let (addr, receipt) = evm
        .deploy(&signer, ZT_ANCHOR_ARTIFACT, &a.fees.fees()?)
        .await
        .context("deploying ZtAnchor")?;
    // First line of stdout: the address, for scripts.
    println!("{addr:#x}");
    eprintln!(
        "ZtAnchor deployed on chain {} at {addr:#x} (block {}, {} gas) by {:#x}",
        evm.chain_id(),
        receipt.block_number,
        receipt.gas_used,
        signer.address()
    );
    Ok(ExitCode::SUCCESS)
}

fn describe(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::NothingToAnchor { latest_epoch } => {
            format!("nothing moved since epoch {latest_epoch}: no anchor needed")
        }
        RunOutcome::Anchored(e) | RunOutcome::Waiting(e) => format!(
            "epoch {}: {} chain head(s), root {}, tx {}, {}{}",
            e.epoch,
            e.leaf_count,
            e.root,
            // Read back from the store: shown escaped like the rest of its text.
            escape(e.tx_hash.as_deref().unwrap_or("-")),
            e.state,
            e.block_number
                .map(|b| format!(" in block {b}"))
                .unwrap_or_default()
        ),
    }
}

async fn run_job(a: RunArgs) -> Result<ExitCode> {
    let signer = a.key.signer()?;
    let contract = parse_address(&a.contract)?;
    let mut cfg = JobConfig::new(a.log.clone(), contract);
    cfg.owner = a.owner.as_deref().map(parse_address).transpose()?;
    cfg.fees = a.fees.fees()?;
    cfg.receipt_timeout = a.receipt_timeout;
    let mut store = Store::open_existing(&a.db)
        .with_context(|| format!("cannot open store {}", crate::style::store(&a.db)))?;
    let Some(every) = a.every else {
        let evm = a.chain.connect().await?;
        match job::run_led_once(&mut store, &evm, &signer, cfg)
            .await
            .context("anchoring")?
        {
            Some(outcome) => println!("{}", describe(&outcome)),
            None => println!(
                "standing by: another anchoring job leads log {} in this store; nothing anchored",
                escape(&a.log)
            ),
        }
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!(
        "zt-audit anchor run: log {} of {:#x} every {every:?}, contract {contract:#x}",
        escape(&a.log),
        cfg.owner.unwrap_or_else(|| signer.address())
    );
    let network = a.chain.network();
    let connect = || Evm::connect(a.chain.rpc.clone(), network);
    job::run_every(
        &mut store,
        connect,
        &signer,
        &cfg,
        every,
        shutdown_signal(),
        |t| match t {
            Tick::Ran(outcome) => println!("{}", describe(&outcome)),
            Tick::StandingBy { retry_in } => eprintln!(
            "zt-audit anchor run: standing by, another job leads log {}; next try in {retry_in:?}",
            escape(&a.log)
        ),
            Tick::Failed { error, retry_in } => eprintln!(
                "zt-audit anchor run: {}; next try in {retry_in:?}",
                escape(&error.to_string())
            ),
        },
    )
    .await;
    eprintln!("zt-audit anchor run: stopped; the next start resumes from the store");
    Ok(ExitCode::SUCCESS)
}
