#!/usr/bin/env bash
# Runs the zt-guard (clients/python) test suite against the real control plane binary.
#
#   clients/python/run-tests.sh                      -> ZT_AUDIT_BIN defaults to target/debug/zt-audit
#   ZT_AUDIT_BIN=/path/to/zt-audit clients/python/run-tests.sh
#   ZT_GUARD_VENV=/some/dir ...                      -> venv there (default target/py-guard-venv;
#                                                       relative paths are taken from the repo root)
#   ZT_PYTHON=/usr/bin/python3 ...                   -> base interpreter (default python3; >= 3.10)
#
# The venv is scripts/python-venv.sh's (exact pins from requirements-test.txt, then the package
# itself, rebuilt when the pins, the interpreter or the package's sources change). Progress goes
# to stderr. The exit status is the test suite's.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd -P)
PKG="$ROOT/clients/python"

log() { printf 'zt-guard tests: %s\n' "$*" >&2; }
die() { printf 'zt-guard tests: error: %s\n' "$*" >&2; exit 1; }

PYTHON=$(ZT_PY_VENV="${ZT_GUARD_VENV:-target/py-guard-venv}" \
    ZT_PY_REQUIREMENTS=clients/python/requirements-test.txt \
    ZT_PY_PACKAGE=clients/python \
    ZT_PY_CHECK='import zt_guard, mcp' \
    bash scripts/python-venv.sh | tail -n1)
"$PYTHON" -m pip check >&2 || die "pip check found inconsistent dependencies"

BIN=${ZT_AUDIT_BIN:-target/debug/zt-audit}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
[ -x "$BIN" ] || die "no control plane binary at $BIN (build it, or set ZT_AUDIT_BIN)"
export ZT_AUDIT_BIN="$BIN"
log "running the suite against $ZT_AUDIT_BIN"
# The suite must import the installed package, not the source tree.
cd "$PKG/tests"
set +e
"$PYTHON" -m unittest discover -s "$PKG/tests" -t "$PKG/tests" -v
status=$?
set -e
exit "$status"
