#!/usr/bin/env bash
# README command 1: install, fetch real data, build, and run Amalgam's main job on it (docs/main-job.md):
# the two SmolLM2-135M specialists (Shakespeare, Milton; scripts/make-specialists.sh, cached and resumable),
# merged by average, TIES, DAM, M2N2 and CMA-ES, every model evaluated on held-out passages of both domains,
# and one report page with the plots of every run (amalgam report → OUT/report.html).
#   scripts/main-job.sh            the short version (outputs in work-data/quick/; docs/main-job.md has its times)
#   scripts/main-job.sh --full     the long versions docs/ reports (hours; outputs in work-data/): 16-step
#                                  specialists, DAM 100 steps, M2N2 and CMA-ES 40 passes, plus the GGUF and
#                                  example merges and the next-line tasks
# Every step prints its wall time and peak memory, and records them in OUT/steps.tsv (drawn in the report).
# A second run keeps what is finished (delete an output to redo it) and continues an interrupted run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
full=false
for arg in "$@"; do
    case "$arg" in
        --full) full=true ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "main-job.sh: unknown argument $arg (use --full or nothing)" >&2; exit 2 ;;
    esac
done
scripts/setup-system.sh
scripts/fetch-data.sh
scripts/build.sh
bin=.build/release/amalgam

# The sizes of the two versions. Short: 4 fine-tune steps per specialist; M2N2 and CMA-ES 8 fitness passes
# each on 2 + 2 validation passages (≈ 2,400 tokens forward per pass, ≈ 19,500 in all); DAM 10 steps of
# 2 × 128 tokens per source (≈ 2,050 forward-token equivalents per step, as docs/evolve.md counts them:
# ≈ 20,500, the same budget); 5 + 5 held-out test passages for every model (a passage is scored whole,
# ≈ 7 CPU-s each: 20 + 20 for eight models is ≈ 36 CPU-min, past the budget by itself). Full: the settings
# docs/ measured (20 + 20 passages).
if $full; then
    out=work-data spec_steps=16 budget=40 train_examples=5 search_test=20 dam_steps=100 dam_seq=128 limit=20
else
    out=work-data/quick spec_steps=4 budget=8 train_examples=2 search_test=2 dam_steps=10 dam_seq=128 limit=5
fi
spec="$out/specialists"
merges="$spec/merges"
evals="$out/eval"
configs="$out/configs"
timing="$out/steps.tsv"
mkdir -p "$out" "$merges" "$evals" "$configs"
[ -s "$timing" ] || printf 'step\tseconds\tpeak_rss_kib\n' > "$timing"
began=$(date +%s)
echo "main job ($($full && echo full || echo short)) in $out, started $(date -u '+%F %T') UTC; load:$(cut -d' ' -f1-3 /proc/loadavg)"

# timed NAME COMMAND…: runs the command, prints its wall time and peak memory (of its largest process) and
# records them in the timing table under NAME (replacing an earlier row of that name).
timed() {
    local name="$1"; shift
    printf '\n== %s\n   %s\n' "$name" "$*"
    /usr/bin/time -f '%e\t%M' -o "$out/.time" "$@"
    local seconds rss
    IFS=$'\t' read -r seconds rss < <(tail -n 1 "$out/.time")
    awk -F'\t' -v n="$name" '$1 != n' "$timing" > "$timing.partial"
    printf '%s\t%s\t%s\n' "$name" "$seconds" "$rss" >> "$timing.partial"
    mv "$timing.partial" "$timing"
    printf -- '-- %s: %s s wall, peak %d MiB (load:%s)\n' "$name" "$seconds" $((rss / 1024)) "$(cut -d' ' -f1-3 /proc/loadavg)"
}
keep() { printf '\n== %s: keeping %s\n' "$1" "$2"; }

if $full; then
    timed "inspect the SmolLM2 GGUF" $bin inspect --summary data/SmolLM2-135M-Instruct.Q4_1.gguf
    [ -d data/smollm2-135m-instruct ] || timed "convert GGUF (Q4_1) -> Hugging Face folder (bf16)" \
        $bin convert data/SmolLM2-135M-Instruct.Q4_1.gguf data/smollm2-135m-instruct --dtype bf16
    timed "merge examples/ties-fixtures.yml (tiny fixture models)" $bin merge --overwrite examples/ties-fixtures.yml "$out/ties-fixtures"
    timed "merge examples/smollm2-frankenmerge.yml (30 -> 40 layers from the GGUF)" \
        $bin merge --overwrite examples/smollm2-frankenmerge.yml "$out/smollm2-40-layers"
    timed "merge examples/smollm2-slerp.yml to a Q8_0 GGUF" \
        $bin merge --overwrite examples/smollm2-slerp.yml "$out/smollm2-slerp.Q8_0.gguf" --out-format gguf --out-type q8_0
fi

# 1. The specialists (each step of make-specialists.sh keeps what is finished and resumes a killed fine-tune).
if [ -f "$spec/shakespeare/config.json" ] && [ -f "$spec/milton/config.json" ]; then
    keep "specialists ($spec_steps fine-tune steps each)" "$spec"
else
    timed "specialists ($spec_steps fine-tune steps each)" scripts/make-specialists.sh "$spec" "$spec_steps"
fi

# 2. Average and TIES (the committed recipes, with the specialists' folder of this version).
recipe() { sed "s#work-data/specialists#$spec#g" "$1" > "$configs/$(basename "$1")"; echo "$configs/$(basename "$1")"; }
for m in linear:average ties-d05:ties-d05 ties-d1:ties-d1; do
    src=${m%%:*} name=${m#*:}
    [ "$name" = ties-d1 ] && ! $full && continue
    if [ -f "$merges/$name/config.json" ]; then keep "merge $name" "$merges/$name"; continue; fi
    timed "merge $name (examples/specialists-$src.yml)" $bin merge "$(recipe "examples/specialists-$src.yml")" "$merges/$name"
done

# 3. DAM (examples/specialists-dam.yml with this version's steps and sequence length).
sed -e "s#work-data/specialists#$spec#g" -e "s/^steps: .*/steps: $dam_steps/" -e "s/^seq_len: .*/seq_len: $dam_seq/" \
    -e "s/^checkpoint_every: .*/checkpoint_every: $(( dam_steps <= 10 ? 2 : 10 ))/" examples/specialists-dam.yml > "$configs/dam.yml"
if [ -f "$merges/dam/config.json" ]; then
    keep "DAM ($dam_steps steps)" "$merges/dam"
else
    resume=(); [ -f "$spec/run-dam/run.sqlite" ] && resume=(--resume)
    timed "DAM ($dam_steps steps)" $bin dam "$configs/dam.yml" "$merges/dam" --log-every $(( dam_steps / 8 > 0 ? dam_steps / 8 : 1 )) "${resume[@]}"
fi

# 4. M2N2 and CMA-ES at the same budget of fitness passes, on the same validation passages.
for method in m2n2 cmaes; do
    # (the search's own test score of its best model is cut to 2 + 2 passages in the short version: step 5
    # scores every model on the same 20 + 20.)
    sed -e "s#work-data/specialists#$spec#g" -e "s/^budget: .*/budget: $budget/" -e "s/train_examples: .*/train_examples: $train_examples/" \
        -e "s/test_examples: .*/test_examples: $search_test/" \
        -e "s#^output: .*#output: $merges/$method#" "examples/evolve-$method-specialists.yml" > "$configs/evolve-$method.yml"
    if [ -f "$merges/$method/config.json" ]; then keep "evolve $method ($budget passes)" "$merges/$method"; continue; fi
    timed "evolve $method ($budget passes)" $bin evolve "$configs/evolve-$method.yml" --run-dir "$out/run-$method" --resume
done

# 5. Every model on the same held-out test passages of both domains.
models=(base shakespeare milton merges/average merges/ties-d05 merges/dam merges/m2n2 merges/cmaes)
$full && models+=(merges/ties-d1)
for m in "${models[@]}"; do
    name=${m#merges/}
    if [ -s "$evals/$name/milton-lm.summary.json" ]; then keep "eval $name" "$evals/$name"; continue; fi
    timed "eval $name (shakespeare-lm, milton-lm, $limit passages each)" \
        $bin eval "$spec/$m" tasks/shakespeare-lm.jsonl tasks/milton-lm.jsonl --limit "$limit" --out "$evals/$name" --quiet
    if $full; then
        timed "eval $name (next-line choice)" \
            $bin eval "$spec/$m" tasks/shakespeare-nextline.jsonl tasks/milton-nextline.jsonl --limit 50 --out "$evals/$name" --quiet
    fi
done

# 6. The report: scores and paired differences against the average, every run's history, every step's time.
inputs=("$evals/average")
for m in "${models[@]}"; do [ "${m#merges/}" = average ] || inputs+=("$evals/${m#merges/}"); done
inputs+=("$spec/run-shakespeare" "$spec/run-milton" "$spec/run-dam" "$out/run-m2n2" "$out/run-cmaes" "$timing")
$bin report "${inputs[@]}" --reference "$evals/average" --out "$out/report.html" \
    --title "Amalgam main job ($($full && echo full || echo short)): SmolLM2-135M specialists merged five ways"
echo
echo "main job done in $(( $(date +%s) - began )) s (this run; load:$(cut -d' ' -f1-3 /proc/loadavg)); open $out/report.html"
