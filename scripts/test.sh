#!/usr/bin/env bash
# The whole test suite: what CI runs (.ci/run) and what the README's test command runs.
# Needs the Rust toolchain (with rustfmt and clippy), Go (test peers built on reference libraries,
# pinned in tests/go/*/go.sum, built into target/go-peers/), Node.js with npm (the reference verifier of
# the benchmark; anvil and solc from the npm registry, pinned in package-lock.json, installed
# into node_modules/ by scripts/npm-tools.sh) and Python 3.10+ (a venv of the OpenTelemetry SDK from PyPI, built under target/;
# the lineage-style client test uses the standard library only).
# Installs into the clone only (node_modules/, target/), except tmux for the browser's test and
# PostgreSQL for the multi-node store's: Debian packages, with apt-get when run as root and they
# are missing (the PostgreSQL cluster itself lives in a temporary folder and is stopped at exit).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Every process the suite starts carries this marker in its environment, so the last step can
# tell whether anything outlived it (a chain node orphaned by its launcher, say).
RUN="suite-$$-$(date +%s%N)"
export ZT_TEST_MARKER="$RUN"

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "house rules (tests/tidy: layers, one home for TLS configs and SQL types, canonical envelopes, no import loops, a true ARCHITECTURE.md, typed errors)"
cargo test -p zt-tidy --locked

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

step "Debian's python3 for the broker's sandbox tests (a program the sandbox runs from /usr/bin; Debian package, when missing)"
if [ ! -x /usr/bin/python3 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal >/dev/null
    else
        echo "/usr/bin/python3 is missing: install it (apt-get install python3-minimal) and run again" >&2
        exit 1
    fi
fi

step "npm tools (pinned in package-lock.json): anvil for the chain tests, solc for the contract"
bash scripts/npm-tools.sh
node contracts/build.mjs --check

step "PostgreSQL for the multi-node store tests (Debian's package when missing; a throwaway cluster on 127.0.0.1)"
pg_dir=$(mktemp -d)
clone=$(mktemp -d)
trap 'bash scripts/postgres.sh stop "$pg_dir" || true; rm -rf "$clone" "$pg_dir"' EXIT
ZT_TEST_POSTGRES=$(bash scripts/postgres.sh start "$pg_dir")
export ZT_TEST_POSTGRES ZT_TEST_POSTGRES_DIR="$pg_dir" ZT_REQUIRE_POSTGRES=1
echo "$ZT_TEST_POSTGRES"

step "npm tools on a clean clone of HEAD (the next registry drift fails here, not on a new machine)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git clone -q --no-local "$PWD" "$clone/zt"
else
    # Not a git checkout (an unpacked archive): the files the step reads, into an empty folder.
    mkdir -p "$clone/zt/scripts"
    cp package.json package-lock.json "$clone/zt/"
    cp scripts/npm-tools.sh "$clone/zt/scripts/"
fi
bash "$clone/zt/scripts/npm-tools.sh"
"$clone/zt/node_modules/.bin/anvil" --version | head -n1
rm -rf "$clone"

step "Python OpenTelemetry SDK venv (PyPI, pinned) for the ingest tests"
bash scripts/python-venv.sh >/dev/null

step "Go peers (pinned modules from the Go module proxy, built once into target/go-peers): go-spiffe's mTLS client, x/mod's sumdb (signed notes, RFC 6962 proofs)"
bash scripts/go-peers.sh >/dev/null

step "tests (AWS-LC backend)"
cargo test --workspace --locked

step "tests (pure-Rust p256 backend)"
cargo test -p zt-core -p zt-verifier --no-default-features --locked

Z=target/debug/zt-audit
B=target/debug/zt-bench   # built by `cargo test` beside zt-audit (its own tests run it); it runs $Z

step "Python guarded client (clients/python: cryptography, the official MCP SDK; PyPI, pinned) and the client conformance suite"
ZT_AUDIT_BIN="$Z" bash clients/python/run-tests.sh
$Z conformance client -- target/py-guard-venv/bin/python clients/python/tests/conformance_client.py

step "benchmark smoke runs (small, debug build: they check behaviour; figures come from release runs, docs/benchmarks.md)"
$B verify --records 2000 --runs 1
$B ingest --records 2000 --connections 4
# The PostgreSQL comparison (1, 2, 4 receivers), small: checks the stores hold what was sent.
$B ingest --records 2000 --connections 4 --db "$ZT_TEST_POSTGRES" --runs 1
# The issue's bar, checked every run: 1,000 decisions from 16 concurrent guarded clients leave
# unforked chains (decisions, and the control plane's own) that verify (the bench fails otherwise).
$B control-plane --decisions 1000 --clients 16 --runs 1
# Under attack, small: a tokenless flood (every flood answer accounted for on the chain) and
# 64 senders of 8.4-million-record gzip bombs beside an exporter whose envelopes must all land.
$B control-plane --flood --decisions 300 --clients 4 --runs 1
# 1,000 half-open connections held from other addresses beside paced agents and an ingest.
$B control-plane --slow-clients 1000 --decisions 300 --clients 4 --runs 1 --envelopes 2000
$B ingest --hostile --records 2000 --no-reference
# Anchoring on anvil, small: gas per anchor and per record, a reconcile that must confirm every epoch.
$B anchor --chains 1,100 --epochs 50 --reconcile-records 5000 --runs 1
$B tui --records 20000 --runs 1

step "the quickstart, as the README runs it (on the debug binary the tests built)"
ZT_AUDIT_BIN="$Z" bash scripts/demo.sh --dir "$(mktemp -d)" >/dev/null

step "PostgreSQL stopped"
bash scripts/postgres.sh stop "$pg_dir"

step "no process outlives the suite"
unset ZT_TEST_MARKER
left=""
for d in /proc/[0-9]*; do
    # Kernel threads and processes gone meanwhile have no readable environment: skip them.
    if { tr '\0' '\n' < "$d/environ"; } 2>/dev/null | grep -qxF "ZT_TEST_MARKER=$RUN"; then
        left+="  ${d#/proc/}: $({ tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null)"$'\n'
    fi
done
if [ -n "$left" ]; then
    printf 'still running after the suite (now killed):\n%s' "$left" >&2
    for p in $(printf '%s' "$left" | sed -n 's/^  \([0-9]*\):.*/\1/p'); do kill "$p" 2>/dev/null || true; done
    exit 1
fi

step "all passed"
