#!/usr/bin/env bash
# A tour of `zt-audit verify` on the interop vectors: a sound chain, then each kind of break.
# (`zt-audit demo`, the five-minute quickstart with a control plane, comes with issue #4.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p zt-audit
Z=target/release/zt-audit
V=fixtures/interop/zt-infra-full
run() { printf '\n$ %s\n' "$*"; "$@" || printf '(exit %s)\n' "$?"; }
run $Z verify --keyring $V/keyring.json $V/valid.jsonl
run $Z verify --keyring $V/keyring.json $V/edited-decision.jsonl
run $Z verify --keyring $V/keyring.json $V/deleted-middle.jsonl
run $Z verify --keyring $V/keyring.json $V/rewritten-tail.jsonl
run $Z verify --keyring $V/keyring.json --expect-head 2bfe9e1c8916259aacf158ef085941f00d6de71c573246d62456876dae784d11 $V/truncated.jsonl
run $Z verify --keyring fixtures/v1/keyring.json fixtures/v1/valid.jsonl fixtures/v1/fork.jsonl
