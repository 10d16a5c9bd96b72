#!/bin/sh
# run_fuzz.sh FUZZER CORPUS SECONDS [DICT]: one short libFuzzer run (ctest -L
# fuzz) on a copy of the seed corpus, so the repository's corpus is never
# written. A crash, leak or timeout fails the run; its input is kept as
# artifacts/<fuzzer>-crash-<sha1> in the working directory.
set -eu
fuzzer=$1 corpus=$2 seconds=$3 dict=${4:-}
name=$(basename "$fuzzer")
work=$(mktemp -d "${TMPDIR:-/tmp}/soldr-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$corpus"/* "$work"/
mkdir -p artifacts
set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="artifacts/$name-"
[ -n "$dict" ] && set -- "$@" -dict="$dict"
"$fuzzer" "$@" "$work"
