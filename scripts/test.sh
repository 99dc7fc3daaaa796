#!/usr/bin/env bash
# README command 2: install, build in release for this CPU, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
scripts/build.sh
swift test -c release -Xswiftc -target-cpu -Xswiftc native "$@"
