#!/bin/sh
# The M2N2 digits figure (SakanaAI/natural_niches, figure.png) cell by cell: every curve of both panels (and
# M2N2 without split point and without attraction from scratch, not in the figure),
# RUNS runs (seeds 0..RUNS-1) each, one `amalgam experiment m2n2-digits` per cell. Each cell writes
# OUT_DIR/<setting>-<method>.json (the command that made it, mean ± std, every run's test/train accuracy and
# wall time, the cell's wall time, and every run's accuracy-against-passes curve) and its text table; a cell
# whose JSON exists is not rerun (delete it to rerun). At the end OUT_DIR/table.md holds the markdown table
# beside the published values.
# Usage: scripts/experiments/m2n2-digits.sh [RUNS] [OUT_DIR] [SCRATCH_PASSES] [PRETRAINED_PASSES]   (after scripts/build.sh)
#   RUNS defaults to 10 (the release's), the budgets to the release's 50000 and 10000 forward passes.
#   CELLS="scratch:M2N2 pretrained:GA" limits the cells; JOBS (default 2) runs that many runs of a cell at once
#   (one thread each); NICE (default 10) is the niceness.
set -eu
RUNS=${1:-10}
OUT=${2:-results/m2n2-digits}
SCRATCH=${3:-50000}
PRETRAINED=${4:-10000}
BIN=${AMALGAM:-.build/release/amalgam}
JOBS=${JOBS:-2}
NICE=${NICE:-10}
ALL="scratch:M2N2 scratch:CMA-ES scratch:no_crossover scratch:GA_no_crossover scratch:GA scratch:MAP-Elites
scratch:no_split_point scratch:no_attraction pretrained:M2N2 pretrained:no_attraction pretrained:MAP-Elites pretrained:no_split_point pretrained:GA
pretrained:brute-force_slerp"
CELLS=${CELLS:-$ALL}
mkdir -p "$OUT"
for cell in $CELLS; do
    setting=${cell%%:*}
    method=$(echo "${cell#*:}" | tr '_' ' ')
    slug=$(echo "$method" | tr 'A-Z ' 'a-z-')
    json="$OUT/$setting-$slug.json"
    [ -f "$json" ] && { echo "$json exists, kept"; continue; }
    passes=$SCRATCH; [ "$setting" = pretrained ] && passes=$PRETRAINED
    runs=$RUNS; [ "$method" = "brute-force slerp" ] && runs=1  # one pair of seeds: one number
    echo "$(date -u +%H:%M:%S) $setting $method: $runs runs of $passes passes"
    AMALGAM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n "$NICE" "$BIN" experiment m2n2-digits --setting "$setting" \
        --method "$method" --runs "$runs" --passes "$passes" --jobs "$JOBS" --json "$json" > "$OUT/$setting-$slug.txt.tmp"
    mv "$OUT/$setting-$slug.txt.tmp" "$OUT/$setting-$slug.txt"
    # amalgam writes the JSON under a temporary name and renames it when complete: a killed cell leaves none
done

# The markdown table: one row per method (and the seeds), test and train accuracy mean ± std (ddof 0) in %,
# the published mean, the mean wall time of a run and the cell's wall time.
{
    echo "| setting | passes | method | runs | test acc (%) | train acc (%) | published (%) | s/run | cell wall (s) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for cell in $ALL; do
        setting=${cell%%:*}
        slug=$(echo "${cell#*:}" | tr '_' ' ' | tr 'A-Z ' 'a-z-')
        json="$OUT/$setting-$slug.json"
        [ -f "$json" ] || continue
        jq -r '. as $r | .rows[] |
            def ms(a): (a | add / length) as $m | [$m * 100, ((a | map((. - $m) * (. - $m)) | add / length) | sqrt) * 100];
            ms(.test_accuracies) as $t | ms(.train_accuracies) as $s |
            "| \(.setting) | \(if (.method | startswith("seed")) then "-" elif .method == "brute-force slerp" then "10000 weights" else .forward_passes end) | \(.method) | \(.test_accuracies | length) | \($t[0] * 10 | round / 10) ± \($t[1] * 10 | round / 10) | \($s[0] * 10 | round / 10) ± \($s[1] * 10 | round / 10) | \(if .published_percent then "≈ \(.published_percent)" else "-" end) | \((.seconds | add / length) * 10 | round / 10) | \($r.wall_seconds | round) |"' "$json"
    done
} > "$OUT/table.md.tmp"
mv "$OUT/table.md.tmp" "$OUT/table.md"
cat "$OUT/table.md"
