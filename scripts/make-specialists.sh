#!/usr/bin/env bash
# Makes the SmolLM2-135M specialists the LLM experiments merge (README "Specialists"):
#   OUT/base/         SmolLM2-135M-Instruct converted from the Q4_1 GGUF to an f32 Hugging Face folder
#   OUT/shakespeare/  base fine-tuned on tasks/train/shakespeare.jsonl (every parameter, STEPS AdamW steps)
#   OUT/milton/       base fine-tuned on tasks/train/milton.jsonl (same settings)
#   OUT/{shakespeare,milton}.log   each fine-tune's command line, output (loss per step, held-out loss
#                     before and after) and start/end times
#   OUT/run-{shakespeare,milton}/  checkpoints (every 4 steps), so a killed run continues where it stopped
# OUT is work-data/specialists and STEPS 16 unless given: scripts/make-specialists.sh [OUT [STEPS]]
# (the main job's short version makes 4-step specialists in work-data/quick/specialists).
# Idempotent: a finished output is kept (delete it to redo it); every output appears only when complete
# (amalgam writes under a temporary name and renames). The settings are those of the lead's run of
# 2026-11-23 (/work/specialists), which the README's tables measure.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-work-data/specialists}"
steps="${2:-16}"
bin=.build/release/amalgam
gguf=data/SmolLM2-135M-Instruct.Q4_1.gguf
step() { printf '\n== %s\n' "$*"; }

# The training text (tasks/train/ is not committed) and the held-out passages; make-tasks builds amalgam.
if [ ! -s tasks/train/shakespeare.jsonl ] || [ ! -s tasks/train/milton.jsonl ]; then
    step "scripts/make-tasks.sh (training text for the specialists)"
    scripts/make-tasks.sh
fi
[ -s "$gguf" ] || scripts/fetch-data.sh
[ -x "$bin" ] || scripts/build.sh --product amalgam
mkdir -p "$out"

if [ -f "$out/base/config.json" ]; then
    echo "keeping $out/base"
else
    step "amalgam convert $gguf $out/base --dtype f32"
    $bin convert "$gguf" "$out/base" --dtype f32
fi

for dom in shakespeare milton; do
    # Held-out loss before and after training: the 40 passages of tasks/$dom-lm.jsonl (finetune skips the
    # task file's header line; the lead's run read the same texts from a copy without it, heldout-$dom.jsonl).
    heldout="tasks/$dom-lm.jsonl"
    if [ -f "$out/$dom/config.json" ]; then
        echo "keeping $out/$dom"
        continue
    fi
    cmd=("$bin" finetune "$out/base" "tasks/train/$dom.jsonl" "$out/$dom"
         --steps "$steps" --seq-len 256 --batch-tokens 2048 --micro-batch-tokens 1024 --lr 1e-4 --min-lr 1e-5 --warmup 2
         --schedule cosine --clip 1.0 --seed 1 --eval-data "$heldout" --eval-sequences 8
         --run-dir "$out/run-$dom" --checkpoint-every 4)
    # A run folder left by an interrupted run (run.sqlite, or an older amalgam's checkpoint/) is continued:
    # finetune refuses a folder holding steps without --resume.
    if [ -f "$out/run-$dom/run.sqlite" ] || [ -f "$out/run-$dom/checkpoint/state.json" ]; then cmd+=(--resume); fi
    step "${cmd[*]}"
    { echo "# command (cwd $PWD): ${cmd[*]}"; date -u; } >> "$out/$dom.log"
    # One line per step (loss, learning rate, gradient norm, tokens/s, ETA) on the terminal and in the log.
    "${cmd[@]}" 2>&1 | tee -a "$out/$dom.log"
    date -u >> "$out/$dom.log"
done
step "specialists in $out: base, shakespeare, milton"
