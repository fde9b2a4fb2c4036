//! A guarded call from agent code: ask the control plane, run the action only on a verified
//! allow. Against `zt-audit control-plane --dir cp --open` (or the demo's control plane):
//!
//! ```text
//! cargo run -p zt-client --example guarded_call -- \
//!     http://127.0.0.1:8080 cp/keyring.json agent-hello hello-world.say_hello demo/greeting
//! ```
//!
//! Env `ZT_AGENT_TOKEN`: the agent's bearer token (from `POST /agents`) when the control plane
//! is not in open mode. Exit status: 0 the action ran, 1 it was refused, 2 usage error.

use std::process::ExitCode;

use zt_client::{ActionRequest, ClientConfig, GuardedClient, PinnedKey};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, keyring, actor, action, rest @ ..] = args.as_slice() else {
        eprintln!("usage: guarded_call BASE_URL KEYRING.json ACTOR ACTION [RESOURCE]");
        return ExitCode::from(2);
    };
    // The control plane's key is pinned from a file obtained out of band, never fetched
    // from the server being checked.
    let pinned = match std::fs::read(keyring)
        .map_err(|e| e.to_string())
        .and_then(|b| PinnedKey::from_keyring_json(&b).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot pin the control plane's key from {keyring}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = ClientConfig::new(base.clone(), pinned);
    config.token = std::env::var("ZT_AGENT_TOKEN").ok().map(Into::into);
    let client = match GuardedClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut request = ActionRequest::new(actor.clone(), action.clone());
    if let Some(resource) = rest.first() {
        request = request.resource(resource.clone());
    }
    let outcome = client
        .guarded_call(&request, |allowed| {
            let why = allowed.decision().reason.clone();
            async move {
                // The action itself: here it only says hello.
                println!("hello, world ({why})");
            }
        })
        .await;
    match outcome {
        Ok(done) => {
            println!(
                "ran under decision {} (chain {}, seq {})",
                done.decision.current_hash, done.decision.chain_id, done.decision.seq
            );
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            println!("not run ({}): {refusal}", refusal.kind());
            ExitCode::from(1)
        }
    }
}
