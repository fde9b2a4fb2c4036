#!/usr/bin/env bash
# A fuzzing campaign: every target in turn under libFuzzer, one core, SECONDS each (default
# 300), from the corpus seed.sh fills, as fuzz/README.md's figures were taken. Needs the
# targets built first (RUSTC_BOOTSTRAP=1 cargo fuzz build -O). Logs and a summary line per
# target (exit code, corpus before and after, seconds) go to fuzz/logs/ (git-ignored); crash
# inputs to fuzz/artifacts/<target>/.
#
#   fuzz/campaign.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
shift || true
targets=${*:-parse_record split_records verify_stream otlp_protobuf otlp_json capability_token
capability_chain keyring proof_bundle broker_lines json_schema spiffe_bundle control_plane_http
signed_note}
# Two bundled SQLite builds are linked into the targets that reach a store (the store's and the
# control plane's state, each through rusqlite): the same globals twice, which ASan reports as
# an ODR violation before the first input. They never meet; the check is turned off.
export ASAN_OPTIONS=detect_odr_violation=0
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
for t in $targets; do
    [ -d "corpus/$t" ] || ./seed.sh >/dev/null
    mkdir -p "artifacts/$t"
    before=$(ls "corpus/$t" | wc -l)
    extra=()
    case $t in split_records | verify_stream | otlp_protobuf | otlp_json) extra=(-len_control=0) ;; esac
    start=$(date +%s)
    "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_len=65536 "${extra[@]}" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=20 >"logs/$t.log" 2>&1
    rc=$?
    echo "$t rc=$rc corpus $before -> $(ls "corpus/$t" | wc -l) ($(du -sk "corpus/$t" | cut -f1) KiB) $(($(date +%s) - start)) s" |
        tee -a logs/summary.txt
done
