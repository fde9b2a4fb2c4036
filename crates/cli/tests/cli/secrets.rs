//! Secrets never printed: RPC URLs carry credentials (`https://user:pass@host`, `?apikey=`,
//! Infura and Alchemy keys in the path); whatever goes wrong, stderr and stdout show the URL
//! redacted.

use crate::fixture_key as key;
use crate::proof::{forged_bundle, keyring, record, write};

/// The secrets the URLs below carry, none of which may be printed.
const SECRETS: [&str; 4] = [
    "s3cret-pass",
    "0123456789abcdef0123456789abcdef",
    "k3y-s3cret-apikey",
    "AlchemyKey_9f8e7d6c5b4a39281706",
];

/// Nothing listens on port 9 of loopback: every command fails at its first RPC call.
fn urls() -> [String; 4] {
    [
        "http://alice:s3cret-pass@127.0.0.1:9/".into(),
        "http://127.0.0.1:9/v3/0123456789abcdef0123456789abcdef".into(),
        "http://127.0.0.1:9/rpc?apikey=k3y-s3cret-apikey&chain=base".into(),
        "http://127.0.0.1:9/v2/AlchemyKey_9f8e7d6c5b4a39281706".into(),
    ]
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = crate::bin().command(args);
    cmd.envs(env.iter().copied());
    zt_testkit::bin::output(&mut cmd)
}

fn assert_no_secret(what: &str, out: &std::process::Output) {
    let text = zt_testkit::both(out);
    for s in SECRETS {
        assert!(!text.contains(s), "{what}: printed a secret:\n{text}");
    }
}

const TEST_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

#[test]
fn rpc_credentials_never_reach_the_terminal_from_anchor_reconcile_or_verify_proof() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("s.db");
    drop(zt_store::Store::open(&db).unwrap());
    let db = db.to_str().unwrap();
    let signed = record(Some((&key("test-only-a"), "test-only-a")));
    let bundle = write(tmp.path(), "bundle.json", &forged_bundle(&signed));
    let ring = keyring();
    let contract = "0x000000000000000000000000000000000000dead";
    let who = "0x0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    // (what, the arguments before `--rpc URL --network local`, the arguments after)
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("anchor deploy", &["anchor", "deploy"], &[]),
        (
            "anchor run",
            &["anchor", "run", "--db", db],
            &["--contract", contract, "--log", "l", "--once"],
        ),
        (
            "reconcile",
            &["reconcile", "--db", db],
            &["--contract", contract, "--owner", who, "--log", "l"],
        ),
        (
            "verify-proof",
            &["verify-proof", &bundle, "--keyring", &ring],
            &["--contract", contract, "--writer", who],
        ),
    ];
    for url in urls() {
        for (what, before, after) in cases {
            let local = ["--network", "local"];
            let args = [before, &["--rpc", &url], &local, after].concat();
            let out = run_with_env(&args, &[("ZT_ANCHOR_KEY", TEST_KEY)]);
            assert_eq!(out.status.code(), Some(2), "{what} {url}");
            assert_no_secret(&format!("{what} {url}"), &out);
            // The same URL from the environment.
            if what != "verify-proof" {
                let out = run_with_env(
                    &[before, &local, after].concat(),
                    &[("ZT_ANCHOR_KEY", TEST_KEY), ("ZT_ANCHOR_RPC", &url)],
                );
                assert_eq!(out.status.code(), Some(2), "{what} (env) {url}");
                assert_no_secret(&format!("{what} (env) {url}"), &out);
            }
        }
    }
}

/// `--help` shows the environment's value of an `env` flag unless told not to.
#[test]
fn help_does_not_show_the_rpc_url_from_the_environment() {
    for sub in [
        &["anchor", "run"][..],
        &["reconcile"],
        &["anchor", "deploy"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = run_with_env(&args, &[("ZT_ANCHOR_RPC", &urls()[0])]);
        assert_eq!(out.status.code(), Some(0));
        assert_no_secret(&format!("{sub:?} --help"), &out);
    }
    // Tokens and capabilities given through the environment, likewise.
    for (sub, var) in [
        (&["broker", "run"][..], "ZT_CAPABILITY"),
        (&["broker", "run"], "ZT_AGENT_TOKEN"),
        (&["conformance"], "ZT_CP_ADMIN_TOKEN"),
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = run_with_env(&args, &[(var, SECRETS[2])]);
        assert_eq!(out.status.code(), Some(0));
        assert_no_secret(&format!("{sub:?} --help with {var}"), &out);
    }
}
