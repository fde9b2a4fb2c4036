//! A local chain node for the demo and the anchoring bench: `anvil` from the npm registry
//! (`@foundry-rs/anvil`, pinned in package.json), on 127.0.0.1 with Base Sepolia's chain id.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::signers::local::PrivateKeySigner;
use anyhow::{bail, Context, Result};
use zt_anchor::evm::Evm;

/// Where anvil is looked for: env `ZT_ANVIL`, else `node_modules/.bin/anvil` (where scripts/npm-tools.sh
/// puts it).
pub fn default_path() -> PathBuf {
    std::env::var_os("ZT_ANVIL")
        .map_or_else(|| PathBuf::from("node_modules/.bin/anvil"), PathBuf::from)
}

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Anvil {
    /// Starts `bin` with chain id 84532 on a free loopback port (history pruned, so long runs
    /// stay small).
    pub fn start(bin: &Path) -> Result<Anvil> {
        if !bin.exists() {
            bail!("no anvil at {} (run scripts/npm-tools.sh)", bin.display());
        }
        let mut child = Command::new(bin)
            .args(["--chain-id", "84532", "--host", "127.0.0.1", "--port", "0"])
            .args(["--prune-history", "--gas-limit", "1000000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let out = child.stdout.take().context("anvil's stdout")?;
        let mut lines = std::io::BufReader::new(out).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("anvil exited before listening")
            };
            if let Some(addr) = line?.strip_prefix("Listening on ") {
                break format!("http://{}", addr.trim());
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Anvil { child, url })
    }
}

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
