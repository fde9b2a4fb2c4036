#!/usr/bin/env bash
# The five-minute quickstart: builds zt-audit, installs the pinned local chain node (anvil, from
# the npm registry, into node_modules/ by scripts/npm-tools.sh), then runs `zt-audit demo`: a
# control plane and an ingest on loopback; an agent denied, a narrow policy, an allowed action,
# its signed envelope, a verified store; the store's chain head anchored on the local node,
# reconciled, and the allowed decision proven. Arguments go to the demo (`--dir /tmp/zt`).
# Needs the Rust toolchain, and Node.js/npm for the pinned anvil (without them the demo looks
# for an anvil of your own, and skips its anchoring steps, saying so, when there is none).
# Nothing is installed globally and nothing leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null 2>&1; then
    bash scripts/npm-tools.sh \
        || echo "demo.sh: installing the pinned anvil failed (see above); the demo looks for another" >&2
else
    echo "demo.sh: no npm, so no pinned anvil; the demo looks for another (--anvil, ZT_ANVIL, PATH)" >&2
fi
# The pinned node, unless the caller named one (a --anvil flag still wins over this).
if [ -z "${ZT_ANVIL:-}" ] && [ -x node_modules/.bin/anvil ]; then
    export ZT_ANVIL="$PWD/node_modules/.bin/anvil"
fi
# ZT_AUDIT_BIN=PATH runs a binary already built instead of building one (the test suite passes
# the one its tests built: a second build of another feature set would double the disk it needs).
# ZT_BUILD_PROFILE=dev builds a debug binary instead of a release one.
if [ -n "${ZT_AUDIT_BIN:-}" ]; then
    bin=$ZT_AUDIT_BIN
else
    case "${ZT_BUILD_PROFILE:-release}" in
        dev) cargo build --locked -q -p zt-audit; bin=target/debug/zt-audit ;;
        *) cargo build --release --locked -q -p zt-audit; bin=target/release/zt-audit ;;
    esac
fi
exec "$bin" demo "$@"
