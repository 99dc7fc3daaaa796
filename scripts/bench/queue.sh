#!/usr/bin/env bash
# The PostgreSQL work queue's coordination cost (docs/distributed.md "Figures"): starts a throw-away server
# (scripts/check/postgres.sh), runs `amalgam-bench queue` against it (1, 2, 4 worker threads; items/s and
# claim+finish milliseconds per item), and stops it.
#   scripts/bench/queue.sh [ITEMS] [EVAL_MS]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release -Xswiftc -target-cpu -Xswiftc native --product amalgam-bench >/dev/null
bench=$(swift build -c release -Xswiftc -target-cpu -Xswiftc native --show-bin-path)/amalgam-bench
scripts/check/postgres.sh run sh -c "\"$bench\" queue \"\$AMALGAM_TEST_POSTGRES\" ${1:-400} ${2:-0}"
