#!/usr/bin/env bash
# README command 1: install, fetch real data, build, and run Amalgam's main job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
scripts/fetch-data.sh
scripts/build.sh
bin=.build/release/amalgam
echo "== amalgam inspect (the fetched SmolLM2 GGUF)"
$bin inspect --summary data/SmolLM2-135M-Instruct.Q4_1.gguf
