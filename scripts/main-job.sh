#!/usr/bin/env bash
# README command 1: install, fetch real data, build, and run Amalgam's main job on it:
# inspect the fetched SmolLM2 GGUF, convert it to a Hugging Face folder, run merges from examples/
# (tiny fixtures, then SmolLM2 itself, written as a folder and as a Q8_0 GGUF), and inspect the results;
# then fine-tune the SmolLM2 specialists (scripts/make-specialists.sh) and evaluate base and specialists.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
scripts/fetch-data.sh
scripts/build.sh
bin=.build/release/amalgam
out=work-data
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }

step "amalgam inspect --summary data/SmolLM2-135M-Instruct.Q4_1.gguf"
$bin inspect --summary data/SmolLM2-135M-Instruct.Q4_1.gguf

step "amalgam convert: GGUF (Q4_1) -> Hugging Face folder (bf16)"
[ -d data/smollm2-135m-instruct ] || $bin convert data/SmolLM2-135M-Instruct.Q4_1.gguf data/smollm2-135m-instruct --dtype bf16

step "amalgam merge examples/ties-fixtures.yml (TIES over the tiny fixture models)"
$bin merge --overwrite examples/ties-fixtures.yml "$out/ties-fixtures"
$bin inspect --summary "$out/ties-fixtures"

step "amalgam merge examples/smollm2-frankenmerge.yml (30 -> 40 layers, straight from the GGUF)"
$bin merge --overwrite examples/smollm2-frankenmerge.yml "$out/smollm2-40-layers"
$bin inspect --summary "$out/smollm2-40-layers"

step "amalgam merge examples/smollm2-slerp.yml --out-format gguf --out-type q8_0"
$bin merge --overwrite examples/smollm2-slerp.yml "$out/smollm2-slerp.Q8_0.gguf" --out-format gguf --out-type q8_0
$bin inspect --summary "$out/smollm2-slerp.Q8_0.gguf"

step "scripts/make-specialists.sh: SmolLM2 fine-tuned on Shakespeare and on Milton (README \"Specialists\")"
scripts/make-specialists.sh "$out/specialists"

step "amalgam merge: the two specialists averaged, and TIES over base at density 0.5 and 1 (examples/specialists-*.yml)"
$bin merge --overwrite examples/specialists-linear.yml "$out/specialists/merges/average"
$bin merge --overwrite examples/specialists-ties-d05.yml "$out/specialists/merges/ties-d05"
$bin merge --overwrite examples/specialists-ties-d1.yml "$out/specialists/merges/ties-d1"

# Held-out language modelling and next-line choice on both domains, on the same subsets as README's table.
for m in base shakespeare milton merges/average merges/ties-d05 merges/ties-d1; do
    step "amalgam eval $out/specialists/$m (both domains)"
    $bin eval "$out/specialists/$m" tasks/shakespeare-lm.jsonl tasks/milton-lm.jsonl --limit 20 --out "$out/eval/${m#merges/}"
    $bin eval "$out/specialists/$m" tasks/shakespeare-nextline.jsonl tasks/milton-nextline.jsonl --limit 50 --out "$out/eval/${m#merges/}"
done
