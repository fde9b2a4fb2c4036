#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run) and what the README's test command runs.
# Needs the Rust toolchain (with rustfmt and clippy) and, for the reference-verifier smoke
# test, Node.js. Installs nothing globally.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (AWS-LC backend)"
cargo test --workspace --locked

step "tests (pure-Rust p256 backend)"
cargo test -p zt-core -p zt-verifier --no-default-features --locked

step "benchmark smoke run (small; figures come from a full run, see README)"
cargo run --release --locked -q -p zt-audit -- bench verify --records 2000 --runs 1

step "all passed"
