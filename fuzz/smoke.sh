#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly: a smoke test for CI.
#
#   fuzz/smoke.sh [SECONDS]        # default 30 per target, or FUZZ_SECONDS=N
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts
# from its checked-in seeds (fuzz/corpus/<target>, never written to) plus a scratch corpus,
# runs single-job for SECONDS, and the script exits non-zero on the first crash, leak, timeout
# or OOM (the reproducer is left in fuzz/artifacts/<target>/). Set CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-${FUZZ_SECONDS:-30}}"
targets=$(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $targets; do
    mkdir -p "$scratch/$target" "corpus/$target"
    echo "=== fuzz $target for ${seconds}s"
    if ! cargo +nightly fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        tail -40 "$scratch/$target.log"
        echo "=== $target FAILED (reproducer in fuzz/artifacts/$target/)"
        status=1
        break
    fi
    grep -E "^(Done|stat::number_of_executed_units)" "$scratch/$target.log" || true
done
exit "$status"
