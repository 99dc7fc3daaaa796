#!/usr/bin/env bash
# The parallel-kernel tests under ThreadSanitizer, at a cost CI can pay (issue #24 part 5).
#
#   scripts/check/tsan-kernels.sh [swift test arguments…]      (default: --filter "$TSAN_KERNEL_TESTS" below)
#
# Builds the package in TSan/ (the main suite's parallel-kernel test files over the floors that hold the kernels:
# core, checkpoint, merge, models) in release with `--sanitize=thread` and the flags of scripts/test.sh, and runs
# the suites that drive the kernels on several threads with `halt_on_error=1`: the first data race ThreadSanitizer
# reports stops the run and fails it. (The package also compiles the files these suites need from their
# neighbours; `--filter .` runs every suite it holds, the mergekit cases of MergePipelineTests.swift included.)
# `scripts/test.sh` runs it after the fuzz step (TSAN_KERNELS=0 leaves it out). The whole suite under both
# sanitizers is scripts/check/sanitizers.sh (a full sanitized build; not in CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
flags=(-c release -Xswiftc -target-cpu -Xswiftc native --sanitize=thread)
start=$(date +%s)
swift build --package-path TSan "${flags[@]}" --build-tests >&2
built=$(date +%s)
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
# parallelChunks and the thread team; merges on two threads against one (whole tensors, seeded draws; every case
# of ChunkedMergeTests, one per method and dtype: 98 s under ThreadSanitizer on a quiet machine, and the path of
# the race the whole-suite run found in ChunkedCuts); sparsification's chunked draws; GEMV and attention split
# over the threads; the backward kernels; a fused MoE tensor read from its stored experts across three chunks.
kernel_tests='ParallelTests|ParallelTeamTests|ChunkedMergeTests|fusedTiesAcrossChunksMatchesMergekit'
kernel_tests+='|sameBytesAtAnyThreadCount|SeededMergeTests|SparsificationTests|ThreadedKernelTests|BackwardKernelTests'
[ $# -eq 0 ] && set -- --filter "${TSAN_KERNEL_TESTS:-$kernel_tests}"
status=0
swift test --package-path TSan "${flags[@]}" --skip-build "$@" || status=$?
echo "tsan kernels: build $(( built - start )) s, tests $(( $(date +%s) - built )) s, status $status" >&2
exit $status
