#!/usr/bin/env bash
# The test suite under AddressSanitizer and ThreadSanitizer (issue #24 part 5).
#
#   scripts/check/sanitizers.sh [address|thread|both] [swift test arguments…]
#
# Each sanitizer has its own build folder (.build-asan, .build-tsan; gitignored), built in release with the
# flags of scripts/test.sh plus `--sanitize=…`, tests and the `amalgam` program included (the command tests
# run the sanitized program). Arguments after the first go to `swift test`, e.g. `--filter ParallelTests`.
# Not part of CI (a full sanitized build costs more than CI's own): CI runs the parallel-kernel tests under
# ThreadSanitizer through scripts/check/tsan-kernels.sh, a small package (TSan/) over the kernels' floors only.
set -euo pipefail
cd "$(dirname "$0")/../.."
which="${1:-both}"
shift || true
case "$which" in
    address) sanitizers=(address) ;;
    thread) sanitizers=(thread) ;;
    both) sanitizers=(address thread) ;;
    *) echo "usage: scripts/check/sanitizers.sh [address|thread|both] [swift test arguments…]" >&2; exit 2 ;;
esac
flags=(-c release -Xswiftc -target-cpu -Xswiftc native)
status=0
for s in "${sanitizers[@]}"; do
    case "$s" in address) dir=.build-asan ;; thread) dir=.build-tsan ;; esac
    start=$(date +%s)
    swift build "${flags[@]}" --sanitize="$s" --build-path "$dir" --build-tests
    built=$(date +%s)
    # halt_on_error: the first report fails the run (ASan does so by default; TSan only warns).
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
    # The Swift runtime keeps its metadata caches for the life of the process: no leak checking.
    export ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}"
    swift test "${flags[@]}" --sanitize="$s" --build-path "$dir" --skip-build "$@" || status=1
    echo "sanitizer $s: build $(( built - start )) s, tests $(( $(date +%s) - built )) s, status $status" >&2
done
exit $status
