#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly: a smoke test for CI.
#
#   fuzz/smoke.sh [SECONDS]        # default 30 per target, or FUZZ_SECONDS=N
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts
# from its checked-in seeds (fuzz/corpus/<target>, never written to) plus a scratch corpus,
# runs single-job for SECONDS, and the script exits non-zero on the first crash, leak, timeout
# or OOM (the reproducer is left in fuzz/artifacts/<target>/). Set CARGO_TARGET_DIR as usual.
# It also fails when no target is listed or a target ends without libFuzzer's "Done" line
# (it did not really run). Self-test of the failure path: FUZZ_ALLOC_SCALE=100000 makes every
# target's heap bound tiny, so the first input "crashes" and the script must exit 1.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-${FUZZ_SECONDS:-30}}"
targets=$(cargo +nightly fuzz list)
if [ -z "$targets" ]; then
    echo "=== no fuzz targets listed" >&2
    exit 1
fi
cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in $targets; do
    mkdir -p "$scratch/$target" "corpus/$target"
    echo "=== fuzz $target for ${seconds}s"
    if ! cargo +nightly fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
        -print_final_stats=1 2>"$scratch/$target.log"; then
        grep -m4 -A1 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$scratch/$target.log" \
            || echo "(no panic or sanitizer message in the log)"
        tail -40 "$scratch/$target.log"
        echo "=== $target FAILED; reproducer:" \
            "$(ls -t "artifacts/$target/" 2>/dev/null | head -1 | sed "s|^|fuzz/artifacts/$target/|")"
        status=1
        break
    fi
    if ! grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$scratch/$target.log" \
        || ! grep -q "^Done " "$scratch/$target.log"; then
        tail -40 "$scratch/$target.log"
        echo "=== $target did not run to its time limit"
        status=1
        break
    fi
done
exit "$status"
