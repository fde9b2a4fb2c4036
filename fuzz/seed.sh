#!/bin/sh
# Seeds fuzz/corpus/<target>/ from the repository's fixtures. corpus/ is git-ignored.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
for t in parse_record split_records verify_stream; do
    mkdir -p "$here/corpus/$t"
    cp "$root"/fixtures/interop/zt-infra-full/*.json* "$here/corpus/$t/"
    cp "$root"/fixtures/rfc8785/input/*.json "$here/corpus/$t/"
done
# parse_record takes one record: also seed each line of the JSONL fixtures on its own.
for f in "$root"/fixtures/interop/zt-infra-full/*.jsonl; do
    n=0
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        [ -n "$line" ] || continue
        printf '%s' "$line" > "$here/corpus/parse_record/$(basename "$f" .jsonl)-line$n.json"
    done < "$f"
done
for t in parse_record split_records verify_stream; do
    echo "$t: $(ls "$here/corpus/$t" | wc -l) seeds"
done
