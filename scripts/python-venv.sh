#!/usr/bin/env bash
# Creates (idempotently) a Python venv from exact pins: by default the one tests/python/send_envelopes.py
# runs in (the real OpenTelemetry Python SDK and OTLP/HTTP exporter, tests/python/requirements.txt);
# clients/python/run-tests.sh uses it for the zt-guard package and its test pins.
#
#   scripts/python-venv.sh            -> venv at target/py-venv (relative to the repo root)
#   ZT_PY_VENV=/some/dir scripts/...  -> venv there (relative paths are taken from the repo root)
#   ZT_PYTHON=/usr/bin/python3 ...    -> base interpreter (default: python3 on PATH; needs >= 3.10)
#   ZT_PY_REQUIREMENTS=FILE ...       -> other pins (default tests/python/requirements.txt)
#   ZT_PY_PACKAGE=DIR ...             -> also install this local package (--no-deps: its
#                                        dependencies are in the pins), rebuilt when its sources change
#   ZT_PY_CHECK='import x' ...        -> what must import once built (default: the OTel exporter)
#
# Progress goes to stderr; the last (only) line on stdout is the venv's python, as an absolute path.
# A stamp file records what the venv was built from (requirements + base interpreter); a second
# run with the same inputs is a fast no-op. Anything else found there is rebuilt from scratch.
# Concurrent runs (parallel cargo tests) serialise on a flock(1) lock beside the venv.
#
# Needs only python3 with the venv module and network access to PyPI. Where ensurepip is missing
# (Debian/Ubuntu without the python3-venv package), the venv is made --without-pip and the host's
# pip (python3-pip) installs into it with `pip --python`; with neither, it stops and says what to
# install (apt-get install python3-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)

PY=${ZT_PYTHON:-python3}
VENV=${ZT_PY_VENV:-target/py-venv}
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
REQ=${ZT_PY_REQUIREMENTS:-tests/python/requirements.txt}
case "$REQ" in /*) ;; *) REQ="$ROOT/$REQ" ;; esac
PKG=${ZT_PY_PACKAGE:-}
case "$PKG" in ""|/*) ;; *) PKG="$ROOT/$PKG" ;; esac
CHECK=${ZT_PY_CHECK:-import opentelemetry.sdk._logs, opentelemetry.exporter.otlp.proto.http._log_exporter}
STAMP="$VENV/.zt-py-venv.stamp"
STAMP_FORMAT=1

log() { printf 'python-venv: %s\n' "$*" >&2; }
die() { printf 'python-venv: error: %s\n' "$*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "no '$PY' on PATH (set ZT_PYTHON to a Python >= 3.10)"
[ -f "$REQ" ] || die "missing $REQ"

# What the venv depends on: the pins, the base interpreter (path and version), this stamp's format.
base_info=$("$PY" -c 'import sys; print(sys.version.split()[0], sys.version_info >= (3, 10), sys.base_prefix, sys.executable)') \
    || die "'$PY' does not run"
case "$base_info" in
    *" True "*) ;;
    *) die "'$PY' is Python ${base_info%% *}; the pinned OpenTelemetry packages need >= 3.10 (set ZT_PYTHON)" ;;
esac
want=$( {
    echo "format $STAMP_FORMAT"; echo "python $base_info"; cat "$REQ"
    if [ -n "$PKG" ]; then
        echo "package $PKG"; cat "$PKG/pyproject.toml"
        find "$PKG/src" -type f \( -name '*.py' -o -name 'py.typed' \) | LC_ALL=C sort | xargs cat
    fi
} | sha256sum | cut -d' ' -f1)

up_to_date() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c '' >/dev/null 2>&1
}

# Fast path, no lock: already built from exactly these inputs.
if up_to_date; then
    echo "$VENV/bin/python"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
LOCK="$(dirname "$VENV")/.$(basename "$VENV").lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCK"
    flock 9
fi

# Another run may have finished it while we waited for the lock.
if up_to_date; then
    echo "$VENV/bin/python"
    exit 0
fi

start=$(date +%s)
if [ -e "$VENV" ]; then
    # Only ever delete something that is a venv (or an empty directory): ZT_PY_VENV could be a typo.
    if [ -f "$VENV/pyvenv.cfg" ] || { [ -d "$VENV" ] && [ -z "$(ls -A "$VENV")" ]; }; then
        log "rebuilding $VENV (missing or stale stamp)"
        rm -rf "$VENV"
    else
        die "$VENV exists and is not a venv; refusing to delete it (set ZT_PY_VENV elsewhere)"
    fi
fi

pip_quiet=(--disable-pip-version-check --no-input --quiet)
log "creating venv at $VENV with $PY (Python ${base_info%% *})"
if venv_out=$("$PY" -m venv "$VENV" 2>&1); then
    log "installing pinned packages from ${REQ#"$ROOT"/}"
    "$VENV/bin/python" -m pip install "${pip_quiet[@]}" -r "$REQ" >&2 \
        || die "pip install -r ${REQ#"$ROOT"/} failed (is PyPI reachable?)"
else
    # Typically Debian/Ubuntu without python3-venv: the venv module is there, ensurepip is not.
    printf '%s\n' "$venv_out" | sed -n '1,6s/^/  | /p' >&2
    rm -rf "$VENV"
    if ! "$PY" -m pip --version >/dev/null 2>&1; then
        die "'$PY -m venv' failed (no ensurepip?) and '$PY' has no pip to fall back on. On Debian/Ubuntu, as root: apt-get update && apt-get install -y python3-venv"
    fi
    log "'$PY -m venv' failed (ensurepip missing? Debian: apt-get install python3-venv);" \
        "falling back to a venv --without-pip, filled by the host's pip"
    "$PY" -m venv --without-pip "$VENV" >&2 || die "'$PY -m venv --without-pip $VENV' failed"
    # pip >= 22.3 can install into another interpreter's environment with --python.
    "$PY" -m pip --python "$VENV/bin/python" install "${pip_quiet[@]}" -r "$REQ" >&2 \
        || die "host pip could not install into $VENV (needs pip >= 22.3 for --python; or install python3-venv)"
fi
if [ -n "$PKG" ]; then
    log "installing ${PKG#"$ROOT"/}"
    # A copy, not an editable install: what is tested is what `pip install` ships.
    if [ -x "$VENV/bin/pip" ]; then
        "$VENV/bin/python" -m pip install "${pip_quiet[@]}" --no-deps "$PKG" >&2
    else
        "$PY" -m pip --python "$VENV/bin/python" install "${pip_quiet[@]}" --no-deps "$PKG" >&2
    fi || die "pip install ${PKG#"$ROOT"/} failed"
fi

"$VENV/bin/python" -c "$CHECK" || die "the venv was built but \`$CHECK\` fails"

echo "$want" > "$STAMP"
log "ready in $(( $(date +%s) - start ))s"
echo "$VENV/bin/python"
