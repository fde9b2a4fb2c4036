//! A lineage JSONL file against a (reconstructed) lineage DAALog deployment on anvil: records
//! logged one by one with `logAction`, the rest as one `logBatch` root.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Bytes, B256, U256};
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

fn reconcile_lineage(anvil: &Anvil, contract: &str, file: &str) -> (i32, serde_json::Value) {
    let path = repo().join("fixtures/interop/zt-infra-full").join(file);
    let out = zt(
        None,
        &[
            "reconcile",
            "--lineage",
            path.to_str().unwrap(),
            "--rpc",
            &anvil.url,
            "--contract",
            contract,
            "--format",
            "json",
        ],
    );
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

    let (code, report) = reconcile_lineage(&anvil, &contract, "valid.jsonl");
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
    let (code, report) = reconcile_lineage(&anvil, &contract, "truncated.jsonl");
    assert_eq!(code, 1, "{report:#}");
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["batch_unmatched"]);

    // A rewritten tail: it verifies as a chain, but it is not what was logged.
    let (code, report) = reconcile_lineage(&anvil, &contract, "rewritten-tail.jsonl");
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

/// Anyone can call `logAction`: a hostile sender logs an action hash the file never had, so
/// that the file looks truncated (`missing_record`).
#[test]
fn a_hostile_senders_log_action_is_not_a_finding() {
    let anvil = Anvil::start();
    let logger = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let hostile = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let valid = hashes("valid.jsonl");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let contract = rt.block_on(async {
        let evm = Evm::connect(&anvil.url, Network::BaseSepolia)
            .await
            .unwrap();
        let (addr, _) = evm
            .deploy(&logger, DAALOG_ARTIFACT, &Fees::default())
            .await
            .unwrap();
        let send = |who: PrivateKeySigner, input: Vec<u8>| {
            let evm = evm.clone();
            async move {
                let r = evm
                    .send_and_wait(
                        &who,
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
        let root = lineage_batch_root(&valid).unwrap();
        send(
            logger.clone(),
            DAALog::logBatchCall {
                batchRoot: B256::from(root.0),
                count: U256::from(valid.len()),
            }
            .abi_encode(),
        )
        .await;
        send(
            hostile.clone(),
            DAALog::logActionCall {
                actionHash: B256::repeat_byte(0x66),
                metadata: "{}".into(),
            }
            .abi_encode(),
        )
        .await;
        format!("{addr:#x}")
    });
    let (code, report) = reconcile_lineage(&anvil, &contract, "valid.jsonl");
    assert_eq!(code, 0, "{report:#}");
}
