#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of every parser that reads a user's file.
#
#   scripts/check/fuzz.sh [SECONDS] [TARGET…]     (default: 60 s each, every target; FUZZ_JOBS=N runs N at once)
#
# Builds the fuzz package in Fuzz/ (its own package, outside the main build: `swift build` and the test build
# never see it) with `-sanitize=fuzzer,address`, then runs each target for SECONDS on its committed seed corpus
# (Fuzz/corpus/TARGET, read only) plus what it finds (Fuzz/.build/corpus/TARGET, kept between runs), and prints
# per target: executions, coverage (libFuzzer's cov = edges, ft = features), corpus size, and crashes. A crash,
# trap, ASan report, hang (an input taking over FUZZ_TIMEOUT s, default 20) or out-of-memory (over 2 GB) is
# saved under Fuzz/.build/artifacts/TARGET/ and the script exits 1. A thrown error is the correct outcome for a
# bad input and is not reported. Reproduce one input: Fuzz/.build/release/TARGET ARTIFACT.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
all=(FuzzJSON FuzzSafetensors FuzzGGUF FuzzMergeYAML FuzzConfigJSON FuzzTokenizerJSON FuzzChatTemplate FuzzTaskFile FuzzAdapterConfig)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
jobs="${FUZZ_JOBS:-1}"
timeout="${FUZZ_TIMEOUT:-20}"

start=$(date +%s)
swift build --package-path Fuzz -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >&2
echo "fuzz build: $(( $(date +%s) - start )) s" >&2
bin=Fuzz/.build/release

run_one() {
    local t="$1"
    mkdir -p "Fuzz/.build/corpus/$t" "Fuzz/.build/artifacts/$t" "Fuzz/.build/logs"
    local log="Fuzz/.build/logs/$t.log"
    local status=0
    # Leak detection is off: the Swift runtime's metadata caches are never freed by design.
    ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$bin/$t" -max_total_time="$seconds" -timeout="$timeout" \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="Fuzz/.build/artifacts/$t/" \
        "Fuzz/.build/corpus/$t" "Fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    local execs cov ft corpus crashes
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(ls "Fuzz/.build/corpus/$t" | wc -l)
    crashes=$(ls "Fuzz/.build/artifacts/$t" | grep -cE '^(crash|timeout|oom|leak|slow-unit)-' || true)
    printf '%-18s %6ss %10s %6s %7s %7s %8s\n' "$t" "$seconds" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$crashes"
    if [ "$status" -ne 0 ]; then
        echo "  $t stopped with status $status; see $log:" >&2
        grep -E 'ERROR: |Fatal error|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /' >&2
        return 1
    fi
}

printf '%-18s %7s %10s %6s %7s %7s %8s\n' target time executions cov ft corpus crashes
failed=0
pids=()
for t in "${targets[@]}"; do
    [ -x "$bin/$t" ] || { echo "error: no fuzz target $t (one of: ${all[*]})" >&2; exit 2; }
    run_one "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
echo "fuzzing: $(( $(date +%s) - start )) s in all" >&2
exit $failed
