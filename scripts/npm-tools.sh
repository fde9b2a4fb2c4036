#!/usr/bin/env bash
# Installs the npm tools pinned in package.json / package-lock.json into node_modules/: anvil
# (@foundry-rs/anvil, a local EVM node) and solc (solc-js). Idempotent.
#
# Not `npm ci`: the registry here serves only the linux-x64 anvil binary, so the lock file
# cannot list the other platforms' optional binaries, and `npm ci` refuses a lock that does not.
# `npm install` with the committed lock installs exactly the locked versions; the lock must come
# out unchanged, which is checked.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x node_modules/.bin/anvil ] && [ -d node_modules/solc ]; then
    exit 0
fi
npm install --no-audit --no-fund --loglevel=error
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
    git diff --quiet -- package-lock.json \
        || { echo "npm-tools: npm install changed package-lock.json; the pins drifted" >&2; exit 1; }
fi
