#!/bin/sh
# Sweeps DAM's settings on the divergent digits pair WITHOUT touching the test split: it runs the comparison on
# the first 1437 images of the digits file only (the real training split), which the experiment splits 80/20
# again: pairs are trained on the first 1149 images and every setting is ranked by DAM's union accuracy on
# images 1150-1437 (validation, mean over runs 0..RUNS-1). A stage at a time, each from the best so far:
# lr × T (T 4 only at lr 1e-3: it ranked last there and on training accuracy at every lr in a first sweep);
# f × initialisation (bias initialisation mean: `one` changed nothing in that first sweep), both at the
# comparison's budget (BUDGET forward passes = the same number of DAM steps as in the comparison).
# 3 runs of one setting take about 20 CPU-s.
# Usage: scripts/experiments/dam-digits-sweep.sh [RUNS] [OUT_DIR] [BUDGET]   (after scripts/build.sh)
set -eu
RUNS=${1:-3}
OUT=${2:-work-data/dam-sweep}
BUDGET=${3:-1000}
BIN=${AMALGAM:-.build/release/amalgam}
mkdir -p "$OUT"
TRAIN_ONLY="$OUT/digits-train-split.csv"
head -n 1437 fixtures/digits/digits.csv > "$TRAIN_ONLY"
: > "$OUT/stage.txt"
run() {  # run OPTIONS...: prints "VALIDATION_MEAN|OPTIONS"
    name=$(echo "$*" | tr ' ' '_' | tr -d '-')
    [ -f "$OUT/$name.txt" ] || { "$BIN" experiment digits-comparison --runs "$RUNS" --no-m2n2 --cmaes-method none \
        --no-released-dam --lr 1e-3 --temperature 2 --f tanh --initialisation uniform --bias-init mean \
        --data "$TRAIN_ONLY" --budget "$BUDGET" --json "$OUT/$name.json" "$@" > "$OUT/$name.txt.tmp" \
        && mv "$OUT/$name.txt.tmp" "$OUT/$name.txt"; }  # a killed sweep leaves no half-written result behind
    # the DAM row: "test" union (here: validation), 0-4, 5-9, train union (mean ± std each), …; keep validation union
    validation=$(grep '^DAM ' "$OUT/$name.txt" | awk '{print $2}')
    echo "$validation|$*" | tee -a "$OUT/stage.txt"
}
best() { sort -t'|' -k1,1 -g -r -s "$OUT/stage.txt" | head -1 | cut -d'|' -f2; }

run --lr 1e-3 --temperature 4
for lr in 1e-3 3e-3 1e-2 3e-2 1e-1; do
    for t in 1 2; do run --lr "$lr" --temperature "$t"; done
done
B1=$(best); echo "stage 1 best: $B1"; : > "$OUT/stage.txt"
for f in tanh identity; do
    for init in uniform softmax-random; do
        run $B1 --f "$f" --initialisation "$init"
    done
done
echo "stage 2 best: $(best)"
