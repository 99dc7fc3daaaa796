#!/bin/sh
# Sweeps DAM's settings on the divergent digits pair, a stage at a time, each stage starting from the best
# setting so far, ranked by DAM's union TRAINING accuracy (mean over runs 0..RUNS-1). The test split is
# never looked at here. Stages: lr × T; f × initialisation × bias initialisation (both at the comparison's
# budget, 300 forward passes = 1683 steps of 64 examples per source); steps (500, 1683, 5613 = 1000 passes).
# Usage: scripts/experiments/dam-digits-sweep.sh [RUNS] [OUT_DIR]   (after scripts/build.sh)
set -eu
RUNS=${1:-3}
OUT=${2:-work-data/dam-sweep}
BIN=${AMALGAM:-.build/release/amalgam}
mkdir -p "$OUT"
: > "$OUT/stage.txt"
run() {  # run OPTIONS...: prints "TRAIN_MEAN|OPTIONS"
    name=$(echo "$*" | tr ' ' '_' | tr -d '-')
    [ -f "$OUT/$name.txt" ] || "$BIN" experiment digits-comparison --runs "$RUNS" --no-m2n2 --cmaes-method none --no-released-dam --lr 1e-3 --temperature 2 --f tanh \
        --data fixtures/digits/digits.csv --budget 300 --json "$OUT/$name.json" "$@" > "$OUT/$name.txt"
    # the DAM row: test union, test 0-4, test 5-9, train union (mean ± std each), …; keep the train column only
    train=$(grep '^DAM ' "$OUT/$name.txt" | awk '{print $11}')
    echo "$train|$*" | tee -a "$OUT/stage.txt"
}
best() { sort -t'|' -k1,1 -g -r "$OUT/stage.txt" | head -1 | cut -d'|' -f2; }

for lr in 1e-3 3e-3 1e-2 3e-2; do
    for t in 1 2 4; do run --lr "$lr" --temperature "$t"; done
done
B1=$(best); echo "stage 1 best: $B1"; : > "$OUT/stage.txt"
for f in tanh identity; do
    for init in uniform softmax-random; do
        for bias in mean one; do run $B1 --f "$f" --initialisation "$init" --bias-init "$bias"; done
    done
done
B2=$(best); echo "stage 2 best: $B2"; : > "$OUT/stage.txt"
for steps in 500 1683 5613; do run $B2 --budget 0 --steps "$steps"; done
echo "stage 3 best: $(best)"
