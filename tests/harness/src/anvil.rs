//! A local chain node: anvil's native binary (from `node_modules`, `scripts/npm-tools.sh`),
//! started with `--chain-id 84532` on 127.0.0.1 and ended on drop, and its JSON-RPC.

use alloy::signers::local::PrivateKeySigner;
use serde_json::{json, Value};

/// A running anvil; killed on drop.
#[derive(Debug)]
pub struct Anvil {
    /// Held for its drop, which ends the node.
    _node: zt_anchor::anvil::Anvil,
    pub url: String,
}

impl Anvil {
    pub fn start() -> Anvil {
        let found = zt_anchor::anvil::find(None, &[crate::repo()])
            .unwrap_or_else(|e| panic!("{e} (scripts/test.sh runs scripts/npm-tools.sh)"));
        let node = zt_anchor::anvil::Anvil::start(&found.path).expect("start anvil");
        let url = node.url.clone();
        Anvil { _node: node, url }
    }

    /// A JSON-RPC call: its result.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        rpc(&self.url, method, params)
    }

    /// A fresh key with 100 ETH on this node (hex, for `ZT_ANCHOR_KEY`).
    pub fn funded_key(&self) -> String {
        let signer = PrivateKeySigner::random();
        self.rpc(
            "anvil_setBalance",
            json!([format!("{:#x}", signer.address()), "0x56BC75E2D63100000"]),
        );
        format!("{:#x}", signer.to_bytes())
    }

    pub fn block_number(&self) -> u64 {
        let v = self.rpc("eth_blockNumber", json!([]));
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }
}

/// A JSON-RPC call to `url`: its result; asserts it was not an error.
pub fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, v) = crate::http::call("POST", url, None, Some(&body));
    assert_eq!(status, 200, "{method}: {v}");
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

/// The address of a hex private key (`ZT_ANCHOR_KEY`), as 0x hex.
pub fn address(key: &str) -> String {
    use std::str::FromStr;
    format!("{:#x}", PrivateKeySigner::from_str(key).unwrap().address())
}
