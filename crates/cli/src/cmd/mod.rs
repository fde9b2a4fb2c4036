//! One module per subcommand, each with its `Args` and `run`.

pub mod anchor;
pub mod anvil;
pub mod bench;
pub mod bench_anchor;
pub mod bench_cp;
pub mod bench_ingest;
pub mod bench_tui;
pub mod control_plane;
pub mod demo;
pub mod import;
pub mod keygen;
pub mod prove;
pub mod reconcile;
pub mod serve;
pub mod tui;
pub mod verify;

/// The async runtime the network subcommands run on (multi-threaded, I/O and timers).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Which records count in a store (`serve`, `import`): the trust policy's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// Let unsigned (and mock-signed) records of this chain be part of its main line: heads,
    /// anchors, proofs (repeatable; a v1 `chain_id` or a lineage chain name). Without it only
    /// records whose signature verified under the keyring count; the rest are kept as
    /// evidence, off every main line.
    #[arg(long = "allow-unsigned-chain", value_name = "CHAIN")]
    pub allow_unsigned_chain: Vec<String>,
}

impl TrustArgs {
    /// The policy.
    pub fn policy(&self) -> zt_core::chain::TrustPolicy {
        use zt_core::chain::{AllowUnsigned, TrustPolicy};
        TrustPolicy {
            allow_unsigned: if self.allow_unsigned_chain.is_empty() {
                AllowUnsigned::Nowhere
            } else {
                AllowUnsigned::Chains(self.allow_unsigned_chain.clone())
            },
        }
    }
}
