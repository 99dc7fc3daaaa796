#!/usr/bin/env bash
# Every GGUF Amalgam writes loads in llama.cpp and greedy-decodes the same tokens as `amalgam generate`;
# every type llama.cpp's quantizer makes of SmolLM2 is read by Amalgam or refused naming the type.
#
#   scripts/check/gguf-llamacpp.sh [--skip-quants] [--keep DIR]
#
# Needs the release build (scripts/build.sh), data/ (scripts/fetch-data.sh) and the reference environment
# (scripts/refenv.sh builds it once, llama-cpp-python 0.3.36 included, and reuses it after). Prints two
# tables and exits non-zero on any failure. See docs/gguf.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
python="$(scripts/refenv.sh --python | tail -n 1)"
exec "$python" scripts/check/gguf_llamacpp.py "$@"
