#!/usr/bin/env bash
# The five-minute quickstart: builds zt-audit, installs the pinned local chain node (anvil, from
# the npm registry, into node_modules/ by scripts/npm-tools.sh) when it is missing, then runs `zt-audit demo`: a control
# plane and an ingest on loopback; an agent denied, a narrow policy, an allowed action, its
# signed envelope, a verified store; the store's chain head anchored on the local node,
# reconciled, and the allowed decision proven. Arguments go to the demo (`--dir /tmp/zt`).
# Needs the Rust toolchain, and Node.js/npm for the anchoring steps (skipped, and said so,
# without them). Nothing is installed globally and nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/anvil ]; then
    if command -v npm >/dev/null 2>&1; then
        bash scripts/npm-tools.sh >&2 \
            || echo "demo.sh: installing anvil failed; the demo skips its anchoring steps" >&2
    else
        echo "demo.sh: no npm: the demo skips its anchoring steps" >&2
    fi
fi
# ZT_BUILD_PROFILE=dev reuses a debug build (the test suite does, to skip a release build).
case "${ZT_BUILD_PROFILE:-release}" in
    dev) cargo build --locked -q -p zt-audit; bin=target/debug/zt-audit ;;
    *) cargo build --release --locked -q -p zt-audit; bin=target/release/zt-audit ;;
esac
exec "$bin" demo --anvil node_modules/.bin/anvil "$@"
