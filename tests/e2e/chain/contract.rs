//! ZtAnchor's rules on a real node, through zt-anchor's own transaction path.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256};
use alloy::signers::local::PrivateKeySigner;
use zt_anchor::evm::{Evm, Fees, Network, ZT_ANCHOR_ARTIFACT};
use zt_anchor::tree::LogRef;
use zt_anchor::AnchorError;

use crate::Anvil;

fn anchor_call(log: &LogRef, epoch: u64, root: B256) -> Bytes {
    Evm::anchor_calldata(log, epoch, root, 3)
}

async fn send(
    evm: &Evm,
    who: &PrivateKeySigner,
    to: Address,
    input: Bytes,
) -> Result<zt_anchor::evm::Receipt, AnchorError> {
    evm.send_and_wait(
        who,
        Some(to),
        input,
        &Fees::default(),
        Duration::from_secs(20),
    )
    .await
}

fn revert_name(r: Result<zt_anchor::evm::Receipt, AnchorError>) -> String {
    match r {
        Err(AnchorError::Revert(reason)) => reason,
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn the_contracts_rules_hold_on_a_real_node() {
    let anvil = Anvil::start();
    let owner = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let other = PrivateKeySigner::from_str(&anvil.funded_key()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let evm = Evm::connect(&anvil.url, Network::BaseSepolia)
            .await
            .unwrap();
        assert_eq!(evm.chain_id(), 84532);
        let (c, deployed) = evm
            .deploy(&owner, ZT_ANCHOR_ARTIFACT, &Fees::default())
            .await
            .unwrap();
        assert!(deployed.success);
        let log = LogRef::new(owner.address(), "rules");
        // The id the contract computes is the one zt-anchor computes.
        assert_eq!(evm.log_id_of(c, &log).await.unwrap(), log.id());
        let (r1, r2) = (B256::repeat_byte(1), B256::repeat_byte(2));

        let first = send(&evm, &owner, c, anchor_call(&log, 1, r1))
            .await
            .unwrap();
        assert!(first.success);
        assert_eq!(first.anchored.len(), 1);
        let ev = &first.anchored[0];
        assert_eq!(
            (ev.log_id, ev.owner, ev.epoch, ev.root),
            (log.id(), owner.address(), 1, r1)
        );
        let second = send(&evm, &owner, c, anchor_call(&log, 2, r2))
            .await
            .unwrap();
        assert!(
            second.gas_used < 60_000,
            "an anchor costs {} gas",
            second.gas_used
        );
        eprintln!(
            "gas: first anchor of a log {}, later anchors {}",
            first.gas_used, second.gas_used
        );

        // The same (epoch, root) again: a harmless no-op, no event.
        let again = send(&evm, &owner, c, anchor_call(&log, 2, r2))
            .await
            .unwrap();
        assert!(again.success && again.anchored.is_empty());
        // Another root for a recorded epoch, an old epoch, a zero root or epoch: reverts.
        assert!(
            revert_name(send(&evm, &owner, c, anchor_call(&log, 2, r1)).await)
                .contains("RootConflict")
        );
        assert!(
            revert_name(send(&evm, &owner, c, anchor_call(&log, 1, r2)).await)
                .contains("RootConflict")
        );
        let r3 = B256::repeat_byte(3);
        let old = anchor_call(&log, 2, r3);
        assert!(revert_name(send(&evm, &owner, c, old).await).contains("RootConflict"));
        let skipped = send(&evm, &owner, c, anchor_call(&log, 5, r3))
            .await
            .unwrap();
        assert!(
            skipped.success,
            "epochs may skip numbers, only never go back"
        );
        assert!(
            revert_name(send(&evm, &owner, c, anchor_call(&log, 4, r3)).await)
                .contains("EpochNotRising")
        );
        assert!(
            revert_name(send(&evm, &owner, c, anchor_call(&log, 6, B256::ZERO)).await)
                .contains("ZeroRoot")
        );
        assert!(
            revert_name(send(&evm, &owner, c, anchor_call(&log, 0, r1)).await)
                .contains("ZeroEpoch")
        );

        // Someone else may not write the owner's log ...
        assert!(
            revert_name(send(&evm, &other, c, anchor_call(&log, 6, r1)).await)
                .contains("NotWriter")
        );
        // ... nor authorize themselves: setWriter only ever speaks for the sender's own logs.
        let self_grant = Evm::set_writer_calldata("rules", other.address(), true);
        assert!(send(&evm, &other, c, self_grant).await.unwrap().success);
        assert!(!evm.is_writer(c, log.id(), other.address()).await.unwrap());
        assert!(
            revert_name(send(&evm, &other, c, anchor_call(&log, 6, r1)).await)
                .contains("NotWriter")
        );
        // The same name is another log when it is someone else's: it does not touch the owner's.
        let theirs = LogRef::new(other.address(), "rules");
        assert_ne!(theirs.id(), log.id());
        let r9 = B256::repeat_byte(9);
        assert!(
            send(&evm, &other, c, anchor_call(&theirs, 6, r9))
                .await
                .unwrap()
                .success
        );
        assert_eq!(evm.root_of(c, log.id(), 6).await.unwrap(), B256::ZERO);

        // The owner authorizes a writer; the writer anchors the owner's log; the owner revokes.
        let grant = Evm::set_writer_calldata("rules", other.address(), true);
        assert!(send(&evm, &owner, c, grant).await.unwrap().success);
        assert!(evm.is_writer(c, log.id(), other.address()).await.unwrap());
        let by_writer = send(&evm, &other, c, anchor_call(&log, 6, r1))
            .await
            .unwrap();
        assert!(by_writer.success);
        assert_eq!(by_writer.from, other.address());
        assert_eq!(by_writer.anchored[0].owner, owner.address());
        let revoke = Evm::set_writer_calldata("rules", other.address(), false);
        assert!(send(&evm, &owner, c, revoke).await.unwrap().success);
        assert!(
            revert_name(send(&evm, &other, c, anchor_call(&log, 7, r1)).await)
                .contains("NotWriter")
        );

        assert_eq!(evm.root_of(c, log.id(), 2).await.unwrap(), r2);
        assert_eq!(evm.root_of(c, log.id(), 3).await.unwrap(), B256::ZERO);
        assert_eq!(evm.root_of(c, theirs.id(), 6).await.unwrap(), r9);
    });
}

#[test]
fn the_key_comes_from_a_keystore_or_the_environment_and_is_never_echoed() {
    let anvil = Anvil::start();
    let hex_key = anvil.funded_key();
    let tmp = tempfile::tempdir().unwrap();
    let raw = alloy::hex::decode(hex_key.trim_start_matches("0x")).unwrap();
    PrivateKeySigner::encrypt_keystore(
        tmp.path(),
        &mut rand_core::OsRng,
        &raw,
        "test-only-password",
        Some("anchor-key.json"),
    )
    .unwrap();
    let ks = tmp.path().join("anchor-key.json");
    let run = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_zt-audit"));
        cmd.args(["anchor", "deploy", "--rpc", &anvil.url])
            .args(extra)
            .env_remove("ZT_ANCHOR_KEY")
            .env_remove("ZT_ANCHOR_KEYSTORE_PASSWORD");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let ks_arg = ["--keystore", ks.to_str().unwrap()];
    let out = run(
        &[("ZT_ANCHOR_KEYSTORE_PASSWORD", "test-only-password")],
        &ks_arg,
    );
    assert_eq!(out.status.code(), Some(0), "{}", crate::both(&out));
    assert!(crate::stdout(&out).starts_with("0x"));

    let out = run(&[("ZT_ANCHOR_KEYSTORE_PASSWORD", "wrong")], &ks_arg);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::both(&out).contains("cannot open keystore"),
        "{}",
        crate::both(&out)
    );
    let out = run(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::both(&out).contains("ZT_ANCHOR_KEY"),
        "{}",
        crate::both(&out)
    );
    // A malformed key is refused without being repeated back.
    let bad = format!("{}zz", &hex_key[..40]);
    let out = run(&[("ZT_ANCHOR_KEY", &bad)], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !crate::both(&out).contains(&hex_key[2..40]),
        "the key leaked: {}",
        crate::both(&out)
    );
}
