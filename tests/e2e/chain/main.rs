//! Anchoring against a real local chain node: `anvil` from the npm registry (pinned in
//! package.json; scripts/npm-tools.sh installs it), started with `--chain-id 84532` on 127.0.0.1, and the
//! real `zt-audit` binary. A separate test binary: the everyday `cargo test` of the other
//! crates does not need a node.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test crate: a failed unwrap is a failed test"
)]

mod attacks;
mod contract;
mod cycle;
mod failures;
mod lineage;
mod postgres;

use std::path::Path;
use std::process::{Command, Output};

use alloy::signers::local::PrivateKeySigner;
use serde_json::{json, Value};
use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::json::{Map, Value as JValue};
use zt_core::Hash32;

#[path = "../support/mod.rs"]
mod support;
pub use support::{python, repo, spawn_server};

/// A running anvil (the native binary, so dropping it ends the node); killed on drop.
#[derive(Debug)]
pub struct Anvil {
    node: zt_anchor::anvil::Anvil,
    pub url: String,
}

impl Anvil {
    pub fn start() -> Anvil {
        let found = zt_anchor::anvil::find(None, &[repo()])
            .unwrap_or_else(|e| panic!("{e} (scripts/test.sh runs scripts/npm-tools.sh)"));
        let node = zt_anchor::anvil::Anvil::start(&found.path).expect("start anvil");
        let url = node.url.clone();
        Anvil { node, url }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.node.pid()
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        rpc(&self.url, method, params)
    }

    /// A fresh key with 100 ETH on this node (hex, for ZT_ANCHOR_KEY).
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

pub fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    // reqwest has rustls without a provider in this workspace (see zt_tls).
    zt_tls::install_default_provider();
    let v: Value = reqwest::blocking::Client::new()
        .post(url)
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

/// Runs `zt-audit` with `ZT_ANCHOR_KEY=key`; asserts it did not panic.
pub fn zt(key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zt-audit"));
    cmd.args(args)
        .env_remove("ZT_ANCHOR_KEY")
        .env_remove("ZT_ANCHOR_RPC");
    if let Some(k) = key {
        cmd.env("ZT_ANCHOR_KEY", k);
    }
    let out = cmd.output().expect("run zt-audit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "zt-audit panicked: {stderr}");
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `zt-audit anchor deploy`: the contract's address.
pub fn deploy(anvil: &Anvil, key: &str) -> String {
    let out = zt(Some(key), &["anchor", "deploy", "--rpc", &anvil.url]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    stdout(&out).lines().next().unwrap().trim().to_owned()
}

/// `zt-audit anchor run --once`.
pub fn anchor_once(
    anvil_url: &str,
    key: &str,
    db: impl AsRef<std::ffi::OsStr>,
    contract: &str,
    log: &str,
) -> Output {
    zt(
        Some(key),
        &[
            "anchor",
            "run",
            "--db",
            db.as_ref().to_str().unwrap(),
            "--rpc",
            anvil_url,
            "--contract",
            contract,
            "--log",
            log,
            "--once",
            "--receipt-timeout",
            "20s",
        ],
    )
}

/// The address of a hex private key (`ZT_ANCHOR_KEY`), as 0x hex.
pub fn address(key: &str) -> String {
    use std::str::FromStr;
    format!("{:#x}", PrivateKeySigner::from_str(key).unwrap().address())
}

/// `zt-audit reconcile --format json` of `owner`'s log: (exit code, report).
pub fn reconcile(
    anvil: &Anvil,
    db: impl AsRef<std::ffi::OsStr>,
    contract: &str,
    owner: &str,
    log: &str,
) -> (i32, Value) {
    let out = zt(
        None,
        &[
            "reconcile",
            "--db",
            db.as_ref().to_str().unwrap(),
            "--rpc",
            &anvil.url,
            "--contract",
            contract,
            "--owner",
            owner,
            "--log",
            log,
            "--format",
            "json",
        ],
    );
    let code = out.status.code().unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("reconcile output is not JSON ({e}): {}", both(&out)));
    (code, v)
}

/// `zt-audit verify --db DB --keyring fixtures/v1/keyring.json --format json`.
pub fn verify_db(db: impl AsRef<std::ffi::OsStr>) -> (i32, Value) {
    let ring = repo().join("fixtures/v1/keyring.json");
    let out = zt(
        None,
        &[
            "verify",
            "--format",
            "json",
            "--db",
            db.as_ref().to_str().unwrap(),
            "--keyring",
            ring.to_str().unwrap(),
        ],
    );
    (
        out.status.code().unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

pub fn test_key() -> SigningKey {
    let pem = std::fs::read_to_string(repo().join("fixtures/keys/test-only-a.key.pem")).unwrap();
    SigningKey::from_pkcs8_pem(&pem).unwrap()
}

/// A v1 chain signed with the test-only key `test-only-a`, from `start` with `prev`.
pub fn v1_chain(
    chain: &str,
    start: u64,
    n: u64,
    prev: Hash32,
    decision_of: impl Fn(u64) -> &'static str,
) -> Vec<(String, Hash32)> {
    let key = test_key();
    let mut prev = prev;
    (start..start + n)
        .map(|seq| {
            let mut ctx = Map::new();
            ctx.push(
                "request_id".into(),
                JValue::String(format!("req-{chain}-{seq}")),
            );
            let d = V1Draft {
                chain_id: chain.into(),
                seq,
                actor: "agent-hello".into(),
                action: "hello-world.say_hello".into(),
                resource: format!("demo/{seq}"),
                decision: decision_of(seq).into(),
                reason: "test".into(),
                timestamp: format!("2026-10-01T09:{:02}:00.000Z", seq % 60),
                previous_hash: prev,
                context: Some(ctx),
            };
            let s = d.seal(Some((&key, "test-only-a")));
            prev = s.current_hash;
            (s.json, s.current_hash)
        })
        .collect()
}

/// Imports envelopes (JSON lines) into the store at `db`.
pub fn import(db: &Path, lines: &[(String, Hash32)]) {
    let file = db.with_extension(format!(
        "import-{}.jsonl",
        lines.first().map_or(0, |l| l.1 .0[0])
    ));
    let text: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let ring = repo().join("fixtures/v1/keyring.json");
    let out = zt(
        None,
        &[
            "import",
            "--db",
            db.to_str().unwrap(),
            "--keyring",
            ring.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

pub fn sql(db: &Path, statement: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(statement).unwrap();
}

/// The `Anchored` events of the contract.
pub fn anchored_events(anvil: &Anvil, contract: &str) -> Vec<Value> {
    let topic = format!(
        "{:#x}",
        alloy::primitives::keccak256("Anchored(bytes32,uint64,address,bytes32,uint64)")
    );
    anvil
        .rpc(
            "eth_getLogs",
            json!([{"address": contract, "fromBlock": "0x0", "toBlock": "latest", "topics": [topic]}]),
        )
        .as_array()
        .unwrap()
        .clone()
}
