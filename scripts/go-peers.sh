#!/usr/bin/env bash
# Builds the Go test peers: every module under tests/go/<name>/ (its own go.mod and go.sum, exact
# pins) into target/go-peers/<name>, for the Rust integration tests to run. Today: spiffe-client,
# a SPIFFE mTLS client on the reference go-spiffe library, and sumdb-peer, signed notes and
# RFC 6962 proofs on golang.org/x/mod/sumdb (Go's checksum database).
#
#   scripts/go-peers.sh            -> builds what is missing or stale, reuses the rest
#   ZT_GO=/path/to/go scripts/...  -> that Go toolchain (default: go on PATH, else /usr/local/go)
#
# A peer is rebuilt only when its binary is missing or older than one of its .go files, go.mod or
# go.sum; a second run is a fast no-op. Progress goes to stderr; stdout has the absolute path of
# each binary built or reused, and last the directory that holds them.
# Concurrent runs (parallel cargo tests) serialise on a flock(1) lock in that directory.
#
# Needs Go >= the `go` line of each go.mod (1.24 for go-spiffe v2.9, 1.26 for x/mod v0.43) and the Go module proxy, the
# first time, to download the pinned modules into the module cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
OUT="$ROOT/target/go-peers"

log() { printf 'go-peers: %s\n' "$*" >&2; }
die() { printf 'go-peers: error: %s\n' "$*" >&2; exit 1; }

GO=${ZT_GO:-go}
# The Go tarball installs to /usr/local/go, which a non-login shell may not have on PATH.
if ! command -v "$GO" >/dev/null 2>&1 && [ -z "${ZT_GO:-}" ] && [ -x /usr/local/go/bin/go ]; then
    GO=/usr/local/go/bin/go
fi

shopt -s nullglob
peers=()
for mod in tests/go/*/go.mod; do
    peers+=("$(dirname "$mod")")
done

# A directory counts too: its mtime changes when a source file is deleted or renamed.
stale() { # DIR BIN
    [ -x "$2" ] || return 0
    [ -n "$(find "$1" \( -type d -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) \) \
        -newer "$2" -print -quit)" ]
}

# Only a build needs Go, so this runs before the first one: fresh binaries are reused even where
# no toolchain is installed.
have=
prepare() {
    if ! command -v "$GO" >/dev/null 2>&1; then
        [ -z "${ZT_GO:-}" ] || die "ZT_GO=$ZT_GO is not a program"
        die "no Go toolchain ('go' is neither on PATH nor in /usr/local/go/bin). Install Go >= 1.24," \
            "as root: curl -fsSL https://go.dev/dl/go1.26.<N>.linux-amd64.tar.gz | tar -C /usr/local -xz" \
            "(a current release from https://go.dev/dl/), then put /usr/local/go/bin on PATH or set ZT_GO." \
            "On Debian 13+ 'apt-get install golang-go' will do; Debian 12's golang-go (1.19) is too old"
    fi
    have=$("$GO" env GOVERSION 2>/dev/null) || die "'$GO env GOVERSION' failed"
    have=${have#go}
    mkdir -p "$OUT"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$OUT/.lock"
        flock 9
    fi
}

for dir in "${peers[@]}"; do
    name=$(basename "$dir")
    bin="$OUT/$name"
    # Checked again once locked: another run may have built it while we waited.
    if stale "$dir" "$bin" && { [ -n "$have" ] || prepare; } && stale "$dir" "$bin"; then
        need=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$dir/go.mod")
        case "$have" in
            [0-9]*)
                [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" = "$need" ] \
                    || die "$dir/go.mod needs Go >= $need; '$GO' is go$have (GOTOOLCHAIN=local: no toolchain is downloaded)"
                ;;
        esac
        log "building $name (go$have)"
        start=$(date +%s)
        tmp="$OUT/.$name.tmp.$$"
        trap 'rm -f "$tmp"' EXIT
        # GOFLAGS unset: a developer's -mod=mod or the like must not re-resolve the pins.
        # -mod=readonly: go.mod and go.sum are used as committed, never rewritten (a missing sum is
        # an error). GOTOOLCHAIN=local: the installed Go or nothing, never a downloaded toolchain.
        # GOWORK=off: no go.work above the module can swap in other versions. -buildvcs=false: the
        # binary must not depend on the git state of a shared working tree. CGO_ENABLED=0: a
        # static binary, no C toolchain needed. Built to a temporary file, then renamed, so a
        # concurrent reader never runs a half-written binary.
        (cd "$dir" && env -u GOFLAGS GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 \
            "$GO" build -trimpath -mod=readonly -buildvcs=false -o "$tmp" .) >&2 \
            || die "go build in $dir failed (go.sum out of date? run 'go mod tidy' there; or the Go module proxy is unreachable)"
        mv -f "$tmp" "$bin"
        trap - EXIT
        log "built $name in $(( $(date +%s) - start ))s"
    fi
    echo "$bin"
done
echo "$OUT"
