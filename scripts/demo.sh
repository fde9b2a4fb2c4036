#!/usr/bin/env bash
# The five-minute quickstart: builds zt-audit, then runs `zt-audit demo` (a control plane and
# an ingest on loopback; an agent denied, a narrow policy, an allowed action, its signed
# envelope, a verified store). Arguments go to the demo, e.g. `scripts/demo.sh --dir /tmp/zt`.
# Needs only the Rust toolchain; nothing is installed globally and nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p zt-audit
exec target/release/zt-audit demo "$@"
