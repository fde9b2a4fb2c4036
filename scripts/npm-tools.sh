#!/usr/bin/env bash
# Installs the npm tools pinned in package.json / package-lock.json into node_modules/: anvil
# (@foundry-rs/anvil, a local EVM node, and its native binary for this platform) and solc
# (solc-js). Idempotent: a second run with the same pins is a no-op.
#
# `npm ci`: it installs exactly what the lock names, checks every tarball against the lock's
# integrity hash, and fails when package.json and the lock disagree (a real version change). The
# lock lists every platform's optional anvil binary, as the registry publishes them, so what the
# registry happens to list on a given day does not matter: npm ci never re-resolves, and it
# fetches only this platform's binary. --ignore-scripts: the anvil package's postinstall would
# download a binary itself when the platform package is missing, outside the lock's pins.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'npm-tools: error: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "no npm on PATH (install Node.js 20+ with npm)"
stamp=node_modules/.zt-npm-tools.stamp
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)

installed() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && [ -x node_modules/.bin/anvil ] && [ -d node_modules/solc ]
}
if installed; then
    exit 0
fi

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2 \
    || die "npm ci failed: package.json and package-lock.json disagree, or the registry is unreachable"

# What was pinned is what runs: the launcher's version and the native binary it starts.
pinned=$(node -p 'require("./package.json").devDependencies["@foundry-rs/anvil"]')
got=$(node_modules/.bin/anvil --version 2>/dev/null | head -n1) \
    || die "node_modules/.bin/anvil does not run (no native anvil for $(uname -sm)?)"
case "$got" in
    *"$pinned"*) ;;
    *) die "anvil reports '$got'; package.json pins $pinned" ;;
esac
echo "$want" > "$stamp"
