#!/usr/bin/env bash
# Runs the zt-guard (clients/python) test suite against the real control plane binary.
#
#   clients/python/run-tests.sh                      -> ZT_AUDIT_BIN defaults to target/debug/zt-audit
#   ZT_AUDIT_BIN=/path/to/zt-audit clients/python/run-tests.sh
#   ZT_GUARD_VENV=/some/dir ...                      -> venv there (default target/py-guard-venv;
#                                                       relative paths are taken from the repo root)
#   ZT_PYTHON=/usr/bin/python3 ...                   -> base interpreter (default python3; >= 3.10)
#
# The venv is created idempotently: a stamp file records what it was built from (the pins, the
# package's pyproject and sources, the base interpreter); a second run with the same inputs
# reuses it. Progress goes to stderr. The exit status is the test suite's.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd -P)
PKG="$ROOT/clients/python"

PY=${ZT_PYTHON:-python3}
VENV=${ZT_GUARD_VENV:-target/py-guard-venv}
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
REQ="$PKG/requirements-test.txt"
STAMP="$VENV/.zt-guard-venv.stamp"
STAMP_FORMAT=1

log() { printf 'zt-guard tests: %s\n' "$*" >&2; }
die() { printf 'zt-guard tests: error: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "no '$PY' on PATH (set ZT_PYTHON to a Python >= 3.10)"
base_info=$("$PY" -c 'import sys; print(sys.version.split()[0], sys.version_info >= (3, 10), sys.base_prefix, sys.executable)') \
    || die "'$PY' does not run"
case "$base_info" in
    *" True "*) ;;
    *) die "'$PY' is Python ${base_info%% *}; zt-guard needs >= 3.10 (set ZT_PYTHON)" ;;
esac
want=$( {
    echo "format $STAMP_FORMAT"; echo "python $base_info"; cat "$REQ" "$PKG/pyproject.toml"
    find "$PKG/src" -type f -name '*.py' -o -type f -name 'py.typed' | LC_ALL=C sort | xargs cat
} | sha256sum | cut -d' ' -f1)

up_to_date() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import zt_guard, mcp' >/dev/null 2>&1
}

if ! up_to_date; then
    mkdir -p "$(dirname "$VENV")"
    LOCK="$(dirname "$VENV")/.$(basename "$VENV").lock"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$LOCK"
        flock 9
    fi
    if ! up_to_date; then
        start=$(date +%s)
        if [ -e "$VENV" ]; then
            # Only ever delete something that is a venv (or an empty directory).
            if [ -f "$VENV/pyvenv.cfg" ] || { [ -d "$VENV" ] && [ -z "$(ls -A "$VENV")" ]; }; then
                log "rebuilding $VENV (missing or stale stamp)"
                rm -rf "$VENV"
            else
                die "$VENV exists and is not a venv; refusing to delete it (set ZT_GUARD_VENV elsewhere)"
            fi
        fi
        pip_quiet=(--disable-pip-version-check --no-input --quiet)
        log "creating venv at $VENV with $PY (Python ${base_info%% *})"
        "$PY" -m venv "$VENV" >&2 || die "'$PY -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)"
        log "installing pinned packages from clients/python/requirements-test.txt"
        "$VENV/bin/python" -m pip install "${pip_quiet[@]}" -r "$REQ" >&2 \
            || die "pip install -r clients/python/requirements-test.txt failed (is PyPI reachable?)"
        log "installing zt-guard from clients/python"
        # A copy, not an editable install: the tests run against what `pip install` ships.
        "$VENV/bin/python" -m pip install "${pip_quiet[@]}" --no-deps "$PKG" >&2 \
            || die "pip install ./clients/python failed"
        "$VENV/bin/python" -m pip check >&2 || die "pip check found inconsistent dependencies"
        echo "$want" > "$STAMP"
        log "venv ready in $(( $(date +%s) - start ))s"
    fi
fi

BIN=${ZT_AUDIT_BIN:-target/debug/zt-audit}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
[ -x "$BIN" ] || die "no control plane binary at $BIN (build it, or set ZT_AUDIT_BIN)"
export ZT_AUDIT_BIN="$BIN"
log "running the suite against $ZT_AUDIT_BIN"
# The suite must import the installed package, not the source tree.
cd "$PKG/tests"
set +e
"$VENV/bin/python" -m unittest discover -s "$PKG/tests" -t "$PKG/tests" -v
status=$?
set -e
exit "$status"
