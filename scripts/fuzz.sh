#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a set time each:
#   scripts/fuzz.sh [SECONDS_EACH]     (default 600)
# libFuzzer prints the executions and the time at the end of each run; a
# crash stops the run and leaves its input in fuzz/artifacts/<target>/.
# cargo-fuzz is installed if missing. The toolchain here is stable, so
# RUSTC_BOOTSTRAP=1 lets it pass the sanitizer flags it needs.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target for ${SECONDS_EACH}s"
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
        | tee "/tmp/tessera-fuzz-$target.log" \
        | grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)" || true
done
