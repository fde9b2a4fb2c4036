//! The local chain node for the demo and the anchoring bench: found and run by
//! [`zt_anchor::anvil`]; here only where this binary looks and the funding of a key.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use anyhow::Result;
use zt_anchor::anvil::{AnvilError, Found};
use zt_anchor::evm::Evm;

/// Finds anvil: `explicit` (`--anvil`), `ZT_ANVIL`, `PATH`, then `node_modules/.bin/anvil` in
/// the current folder and in the source tree this binary was built from (where
/// `scripts/npm-tools.sh` puts the pinned copy), so `cargo install --path crates/cli` finds it
/// from anywhere.
pub fn locate(explicit: Option<&Path>) -> Result<Found, AnvilError> {
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    roots.push(source_tree.canonicalize().unwrap_or(source_tree));
    zt_anchor::anvil::find(explicit, &roots)
}

/// The `--anvil` flag's help, shared by the commands that take it.
pub const FLAG_HELP: &str = "The anvil executable (default: env ZT_ANVIL, else anvil on PATH, \
else node_modules/.bin/anvil here or in the source tree, which scripts/npm-tools.sh installs)";

/// A fresh random key, funded on a local node (`anvil_setBalance`); never written anywhere.
pub async fn funded_key(evm: &Evm) -> Result<PrivateKeySigner> {
    let signer = PrivateKeySigner::random();
    evm.raw_request(
        "anvil_setBalance",
        serde_json::json!([format!("{:#x}", signer.address()), "0xD3C21BCECCEDA1000000"]),
    )
    .await?;
    Ok(signer)
}
