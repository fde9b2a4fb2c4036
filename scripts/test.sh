#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run) and what the README's test command runs.
# Needs the Rust toolchain (with rustfmt and clippy), Node.js with npm (the reference verifier of
# the benchmark; anvil and solc from the npm registry, pinned in package-lock.json, installed
# into node_modules/ by scripts/npm-tools.sh) and Python 3.10+ (a venv of the OpenTelemetry SDK from PyPI, built under target/;
# the lineage-style client test uses the standard library only).
# Installs nothing globally.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tmux for the terminal browser's test (Debian package, when missing)"
if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
    else
        echo "tmux is missing: install it (apt-get install tmux) and run again" >&2
        exit 1
    fi
fi

step "npm tools (pinned in package-lock.json): anvil for the chain tests, solc for the contract"
bash scripts/npm-tools.sh
node contracts/build.mjs --check

step "Python OpenTelemetry SDK venv (PyPI, pinned) for the ingest tests"
bash scripts/python-venv.sh >/dev/null

step "tests (AWS-LC backend)"
cargo test --workspace --locked

step "tests (pure-Rust p256 backend)"
cargo test -p zt-core -p zt-verifier --no-default-features --locked

step "benchmark smoke runs (small, debug build: they check behaviour; figures come from release runs, see README)"
Z=target/debug/zt-audit
$Z bench verify --records 2000 --runs 1
$Z bench ingest --records 2000 --connections 4
# The issue's bar, checked every run: 1,000 decisions from 16 concurrent guarded clients leave
# one unforked chain that verifies (the bench fails otherwise).
$Z bench control-plane --decisions 1000 --clients 16 --runs 1
# Anchoring on anvil, small: gas per anchor and per record, a reconcile that must confirm every epoch.
$Z bench anchor --chains 1,100 --epochs 50 --reconcile-records 5000 --runs 1
$Z bench tui --records 20000 --runs 1

step "the quickstart, as the README runs it (on the debug build already made)"
ZT_BUILD_PROFILE=dev bash scripts/demo.sh --dir "$(mktemp -d)" >/dev/null

step "all passed"
