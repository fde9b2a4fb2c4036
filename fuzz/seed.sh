#!/bin/sh
# Seeds each target's corpus: the repository's fixtures, the hand-made seeds in seeds/<target>/
# (written by `cargo run -p zt-fuzz-bodies --example make_seeds`) and the saved crash inputs
# in regressions/<target>/. Into corpus/<target>/ (git-ignored), or into the folder given.
# The replay test (bodies/tests/replay) runs this into a temporary folder and replays it all.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:-"$here/corpus"}
targets="parse_record split_records verify_stream otlp_protobuf otlp_json capability_token
capability_chain keyring proof_bundle broker_lines json_schema control_plane_http spiffe_bundle
signed_note"

# Each line of the JSONL fixtures as a seed of its own (targets that take one record).
lines() {
    for f in "$root"/fixtures/interop/zt-infra-full/*.jsonl "$root"/fixtures/v1/*.jsonl \
        "$root"/fixtures/profiles/*.jsonl; do
        n=0
        stem=$(basename "$(dirname "$f")")-$(basename "$f" .jsonl)
        while IFS= read -r line || [ -n "$line" ]; do
            n=$((n + 1))
            [ -n "$line" ] || continue
            printf '%s' "$line" > "$1/$stem-line$n.json"
        done < "$f"
    done
}

for t in $targets; do
    mkdir -p "$out/$t"
    case $t in
    parse_record | split_records | verify_stream)
        cp "$root"/fixtures/interop/zt-infra-full/*.json* "$out/$t/"
        cp "$root"/fixtures/rfc8785/input/*.json "$out/$t/"
        for f in "$root"/fixtures/v1/*.jsonl "$root"/fixtures/profiles/*.json*; do
            cp "$f" "$out/$t/$(basename "$(dirname "$f")")-$(basename "$f")"
        done
        ;;
    keyring)
        cp "$root"/fixtures/interop/zt-infra-full/keyring.json "$out/$t/interop-keyring.json"
        cp "$root"/fixtures/v1/keyring.json "$out/$t/v1-keyring.json"
        ;;
    json_schema) lines "$out/$t" ;;
    esac
    [ "$t" = parse_record ] && lines "$out/$t"
    for d in "$here/seeds/$t" "$here/regressions/$t"; do
        if [ -d "$d" ] && [ -n "$(ls -A "$d")" ]; then
            cp "$d"/* "$out/$t/"
        fi
    done
    echo "$t: $(ls "$out/$t" | wc -l) seeds"
done
