//! A lineage JSONL file against a (reconstructed) lineage DAALog deployment on anvil: records
//! logged one by one with `logAction`, the rest as one `logBatch` root.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use zt_anchor::evm::{DAALog, Evm, Fees, Network, Receipt, DAALOG_ARTIFACT};
use zt_anchor::tree::lineage_batch_root;
use zt_core::{Envelope, Hash32};
use zt_testkit::keys::interop_dir;
use zt_testkit::report::kinds;

use crate::{assert_exit_saying, both, s, zt, Anvil};

fn hashes(file: &str) -> Vec<Hash32> {
    std::fs::read(interop_dir().join(file))
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| Envelope::from_json(l).unwrap().current_hash)
        .collect()
}

/// `reconcile --lineage` of the interop vector `file` against `contract`, with `loggers`
/// named: (exit code, report).
fn reconcile_lineage(
    anvil: &Anvil,
    contract: &str,
    file: &str,
    loggers: &[Address],
) -> (i32, serde_json::Value) {
    let path = interop_dir().join(file);
    let loggers: Vec<String> = loggers.iter().map(|a| format!("{a:#x}")).collect();
    let mut args = vec!["reconcile", "--lineage", s(&path), "--rpc", &anvil.url];
    args.extend(["--contract", contract, "--format", "json"]);
    for l in &loggers {
        args.extend(["--logger", l.as_str()]);
    }
    let out = zt(None, &args);
    let code = out.status.code().unwrap();
    (
        code,
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", both(&out))),
    )
}

/// A node's transactions, sent and waited for one at a time.
struct Node {
    rt: tokio::runtime::Runtime,
    evm: Evm,
}

impl Node {
    fn connect(anvil: &Anvil) -> Node {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let evm = rt
            .block_on(Evm::connect(&anvil.url, Network::BaseSepolia))
            .unwrap();
        Node { rt, evm }
    }

    /// A lineage `DAALog` deployed by `who`: its address.
    fn deploy_daalog(&self, who: &PrivateKeySigner) -> Address {
        let deployed = self
            .rt
            .block_on(self.evm.deploy(who, DAALOG_ARTIFACT, &Fees::default()));
        deployed.unwrap().0
    }

    /// A transaction from `who` to `to` (none: a deployment) with `fees`, waited for 20 s.
    fn send_with(
        &self,
        who: &PrivateKeySigner,
        to: Option<Address>,
        input: Bytes,
        fees: &Fees,
    ) -> Receipt {
        self.rt
            .block_on(
                self.evm
                    .send_and_wait(who, to, input, fees, Duration::from_secs(20)),
            )
            .unwrap()
    }

    /// A call from `who` to `to` of at most 1,000,000 gas.
    fn send(&self, who: &PrivateKeySigner, to: Address, call: impl SolCall) -> Receipt {
        let fees = Fees {
            gas_cap: 1_000_000,
            ..Fees::default()
        };
        self.send_with(who, Some(to), Bytes::from(call.abi_encode()), &fees)
    }
}

fn log_action(hash: B256) -> DAALog::logActionCall {
    DAALog::logActionCall {
        actionHash: hash,
        metadata: "{}".into(),
    }
}

fn log_batch(root: B256, count: usize) -> DAALog::logBatchCall {
    DAALog::logBatchCall {
        batchRoot: root,
        count: U256::from(count),
    }
}

#[test]
fn a_lineage_file_is_reconciled_with_its_daalog_deployment() {
    let anvil = Anvil::start();
    let signer = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let valid = hashes("valid.jsonl");
    let node = Node::connect(&anvil);
    let addr = node.deploy_daalog(&signer);
    for h in &valid[..6] {
        assert!(
            node.send(&signer, addr, log_action(B256::from(h.0)))
                .success
        );
    }
    let root = lineage_batch_root(&valid[6..]).unwrap();
    assert!(
        node.send(&signer, addr, log_batch(B256::from(root.0), 6))
            .success
    );
    let contract = format!("{addr:#x}");

    let reconciled = |file: &str| reconcile_lineage(&anvil, &contract, file, &[signer.address()]);
    let (code, report) = reconciled("valid.jsonl");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (
            report["logged"].as_u64(),
            report["batched"].as_u64(),
            report["unanchored"].as_u64()
        ),
        (Some(6), Some(6), Some(0))
    );

    // The file cut after record 7: the batch over records 6..11 is gone.
    let (code, report) = reconciled("truncated.jsonl");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(kinds(&report), ["batch_unmatched"]);

    // A rewritten tail: it verifies as a chain, but it is not what was logged.
    let (code, report) = reconciled("rewritten-tail.jsonl");
    assert_eq!(code, 1, "{report:#}");
    let kinds = kinds(&report);
    assert!(
        kinds.contains(&"batch_unmatched") || kinds.contains(&"missing_record"),
        "{kinds:?}"
    );
}

/// Anyone can call `logAction` and `logBatch`. A hostile sender logs an action hash the file
/// never had, so that the file looks truncated (`missing_record`), and floods the contract
/// with batches of every size, so that matching them costs records x sizes.
#[test]
fn a_hostile_senders_events_are_ignored_counted_and_cost_nothing_to_match() {
    let anvil = Anvil::start();
    let logger = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let hostile = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let valid = hashes("valid.jsonl");
    let flood = 40u64;
    let node = Node::connect(&anvil);
    let addr = node.deploy_daalog(&logger);
    let root = lineage_batch_root(&valid).unwrap();
    let mut sent = vec![node.send(&logger, addr, log_batch(B256::from(root.0), valid.len()))];
    sent.push(node.send(&hostile, addr, log_action(B256::repeat_byte(0x66))));
    for count in 1..=flood {
        let call = log_batch(B256::from(U256::from(count)), count as usize);
        sent.push(node.send(&hostile, addr, call));
    }
    assert!(sent.iter().all(|r| r.success));
    let contract = format!("{addr:#x}");
    let (code, report) = reconcile_lineage(&anvil, &contract, "valid.jsonl", &[logger.address()]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["batched"], valid.len(), "{report:#}");
    assert_eq!(report["ignored_action_events"], 1, "{report:#}");
    assert_eq!(report["ignored_batch_events"], flood, "{report:#}");
    assert_eq!(report["ignored_senders"], 1, "{report:#}");
    // The one real batch, found at its cursor: about a pair hash a record. Matching the flood
    // the old way would have hashed every run of every size (12 records x 40 sizes).
    let work = report["match_work"].as_u64().unwrap();
    assert!(work <= 2 * valid.len() as u64, "{report:#}");

    // Named as a logger, the hostile sender's events count again (and are findings).
    let (code, report) = reconcile_lineage(
        &anvil,
        &contract,
        "valid.jsonl",
        &[logger.address(), hostile.address()],
    );
    assert_eq!(code, 1, "{report:#}");
    let kinds = kinds(&report);
    assert!(kinds.contains(&"missing_record"), "{kinds:?}");
    assert!(report["match_work"].as_u64().unwrap() > work, "{report:#}");

    // A logger that is a contract anyone can call (a relay) lends its name to every caller: the
    // event's logger is the relay, its transaction's sender is not a named logger.
    let deployed = node.send_with(&logger, None, relay_bytecode(addr), &Fees::default());
    let relay = deployed.contract_address.unwrap();
    assert!(
        node.send(&hostile, relay, log_action(B256::repeat_byte(0x77)))
            .success
    );
    let (code, report) =
        reconcile_lineage(&anvil, &contract, "valid.jsonl", &[logger.address(), relay]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ignored_action_events"], 2, "{report:#}");

    // No logger named: refused (exit 2), nothing counted from anyone.
    let path = interop_dir().join("valid.jsonl");
    let out = zt(
        None,
        &[
            "reconcile",
            "--lineage",
            s(&path),
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
        ],
    );
    assert_exit_saying(&out, 2, "--logger");
}

/// A relay contract (hand-assembled, test-only): forwards its calldata to `to` and reverts
/// when that call does. Anyone can call it, so `to` sees the relay as `msg.sender`.
fn relay_bytecode(to: Address) -> Bytes {
    let mut runtime = vec![0x36, 0x5f, 0x5f, 0x37, 0x5f, 0x5f, 0x36, 0x5f, 0x5f, 0x73];
    runtime.extend_from_slice(to.as_slice());
    // GAS CALL ISZERO PUSH1 0x25 JUMPI STOP JUMPDEST PUSH0 PUSH0 REVERT
    runtime.extend_from_slice(&[
        0x5a, 0xf1, 0x15, 0x60, 0x25, 0x57, 0x00, 0x5b, 0x5f, 0x5f, 0xfd,
    ]);
    assert_eq!(runtime[0x25], 0x5b, "the jump lands on its JUMPDEST");
    let len = u8::try_from(runtime.len()).unwrap();
    // PUSH1 len DUP1 PUSH1 9 PUSH0 CODECOPY PUSH0 RETURN, then the runtime code.
    let mut code = vec![0x60, len, 0x80, 0x60, 0x09, 0x5f, 0x39, 0x5f, 0xf3];
    code.extend_from_slice(&runtime);
    Bytes::from(code)
}
