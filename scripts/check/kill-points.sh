#!/usr/bin/env bash
# Kills (SIGKILL) `amalgam merge`, `finetune`, `dam`, `evolve` (M2N2), `evolve` (CMA-ES) and `worker` at
# seeded random moments, resumes each (merge: runs again; worker: another worker takes over), and compares
# the result with an uninterrupted run: same bytes, nothing lost, no working folder left behind. Prints the
# counts. Workloads are the tiny fixture models, so the whole script takes a few minutes. Not part of CI.
#
#   scripts/check/kill-points.sh [KILLS=30] [SEED=2026] [WORK=/tmp/amalgam-kill-points]
#   ONLY="worker" scripts/check/kill-points.sh …     only the named sections (merge finetune dam evolve worker)
#
# `worker` needs Debian's PostgreSQL server (scripts/setup-system.sh): the script starts a throw-away one
# with scripts/check/postgres.sh and stops it at the end. A CMA-ES coordinator (`evolve --store URL
# --workers --coordinate-only`, which evaluates nothing itself) waits while workers are started one after
# another and killed at random moments; a killed worker's candidate goes back to the queue when its
# 1-second lease runs out, and the next worker takes it. Its result must be the uninterrupted CMA-ES
# run's, byte for byte. "mid-run" counts the kills that left a candidate running (claimed, not finished).
#
# A "kill" is counted when the process was killed by the signal; launches go on until KILLS kills have
# landed for each command (at most 5 × KILLS launches). A moment that fell after the process had already
# finished counts as "finished first" (its result is compared too). For the resumable commands, "mid-run"
# counts the kills that found the run folder with at least one committed step and no output yet (read
# with the sqlite3 program when it is installed). Exit status 1 if any comparison failed or any leftover
# remained.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
KILLS=${1:-30}
SEED=${2:-2026}
WORK=${3:-/tmp/amalgam-kill-points}
AMALGAM=${AMALGAM:-$ROOT/.build/release/amalgam}
FIX=$ROOT/fixtures/gguf
[ -x "$AMALGAM" ] || { echo "build amalgam first (scripts/build.sh)" >&2; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"
RANDOM=$SEED
FAILED=0
# Sections to run: all, or those ONLY names.
section() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
STEP="SELECT value FROM meta WHERE key = 'step'"

# Starts "$@" (a function below that runs amalgam as `$EXEC "$AMALGAM" …`) in the background, the
# subshell replaced by amalgam itself (EXEC=exec) so that the signal reaches amalgam; SIGKILLs it after a
# seeded random moment within $WINDOW ms. Sets KILLED=1 when the signal ended it, 0 when it had finished
# first (then STATUS is its exit status).
EXEC=
kill_at_random() {
    (EXEC=exec; "$@") >/dev/null 2>>"$WORK/stderr.log" &
    local pid=$!
    local ms=$((RANDOM % WINDOW))
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    STATUS=$?
    if [ "$STATUS" -eq 137 ]; then KILLED=1; else KILLED=0; fi
}

# Milliseconds an uninterrupted "$@" takes (the window kills are drawn in: 1.2× that).
timed_window() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>>"$WORK/stderr.log" || { echo "uninterrupted run failed: $*" >&2; tail -5 "$WORK/stderr.log" >&2; exit 1; }
    end=$(date +%s%N)
    WINDOW=$(( (end - start) / 1000000 * 12 / 10 + 1 ))
}

# Fingerprint of a folder or file: relative path and sha256 of every file, sorted.
fingerprint() {
    if [ -d "$1" ]; then (cd "$1" && find . -type f ! -name run.lock -print0 | sort -z | xargs -0 sha256sum)
    elif [ -f "$1" ]; then sha256sum < "$1"; else echo missing; fi
}

# Working folders or partial files left beside outputs.
leftovers() { find "$@" -maxdepth 1 -name '.*.partial*' 2>/dev/null | wc -l; }

report() { # name kills finished-first compared mismatches leftovers [mid-run]
    printf '%-14s kills %3d  finished-first %3d  results compared %3d  mismatches %d  leftovers %d' "$1" "$2" "$3" "$4" "$5" "$6"
    [ -n "${7:-}" ] && printf '  mid-run %3d' "$7"
    printf '\n'
    [ "$5" -eq 0 ] && [ "$6" -eq 0 ] || FAILED=1
}

# Steps committed in run folder $1 by query $2 (0 without the folder or the sqlite3 program).
committed() {
    [ -e "$1/run.sqlite" ] && command -v sqlite3 >/dev/null || { echo 0; return; }
    local n; n=$(sqlite3 "$1/run.sqlite" "$2" 2>/dev/null); echo "${n:-0}"
}

# ---- merge: killed, then run again into the same output ----
if section merge; then
cat > "$WORK/merge.yml" <<EOF
models:
  - model: $FIX/tiny-llama-hf
    parameters: {weight: 0.5, density: 0.5}
  - model: $FIX/tiny-llama.gguf
    parameters: {weight: 0.5, density: 0.5}
merge_method: dare_ties
base_model: $FIX/tiny-llama-hf
dtype: float32
EOF
merge() { $EXEC "$AMALGAM" merge --quiet --seed 7 "$WORK/merge.yml" "$1"; }
timed_window merge "$WORK/merge-whole"
want=$(fingerprint "$WORK/merge-whole")
k=0; f=0; c=0; bad=0; launches=0
while [ $k -lt "$KILLS" ] && [ $launches -lt $((5 * KILLS)) ]; do
    launches=$((launches + 1))
    kill_at_random merge "$WORK/merge-parts"
    if [ "$KILLED" = 1 ]; then
        # Killed before its commit: nothing under the output's name, and the next run succeeds (removing the
        # leftover). Killed after it: the output is complete.
        k=$((k + 1)); [ -e "$WORK/merge-parts" ] || merge "$WORK/merge-parts" 2>>"$WORK/stderr.log"
    else f=$((f + 1)); fi
    c=$((c + 1)); [ "$(fingerprint "$WORK/merge-parts")" = "$want" ] || bad=$((bad + 1))
    rm -rf "$WORK/merge-parts"
done
report merge $k $f $c $bad "$(leftovers "$WORK")"
fi

# ---- resumable commands: killed again and again with --resume until one run finishes ----
# resumable NAME WHOLE_OUTPUT PARTS_OUTPUT RUN_FOLDER STEP_QUERY COMMAND... (the command resumes its run
# when there is one; everything of the interrupted runs is named $WORK/NAME-parts*)
resumable() {
    local name=$1 whole=$2 parts=$3 run=$4 query=$5; shift 5
    local k=0 f=0 c=0 bad=0 mid=0 launches=0
    want=$(fingerprint "$whole")
    while [ $k -lt "$KILLS" ] && [ $launches -lt $((5 * KILLS)) ]; do
        launches=$((launches + 1))
        kill_at_random "$@"
        if [ "$KILLED" = 1 ]; then
            k=$((k + 1))
            if [ ! -e "$parts" ]; then
                [ "$(committed "$run" "$query")" -gt 0 ] && mid=$((mid + 1))
                continue
            fi
        fi
        # Finished (or killed after its output was complete): compare, then start over so that later kills
        # land in a fresh run too.
        f=$((f + 1)); c=$((c + 1))
        [ "$(fingerprint "$parts")" = "$want" ] || bad=$((bad + 1))
        rm -rf "$WORK/$name"-parts*
    done
    # Resume to the end and compare.
    "$@" >/dev/null 2>>"$WORK/stderr.log"; c=$((c + 1))
    [ "$(fingerprint "$parts")" = "$want" ] || bad=$((bad + 1))
    report "$name" $k $f $c $bad "$(leftovers "$WORK" "$WORK/$name-parts-run" "$(dirname "$parts")")" $mid
}

# finetune: checkpoint every step; --resume once the run folder exists.
if section finetune; then
for i in $(seq 40); do echo "Line $i: the quick brown fox jumps over the lazy dog, then rests by the river."; done > "$WORK/train.txt"
finetune() { # OUT RUN
    local resume=(); [ -e "$2/run.sqlite" ] && resume=(--resume)
    $EXEC "$AMALGAM" finetune "$FIX/tiny-llama-hf" "$WORK/train.txt" "$1" --run-dir "$2" "${resume[@]}" --steps 6 \
        --checkpoint-every 1 --seq-len 16 --batch-tokens 32 --micro-batch-tokens 32 --seed 3
}
timed_window finetune "$WORK/finetune-whole" "$WORK/finetune-whole-run"
resumable finetune "$WORK/finetune-whole" "$WORK/finetune-parts" "$WORK/finetune-parts-run" "$STEP" \
    finetune "$WORK/finetune-parts" "$WORK/finetune-parts-run"
fi

# dam: the run folder is the config's run_dir; --resume continues it.
if section dam; then
printf 'Shall I compare thee to a summer'"'"'s day? Thou art more lovely and more temperate. %.0s' $(seq 6) > "$WORK/a.txt"
for i in $(seq 0 5); do echo "{\"text\": \"Of man's first disobedience, and the fruit $i of that forbidden tree\"}"; done > "$WORK/b.jsonl"
for which in whole parts; do cat > "$WORK/config-dam-$which.yml" <<EOF
models:
  - model: $FIX/tiny-llama-hf
    data: $WORK/a.txt
  - model: $FIX/tiny-llama-q8_0.gguf
    data: $WORK/b.jsonl
steps: 6
batch_size: 2
seq_len: 12
lr: 0.01
optimiser: mofo
checkpoint_every: 1
run_dir: $WORK/dam-$which-run
EOF
done
dam() { $EXEC "$AMALGAM" dam "$WORK/config-dam-$1.yml" "$WORK/dam-$1" --resume; }
timed_window dam whole
resumable dam "$WORK/dam-whole" "$WORK/dam-parts" "$WORK/dam-parts-run" "$STEP" dam parts
fi

# evolve: two tiny models (the fixture, and its Q8_0 GGUF converted back) scored on a tiny task.
if section evolve || section worker; then
"$AMALGAM" convert "$FIX/tiny-llama-q8_0.gguf" "$WORK/model-b" --dtype f32 >/dev/null 2>>"$WORK/stderr.log"
{
    echo '{"task": "tiny-mc", "kind": "multiple_choice"}'
    words=(red blue green cat dog sun moon tree stone river)
    for i in $(seq 0 13); do
        split=train; [ "$i" -ge 10 ] && split=test
        echo "{\"id\": \"q$i\", \"split\": \"$split\", \"context\": \"the ${words[$((i % 10))]} is\", \"choices\": [\"${words[$(((i * 3) % 10))]}\", \"${words[$(((i * 3 + 7) % 10))]}\", \"${words[$(((i * 3 + 14) % 10))]}\"], \"gold\": $((i % 3))}"
    done
} > "$WORK/tiny-mc.jsonl"
for method in m2n2 cmaes; do
    for which in whole parts; do cat > "$WORK/config-evolve-$method-$which.yml" <<EOF
method: $method
models: [$FIX/tiny-llama-hf, $WORK/model-b]
tasks:
  - path: $WORK/tiny-mc.jsonl
    train_examples: 8
    test_examples: 2
budget: $([ $method = m2n2 ] && echo 40 || echo 16)
seed: 3
output: $WORK/evolve-$method-$which-best
m2n2: {archive_size: 3}
cmaes: {merge_method: linear, population: 4, layer_granularity: 1, dtype: float32}
EOF
    done
    evolve() { $EXEC "$AMALGAM" evolve "$WORK/config-evolve-$1-$2.yml" --run-dir "$WORK/evolve-$1-$2-run" --resume --quiet; }
    # The worker section compares with the uninterrupted CMA-ES run.
    [ $method = cmaes ] || section evolve || continue
    timed_window evolve $method whole
    section evolve || continue
    query=$STEP; [ $method = m2n2 ] && query="SELECT passes FROM state"
    resumable "evolve-$method" "$WORK/evolve-$method-whole-best" "$WORK/evolve-$method-parts-best" "$WORK/evolve-$method-parts-run" \
        "$query" evolve $method parts
done
fi

# ---- worker: workers killed at random moments under a coordinator that only coordinates ----
if section worker; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        echo "worker: no PostgreSQL server (scripts/setup-system.sh installs Debian's postgresql)" >&2; FAILED=1
    else
        eval "$(scripts/check/postgres.sh start)"
        trap 'scripts/check/postgres.sh stop "$AMALGAM_TEST_POSTGRES_DIR" >/dev/null 2>&1' EXIT
        URL=$AMALGAM_TEST_POSTGRES
        PSQL=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/psql
        sed "s#^output: .*#output: $WORK/worker-parts-best#" "$WORK/config-evolve-cmaes-parts.yml" > "$WORK/config-worker.yml"
        want=$(fingerprint "$WORK/evolve-cmaes-whole-best")
        run=0 k=0 f=0 c=0 bad=0 mid=0 launches=0
        # The coordinator of run kp$run, in the background; a killed worker's candidate may be claimed up to
        # 1000 times before the run is failed.
        coordinator() {
            "$AMALGAM" evolve "$WORK/config-worker.yml" --run-dir "$WORK/worker-parts-run" --store "$URL" --run "kp$run" \
                --workers --coordinate-only --max-attempts 1000 --quiet >/dev/null 2>>"$WORK/stderr.log" &
            CPID=$!
        }
        worker() { $EXEC "$AMALGAM" worker --store "$URL" --run "kp$run" --lease 1 --max-attempts 1000 --quiet; }
        running() {
            "$PSQL" "$URL" -tAc "SELECT count(*) FROM amalgam_work w JOIN amalgam_runs r ON r.id = w.run_id
                                  WHERE r.name = 'kp$run' AND w.state = 'running'" 2>/dev/null || echo 0
        }
        # The coordinator has finished: compare its output, start a fresh run.
        finished() {
            wait "$CPID" || echo "worker: coordinator of run kp$run exited with status $?" >>"$WORK/stderr.log"
            c=$((c + 1)); [ "$(fingerprint "$WORK/worker-parts-best")" = "$want" ] || bad=$((bad + 1))
            rm -rf "$WORK/worker-parts-best" "$WORK/worker-parts-run"
            run=$((run + 1)); coordinator
        }
        coordinator
        while [ $k -lt "$KILLS" ] && [ $launches -lt $((5 * KILLS)) ]; do
            launches=$((launches + 1))
            kill_at_random worker
            if [ "$KILLED" = 1 ]; then
                k=$((k + 1)); [ "$(running)" -gt 0 ] && mid=$((mid + 1))
            else
                f=$((f + 1))
            fi
            kill -0 "$CPID" 2>/dev/null || finished
        done
        # One worker to the end of the current run, then compare.
        worker >/dev/null 2>>"$WORK/stderr.log"
        wait "$CPID" || echo "worker: coordinator of run kp$run exited with status $?" >>"$WORK/stderr.log"
        c=$((c + 1)); [ "$(fingerprint "$WORK/worker-parts-best")" = "$want" ] || bad=$((bad + 1))
        report worker $k $f $c $bad "$(leftovers "$WORK" "$WORK/worker-parts-run")" $mid
    fi
fi

echo "stderr of every run: $WORK/stderr.log"
exit $FAILED
