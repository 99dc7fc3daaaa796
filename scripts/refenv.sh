#!/usr/bin/env bash
# Builds the reference environment: the Python libraries Amalgam is checked against (fixture scripts in
# scripts/fixtures/, check scripts, benchmarks' reference sides), pinned, in one venv.
#
#   py=$(scripts/refenv.sh)      # create or complete it; prints its python's path (progress on stderr)
#
# Where: $AMALGAM_REFENV, by default ${XDG_CACHE_HOME:-$HOME/.cache}/amalgam/refenv. Every script that
# needs the references runs "$(scripts/refenv.sh)" as its python, so that one variable places it.
# Idempotent: a complete environment (its stamp file names the pins below) is left alone. llama-cpp-python
# compiles llama.cpp from its sdist (the first build took 78 min on this 2-core machine
# under heavy load, 2026-12-07; torch and its CUDA wheels need ≈ 7 GB); it is used only as a reference and a
# client in scripts, never by the product.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir="${AMALGAM_REFENV:-${XDG_CACHE_HOME:-$HOME/.cache}/amalgam/refenv}"

# The pins. torch comes from PyPI (its CPU kernels are what the fixtures used; no CUDA is needed at run time).
pins=(
    "torch==2.15.0"
    "transformers==5.23.0"
    "mergekit==0.1.5"
    "peft==0.21.2"
    "tokenizers==0.23.3"
    "safetensors==0.8.0"
    "gguf==0.19.0"
    "numpy"
    "lm_eval==0.4.13"
    "cma==4.5.0"     # fixtures/cmaes/reference.json records cma 4.5.0
    "jax[cpu]==0.4.31"
    "llama-cpp-python==0.3.36"
)
stamp="$env_dir/.amalgam-refenv"
want="$(printf '%s\n' "${pins[@]}")"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "refenv: building $env_dir (pinned: ${pins[*]})" >&2
    mkdir -p "$(dirname "$env_dir")"
    [ -x "$env_dir/bin/python" ] || python3 -m venv "$env_dir"
    "$env_dir/bin/pip" install --quiet --upgrade pip >&2
    # llama.cpp builds with the host's CPU features, like our own build (-target-cpu native).
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON}" "$env_dir/bin/pip" install --quiet "${pins[@]}" >&2
    printf '%s\n' "$want" > "$stamp.partial" && mv "$stamp.partial" "$stamp"
fi
echo "$env_dir/bin/python"
