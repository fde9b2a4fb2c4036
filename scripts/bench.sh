#!/usr/bin/env bash
# The benchmarks, as docs/benchmarks.md quotes them: builds `zt-audit` and `zt-bench` in release
# mode (the figures come from release builds; the first build takes about ten minutes), then
# runs `zt-bench NAME ARGS`, which measures the `zt-audit` beside it.
#   scripts/bench.sh verify --records 100000
#   scripts/bench.sh control-plane --decisions 1000 --clients 16
#   scripts/bench.sh NAME --help        # a benchmark's flags
# Some benchmarks need the pinned tools: node_modules (scripts/npm-tools.sh) for the Node
# reference verifier and anvil, and a PostgreSQL URL for `ingest --db` (scripts/postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p zt-audit -p zt-bench
exec target/release/zt-bench "$@"
