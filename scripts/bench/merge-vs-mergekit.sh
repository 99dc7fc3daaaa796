#!/usr/bin/env bash
# Benchmark: amalgam merge against mergekit 0.1.5 on the same machine, in the same run.
# Models: random Llama-shaped bf16 checkpoints (0.49 GB each) written by `amalgam-bench synth-models`.
# Cases: linear merge of 2 models; TIES merge of 3 fine-tunes + base. Inputs are read once before each
# tool runs, so both see a warm page cache. Prints wall times, the ratios and peak RSS values, our throughput
# beside the page-cache I/O floor (cat) and memcpy, all measured in the same run.
# Needs: mergekit 0.1.5 in the reference environment (scripts/refenv.sh builds it at $AMALGAM_REFENV,
# by default under ~/.cache/amalgam/refenv), and GNU time.
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV=$(dirname "$(dirname "$(scripts/refenv.sh)")")
WORK=${BENCH_DIR:-bench-data}
scripts/setup-system.sh
dpkg -s time >/dev/null 2>&1 || apt-get install -y -qq time >/dev/null
scripts/build.sh >/dev/null
mkdir -p "$WORK"
.build/release/amalgam-bench synth-models --out "$WORK/models" ${SYNTH_ARGS:-}
M=$(cd "$WORK/models" && pwd)
cat > "$WORK/linear.yml" <<YML
models:
  - model: $M/base
    parameters: {weight: 0.6}
  - model: $M/ft1
    parameters: {weight: 0.4}
merge_method: linear
dtype: bfloat16
YML
cat > "$WORK/ties.yml" <<YML
models:
  - model: $M/ft1
    parameters: {weight: 0.5, density: 0.5}
  - model: $M/ft2
    parameters: {weight: 0.3, density: 0.5}
  - model: $M/ft3
    parameters: {weight: 0.2, density: 0.5}
merge_method: ties
base_model: $M/base
parameters: {normalize: true}
dtype: bfloat16
YML
warm() { cat "$M"/*/*.safetensors > /dev/null; }
measure() { # label, command...
    local label=$1; shift
    warm
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" > "$WORK/$label.log" 2>&1 || { cat "$WORK/$label.log"; exit 1; }
    cat "$WORK/time.txt"
}
memcpy=$(.build/release/amalgam-bench memcpy --quiet)
# Two amalgam runs per case: the default (`--sync machine`: the output is flushed to disk before the folder
# takes its name) and `--sync process` (nothing waits for the disk; mergekit does not flush either).
# The I/O floor: the same bytes read from the page cache and written to a new file by two cats at once (no merging).
printf "%-8s %10s %10s %11s %9s %9s %11s %11s %12s %12s %10s\n" case amalgam_s amalgam_s mergekit_s speedup speedup \
    amalgam_MB mergekit_MB amalgam_GB/s amalgam_GB/s floor_GB/s
printf "%-8s %10s %10s %11s %9s %9s %11s %11s %12s %12s %10s\n" "" machine process "" machine process machine "" machine process ""
for case in linear ties; do
    rm -rf "$WORK/out-amalgam" "$WORK/out-amalgam-p" "$WORK/out-mergekit" "$WORK/floor.bin"
    read -r a_s a_kb < <(measure "$case-amalgam" .build/release/amalgam merge --quiet "$WORK/$case.yml" "$WORK/out-amalgam")
    read -r p_s p_kb < <(measure "$case-amalgam-process" .build/release/amalgam merge --quiet --sync process "$WORK/$case.yml" "$WORK/out-amalgam-p")
    read -r m_s m_kb < <(measure "$case-mergekit" "$ENV/bin/mergekit-yaml" "$WORK/$case.yml" "$WORK/out-mergekit" --no-copy-tokenizer --quiet)
    inputs=$([ $case = linear ] && echo "$M/base $M/ft1" || echo "$M/base $M/ft1 $M/ft2 $M/ft3")
    read -r f_s f_kb < <(measure "$case-floor" sh -c "cat $(for d in $inputs; do printf '%s/*.safetensors ' "$d"; done) > /dev/null & cat $WORK/out-amalgam/*.safetensors > $WORK/floor.bin; wait")
    rm -f "$WORK/floor.bin"
    bytes=$(( $(du -cb "$M"/base/*.safetensors | tail -1 | cut -f1) * ( $([ $case = linear ] && echo 2 || echo 4) + 1 ) ))
    awk -v c=$case -v a=$a_s -v p=$p_s -v m=$m_s -v f=$f_s -v ak=$a_kb -v mk=$m_kb -v b=$bytes 'BEGIN {
        printf "%-8s %10.2f %10.2f %11.2f %8.1fx %8.1fx %11.0f %11.0f %12.2f %12.2f %10.2f\n", c, a, p, m, m/a, m/p, ak/1024, mk/1024, b/a/1e9, b/p/1e9, b/f/1e9 }'
done
echo "memcpy bandwidth measured in this run: $memcpy GB/s (bytes read + written per second)"
echo "floor: cat of the inputs to /dev/null beside cat of amalgam's output into a new file, on both cores at once (page cache only, no merging, no flush)"
