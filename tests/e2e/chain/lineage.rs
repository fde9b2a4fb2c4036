//! A lineage JSONL file against a (reconstructed) lineage DAALog deployment on anvil: records
//! logged one by one with `logAction`, the rest as one `logBatch` root.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use zt_anchor::evm::{DAALog, Evm, Fees, Network, DAALOG_ARTIFACT};
use zt_anchor::tree::lineage_batch_root;
use zt_core::{Envelope, Hash32};

use crate::{both, repo, zt, Anvil};

fn hashes(file: &str) -> Vec<Hash32> {
    std::fs::read(repo().join("fixtures/interop/zt-infra-full").join(file))
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| Envelope::from_json(l).unwrap().current_hash)
        .collect()
}

fn reconcile_lineage(
    anvil: &Anvil,
    contract: &str,
    file: &str,
    loggers: &[Address],
) -> (i32, serde_json::Value) {
    let path = repo().join("fixtures/interop/zt-infra-full").join(file);
    let loggers: Vec<String> = loggers.iter().map(|a| format!("{a:#x}")).collect();
    let mut args = vec![
        "reconcile",
        "--lineage",
        path.to_str().unwrap(),
        "--rpc",
        &anvil.url,
        "--contract",
        contract,
        "--format",
        "json",
    ];
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

#[test]
fn a_lineage_file_is_reconciled_with_its_daalog_deployment() {
    let anvil = Anvil::start();
    let signer = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let valid = hashes("valid.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let contract = rt.block_on(async {
        let evm = Evm::connect(&anvil.url, Network::BaseSepolia)
            .await
            .unwrap();
        let (addr, _) = evm
            .deploy(&signer, DAALOG_ARTIFACT, &Fees::default())
            .await
            .unwrap();
        let send = |input: Vec<u8>| {
            let evm = evm.clone();
            let signer = signer.clone();
            async move {
                let r = evm
                    .send_and_wait(
                        &signer,
                        Some(addr),
                        Bytes::from(input),
                        &Fees {
                            gas_cap: 1_000_000,
                            ..Fees::default()
                        },
                        Duration::from_secs(20),
                    )
                    .await
                    .unwrap();
                assert!(r.success);
            }
        };
        for h in &valid[..6] {
            send(
                DAALog::logActionCall {
                    actionHash: B256::from(h.0),
                    metadata: "{}".into(),
                }
                .abi_encode(),
            )
            .await;
        }
        let root = lineage_batch_root(&valid[6..]).unwrap();
        send(
            DAALog::logBatchCall {
                batchRoot: B256::from(root.0),
                count: U256::from(6),
            }
            .abi_encode(),
        )
        .await;
        format!("{addr:#x}")
    });

    let (code, report) = reconcile_lineage(&anvil, &contract, "valid.jsonl", &[signer.address()]);
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
    let (code, report) =
        reconcile_lineage(&anvil, &contract, "truncated.jsonl", &[signer.address()]);
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["batch_unmatched"]);

    // A rewritten tail: it verifies as a chain, but it is not what was logged.
    let (code, report) = reconcile_lineage(
        &anvil,
        &contract,
        "rewritten-tail.jsonl",
        &[signer.address()],
    );
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
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
    let rt = tokio::runtime::Runtime::new().unwrap();
    let contract = rt.block_on(async {
        let evm = Evm::connect(&anvil.url, Network::BaseSepolia)
            .await
            .unwrap();
        let (addr, _) = evm
            .deploy(&logger, DAALOG_ARTIFACT, &Fees::default())
            .await
            .unwrap();
        let fees = Fees {
            gas_cap: 1_000_000,
            ..Fees::default()
        };
        let mut sent = Vec::new();
        let send = |who: &PrivateKeySigner, input: Vec<u8>| {
            let (evm, who) = (evm.clone(), who.clone());
            async move {
                evm.send_and_wait(
                    &who,
                    Some(addr),
                    Bytes::from(input),
                    &fees,
                    Duration::from_secs(20),
                )
                .await
                .unwrap()
            }
        };
        let root = lineage_batch_root(&valid).unwrap();
        sent.push(
            send(
                &logger,
                DAALog::logBatchCall {
                    batchRoot: B256::from(root.0),
                    count: U256::from(valid.len()),
                }
                .abi_encode(),
            )
            .await,
        );
        sent.push(
            send(
                &hostile,
                DAALog::logActionCall {
                    actionHash: B256::repeat_byte(0x66),
                    metadata: "{}".into(),
                }
                .abi_encode(),
            )
            .await,
        );
        for count in 1..=flood {
            sent.push(
                send(
                    &hostile,
                    DAALog::logBatchCall {
                        batchRoot: B256::from(U256::from(count)),
                        count: U256::from(count),
                    }
                    .abi_encode(),
                )
                .await,
            );
        }
        assert!(sent.iter().all(|r| r.success));
        format!("{addr:#x}")
    });
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
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"missing_record"), "{kinds:?}");
    assert!(report["match_work"].as_u64().unwrap() > work, "{report:#}");

    // A logger that is a contract anyone can call (a relay) lends its name to every caller: the
    // event's logger is the relay, its transaction's sender is not a named logger.
    let relay = rt.block_on(async {
        let evm = Evm::connect(&anvil.url, Network::BaseSepolia)
            .await
            .unwrap();
        let addr: Address = contract.parse().unwrap();
        let deployed = evm
            .send_and_wait(
                &logger,
                None,
                relay_bytecode(addr),
                &Fees::default(),
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        let relay = deployed.contract_address.unwrap();
        let through = evm
            .send_and_wait(
                &hostile,
                Some(relay),
                Bytes::from(
                    DAALog::logActionCall {
                        actionHash: B256::repeat_byte(0x77),
                        metadata: "{}".into(),
                    }
                    .abi_encode(),
                ),
                &Fees {
                    gas_cap: 1_000_000,
                    ..Fees::default()
                },
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        assert!(through.success);
        relay
    });
    let (code, report) =
        reconcile_lineage(&anvil, &contract, "valid.jsonl", &[logger.address(), relay]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ignored_action_events"], 2, "{report:#}");

    // No logger named: refused (exit 2), nothing counted from anyone.
    let path = repo().join("fixtures/interop/zt-infra-full/valid.jsonl");
    let out = zt(
        None,
        &[
            "reconcile",
            "--lineage",
            path.to_str().unwrap(),
            "--rpc",
            &anvil.url,
            "--contract",
            &contract,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("--logger"), "{}", both(&out));
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
