#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a set time each:
#   scripts/fuzz.sh [SECONDS_EACH]     (default 600)
# Prints libFuzzer's executions and rate for each target. A crash (or a
# leak, timeout or out-of-memory) keeps its input in fuzz/artifacts/<target>/
# (commit it: `cargo fuzz run <target> <file>` replays it), and the script
# goes on with the other targets, then exits with the first failing
# fuzzer's status. cargo-fuzz is installed if missing. The toolchain here is
# stable, so RUSTC_BOOTSTRAP=1 lets it pass the sanitizer flags it needs.
set -uo pipefail
cd "$(dirname "$0")/../fuzz" || exit 1
SECONDS_EACH="${1:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || exit 1
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O || exit 1
failed=0
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "== $target for ${SECONDS_EACH}s"
    log="$(mktemp "/tmp/tessera-fuzz-$target.XXXXXX.log")"
    cargo fuzz run -O "$target" "corpus/$target" -- \
        -artifact_prefix="artifacts/$target/" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    status=$?
    grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)|panicked at" "$log"
    if [ "$status" -ne 0 ]; then
        echo "!! $target failed (exit $status); full log: $log" >&2
        ls -1 "artifacts/$target" | sed "s|^|   input kept: fuzz/artifacts/$target/|" >&2
        [ "$failed" -ne 0 ] || failed="$status"
    fi
done
exit "$failed"
