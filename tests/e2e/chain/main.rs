//! Anchoring against a real local chain node: `anvil` from the npm registry (pinned in
//! package.json; scripts/npm-tools.sh installs it), started with `--chain-id 84532` on 127.0.0.1, and the
//! real `zt-audit` binary; and the store on a real PostgreSQL. A separate test binary: the
//! everyday `cargo test` of the other crates does not need a node.
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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use zt_core::envelope::V1Draft;
use zt_core::json::{Map, Value as JValue};
use zt_core::Hash32;
pub use zt_testkit::anvil::{address, Anvil};
pub use zt_testkit::bin::{assert_exit, assert_exit_saying};
pub use zt_testkit::keys::v1_keyring;
pub use zt_testkit::store::sql;
pub use zt_testkit::{both, repo, s, stdout, Bin};

/// The `zt-audit` under test.
pub fn bin() -> Bin {
    Bin::under_test(env!("CARGO_BIN_EXE_zt-audit"))
}

/// Runs `zt-audit` with `ZT_ANCHOR_KEY=key` (or none); asserts it did not panic.
pub fn zt(key: Option<&str>, args: &[&str]) -> Output {
    bin().run_anchor(key, args)
}

/// `zt-audit anchor deploy`: the contract's address.
pub fn deploy(anvil: &Anvil, key: &str) -> String {
    let out = zt(Some(key), &["anchor", "deploy", "--rpc", &anvil.url]);
    assert_exit(&out, 0);
    stdout(&out).lines().next().unwrap().trim().to_owned()
}

/// `zt-audit anchor run --once` of `log` on `contract` (receipts waited for 20 s), with
/// `extra` arguments.
pub fn anchor_once_with(
    anvil_url: &str,
    key: &str,
    db: impl AsRef<OsStr>,
    contract: &str,
    log: &str,
    extra: &[&str],
) -> Output {
    let db = db.as_ref().to_str().unwrap();
    let mut args = vec!["anchor", "run", "--db", db, "--rpc", anvil_url];
    args.extend(["--contract", contract, "--log", log, "--once"]);
    args.extend(["--receipt-timeout", "20s"]);
    args.extend_from_slice(extra);
    zt(Some(key), &args)
}

/// `zt-audit anchor run --once`.
pub fn anchor_once(
    anvil_url: &str,
    key: &str,
    db: impl AsRef<OsStr>,
    contract: &str,
    log: &str,
) -> Output {
    anchor_once_with(anvil_url, key, db, contract, log, &[])
}

/// `zt-audit reconcile --format json` of `owner`'s log: (exit code, report).
pub fn reconcile(
    anvil: &Anvil,
    db: impl AsRef<OsStr>,
    contract: &str,
    owner: &str,
    log: &str,
) -> (i32, Value) {
    let db = db.as_ref().to_str().unwrap();
    let out = zt(
        None,
        &[
            "reconcile",
            "--db",
            db,
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
pub fn verify_db(db: impl AsRef<OsStr>) -> (i32, Value) {
    bin().verify_db(db, &v1_keyring())
}

/// `zt-audit prove --db DB --record HASH --out FILE`.
pub fn prove(db: &Path, record: &Hash32, out: &Path) -> Output {
    zt(
        None,
        &[
            "prove",
            "--db",
            s(db),
            "--record",
            &record.to_hex(),
            "--out",
            s(out),
        ],
    )
}

/// `zt-audit verify-proof FILE --keyring <v1 keyring> ARGS...`.
pub fn verify_proof(file: &Path, args: &[&str]) -> Output {
    let ring = v1_keyring();
    let mut all = vec!["verify-proof", s(file), "--keyring", s(&ring)];
    all.extend_from_slice(args);
    zt(None, &all)
}

/// A v1 chain signed with the test-only key `test-only-a`, from `start` with `prev`, each
/// decision `decision_of(seq)`.
pub fn v1_chain(
    chain: &str,
    start: u64,
    n: u64,
    prev: Hash32,
    decision_of: impl Fn(u64) -> &'static str,
) -> Vec<(String, Hash32)> {
    let key = zt_testkit::keys::fixture_key("test-only-a");
    zt_testkit::keys::seal_chain(start, n, prev, Some((&key, "test-only-a")), |seq| {
        let mut ctx = Map::new();
        ctx.push(
            "request_id".into(),
            JValue::String(format!("req-{chain}-{seq}")),
        );
        V1Draft {
            chain_id: chain.into(),
            seq,
            actor: "agent-hello".into(),
            action: "hello-world.say_hello".into(),
            resource: format!("demo/{seq}"),
            decision: decision_of(seq).into(),
            reason: "test".into(),
            timestamp: format!("2026-10-01T09:{:02}:00.000Z", seq % 60),
            context: Some(ctx),
            ..V1Draft::default()
        }
    })
}

/// [`v1_chain`] with every decision an allow.
pub fn allowed(chain: &str, start: u64, n: u64, prev: Hash32) -> Vec<(String, Hash32)> {
    v1_chain(chain, start, n, prev, |_| "allow")
}

/// Imports envelopes (JSON lines) into the store at `db` (a path or a `postgres://` URL),
/// through a file in `dir`.
pub fn import_in(db: &str, dir: &Path, lines: &[(String, Hash32)]) {
    let file = dir.join(format!("import-{}.jsonl", lines[0].1.to_hex()));
    zt_testkit::keys::write_records(&file, lines);
    let out = bin().import(db, &v1_keyring(), &[&file]);
    assert_exit(&out, 0);
}

/// Imports envelopes (JSON lines) into the SQLite store at `db`.
pub fn import(db: &Path, lines: &[(String, Hash32)]) {
    import_in(s(db), db.parent().unwrap(), lines);
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

/// A node, a funded key, the contract it deployed, and a folder for stores: where most tests
/// here begin.
#[derive(Debug)]
pub struct Setup {
    pub anvil: Anvil,
    pub key: String,
    pub contract: String,
    pub tmp: tempfile::TempDir,
}

impl Setup {
    pub fn start() -> Setup {
        let anvil = Anvil::start();
        let key = anvil.funded_key();
        let contract = deploy(&anvil, &key);
        Setup {
            anvil,
            key,
            contract,
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// A file in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `anchor run --once` of `db` as `log` with the setup's key; asserts it exited 0.
    pub fn anchor(&self, db: &Path, log: &str) -> Output {
        let out = anchor_once(&self.anvil.url, &self.key, db, &self.contract, log);
        assert_exit(&out, 0);
        out
    }

    /// `reconcile` of `db` against the setup key's `log`: (exit code, report).
    pub fn reconcile(&self, db: &Path, log: &str) -> (i32, Value) {
        reconcile(&self.anvil, db, &self.contract, &address(&self.key), log)
    }
}
