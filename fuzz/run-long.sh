#!/usr/bin/env bash
# Runs the fuzz targets for a long time, one after another, keeping what they learn.
#
#   fuzz/run-long.sh [HOURS_PER_TARGET] [TARGET...]   # default 1 hour each, every target
#
# The growing corpus lives in fuzz/work/<target>/ (not checked in; the checked-in seeds in
# fuzz/corpus/<target>/ are read, never written). Crashes stop that target and are left in
# fuzz/artifacts/<target>/; the script goes on with the next target and exits non-zero at the
# end if any crashed. Turn each crash into a regression test, then re-run. Use JOBS=N to run
# N parallel workers per target (default 1: the machine may be shared). KEEP_GOING=1 runs
# each target in libFuzzer's fork mode (one child at a time) with crashes, timeouts and OOMs
# ignored: every target gets its full time and all its findings are collected in
# fuzz/artifacts/<target>/ (the script still exits non-zero if any target left one).
# Logs go to fuzz/work/<target>.log as well as the terminal.
set -uo pipefail
cd "$(dirname "$0")"
hours="${1:-1}"
shift || true
targets="${*:-$(cargo +nightly fuzz list)}"
seconds=$(awk "BEGIN { printf \"%d\", $hours * 3600 }")
parallel=()
if [ "${JOBS:-1}" -gt 1 ]; then
    parallel=(-jobs="$JOBS" -workers="$JOBS")
fi
if [ -n "${KEEP_GOING:-}" ]; then
    parallel=(-fork="${JOBS:-1}" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
cargo +nightly fuzz build -O || exit 1
failed=""
for target in $targets; do
    mkdir -p "work/$target" "corpus/$target" "artifacts/$target"
    echo "=== $(date -u +%FT%TZ) fuzz $target for ${seconds}s"
    before=$(find "artifacts/$target" -type f | wc -l)
    if ! cargo +nightly fuzz run -O "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" "${parallel[@]}" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=10 -print_final_stats=1 2>&1 | tee "work/$target.log"; then
        failed="$failed $target"
    elif [ "$(find "artifacts/$target" -type f | wc -l)" -gt "$before" ]; then
        failed="$failed $target"
    fi
done
echo "=== $(date -u +%FT%TZ) done${failed:+; crashed:$failed}"
[ -z "$failed" ]
