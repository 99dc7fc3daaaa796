#!/usr/bin/env bash
# One CMA-ES run's evaluations spread over 1, 2 and 4 `amalgam worker` processes (docs/distributed.md
# "Figures"): starts a throw-away PostgreSQL (scripts/check/postgres.sh), and for each worker count runs
# `amalgam evolve --store … --workers --coordinate-only` with that many `amalgam worker` processes on this
# machine, then prints evaluations per second (budget / wall time of the whole run, start-up and the best
# model's test evaluation included) and each worker's median coordination cost per candidate (claim +
# result write, milliseconds). Also the same run in one process with a run folder, for comparison.
#
#   scripts/bench/workers.sh [BUDGET] [WORKER COUNTS…]        default: 16, then 1 2 4
#   SINGLE=0 scripts/bench/workers.sh …                      without the one-process run
#
# The fitness is the SmolLM2 specialists' (examples/evolve-cmaes-specialists.yml: 5 + 5 validation passages
# of tasks/shakespeare-lm.jsonl and tasks/milton-lm.jsonl), on the models MODEL_A and MODEL_B (default: two
# copies of data/SmolLM2-135M-Instruct.Q4_1.gguf, which scripts/fetch-data.sh --tests fetches, when the
# specialists of work-data/specialists are not there). Build first (scripts/test.sh or swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-16}
shift || true
counts=${*:-1 2 4}
bin=${AMALGAM:-$(swift build -c release -Xswiftc -target-cpu -Xswiftc native --show-bin-path)/amalgam}
tmp=$(mktemp -d /tmp/amalgam-bench-workers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${MODEL_A:-}" ] && [ -d work-data/specialists/shakespeare ] && [ -d work-data/specialists/milton ]; then
    MODEL_A=work-data/specialists/shakespeare MODEL_B=work-data/specialists/milton
fi
if [ -z "${MODEL_A:-}" ]; then
    [ -s data/SmolLM2-135M-Instruct.Q4_1.gguf ] || { echo "error: no data/SmolLM2-135M-Instruct.Q4_1.gguf: run scripts/fetch-data.sh --tests" >&2; exit 1; }
    ln -s "$PWD/data/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/a.gguf"
    ln -s "$PWD/data/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/b.gguf"
    MODEL_A=$tmp/a.gguf MODEL_B=$tmp/b.gguf
fi
cat >"$tmp/evolve.yml" <<EOF
method: cmaes
models: [$MODEL_A, $MODEL_B]
tasks:
  - {path: $PWD/tasks/shakespeare-lm.jsonl, train_split: validation, train_examples: 5, test_examples: 2}
  - {path: $PWD/tasks/milton-lm.jsonl, train_split: validation, train_examples: 5, test_examples: 2}
budget: $budget
seed: 0
cmaes: {merge_method: linear, layer_granularity: 10, population: 4, dtype: float32}
EOF
echo "models: $MODEL_A, $MODEL_B; budget $budget; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
if [ "${SINGLE:-1}" != 0 ]; then
    t0=$(now)
    "$bin" evolve "$tmp/evolve.yml" --run-dir "$tmp/single" --quiet >/dev/null 2>&1
    t1=$(now)
    echo "one process, run folder: $(echo "$budget / ($t1 - $t0)" | bc -l | xargs printf '%.3f') evaluations/s ($(echo "$t1 - $t0" | bc -l | xargs printf '%.1f') s)"
fi

bench() {
    local url=$AMALGAM_TEST_POSTGRES n run pids t0 t1 i
    for n in $counts; do
        run="bench-$n"
        t0=$(now)
        "$bin" evolve "$tmp/evolve.yml" --store "$url" --run "$run" --run-dir "$tmp/out-$n" --workers --coordinate-only --quiet \
            >"$tmp/coordinator-$n.out" 2>"$tmp/coordinator-$n.err" &
        pids=$!
        for i in $(seq 1 "$n"); do
            "$bin" worker --store "$url" --run "$run" --quiet >"$tmp/worker-$n-$i.out" 2>"$tmp/worker-$n-$i.err" &
            pids="$pids $!"
        done
        for p in $pids; do wait "$p" || { cat "$tmp"/coordinator-$n.err "$tmp"/worker-$n-*.err >&2; exit 1; }; done
        t1=$(now)
        if [ -f "$tmp/single/best.yml" ]; then
            cmp -s "$tmp/single/best.yml" "$tmp/out-$n/best.yml" && same="same best recipe as one process" || same="BEST RECIPE DIFFERS"
        else
            same="$(cmp -s "$tmp/out-${counts%% *}/best.yml" "$tmp/out-$n/best.yml" && echo "same best recipe as with ${counts%% *} worker(s)" || echo "BEST RECIPE DIFFERS")"
        fi
        printf '%d worker(s): %.3f evaluations/s (%.1f s); coordination ms per candidate (median, per worker): %s; %s\n' \
            "$n" "$(echo "$budget / ($t1 - $t0)" | bc -l)" "$(echo "$t1 - $t0" | bc -l)" \
            "$(cat "$tmp"/worker-$n-*.out | sed -n 's/.*coordination \([0-9.]*\) ms.*/\1/p' | tr '\n' ' ')" "$same"
    done
}
export -f bench now
export bin tmp budget counts
scripts/check/postgres.sh run bash -c bench
