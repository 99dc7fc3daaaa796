#!/usr/bin/env bash
# Builds Amalgam in release for this machine's CPU (without -target-cpu, swiftc targets the x86-64
# baseline: no FMA, no F16C, and SIMD code runs hundreds of times slower).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -target-cpu -Xswiftc native "$@"
