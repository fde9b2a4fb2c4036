//! The data benchmarks generate: signed v1 chains, and the action names they spread over.

use zt_core::crypto::SigningKey;
use zt_core::envelope::V1Draft;
use zt_core::Hash32;

/// Action names generated records cycle through (one of them denied in most policies).
pub const ACTIONS: [&str; 5] = [
    "hello-world.say_hello",
    "fs.read",
    "github.repos.create_issue",
    "aws.ec2.terminate_instances",
    "shell.exec",
];

/// What one generated record says.
#[derive(Debug)]
pub struct Shape {
    /// Who asked.
    pub actor: String,
    /// For what.
    pub action: String,
    /// On what.
    pub resource: String,
    /// `allow` or `deny`.
    pub decision: &'static str,
}

/// `n` records of chain `chain_id` from seq `start` after `prev`, each as `shape(seq)` says,
/// sealed with `key` as `bench-key`: their JSON and hashes, in chain order.
pub fn signed_chain(
    chain_id: &str,
    start: u64,
    n: usize,
    prev: Hash32,
    key: &SigningKey,
    shape: impl Fn(u64) -> Shape,
) -> Vec<(String, Hash32)> {
    let mut prev = prev;
    (start..start + n as u64)
        .map(|seq| {
            let Shape {
                actor,
                action,
                resource,
                decision,
            } = shape(seq);
            let s = V1Draft {
                chain_id: chain_id.to_owned(),
                seq,
                actor,
                action,
                resource,
                decision: decision.into(),
                reason: "bench".into(),
                timestamp: "2026-10-01T00:00:00.000Z".into(),
                previous_hash: prev,
                context: None,
            }
            .seal(Some((key, "bench-key")));
            prev = s.current_hash;
            (s.json, s.current_hash)
        })
        .collect()
}

/// Request `i` of paced client `c`: every other one asks for an action the benchmark's policy
/// allows (true), the rest for one it denies.
pub fn request(c: usize, i: usize) -> (bool, zt_client::ActionRequest) {
    let allowed = (c + i).is_multiple_of(2);
    let action = if allowed {
        "bench.allowed"
    } else {
        "bench.denied"
    };
    let req = zt_client::ActionRequest::new("agent-bench", action).resource(format!("r/{c}/{i}"));
    (allowed, req)
}
