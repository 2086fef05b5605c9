#!/bin/sh
# A fresh Debian 12 machine to all tests: dependencies, build, CTest, the fuzzers
# (BIOESP_FUZZ_SECONDS each, default 15: CI must stay under 40 minutes; 0 skips them), then the async API under ThreadSanitizer
# (BIOESP_TSAN=0 skips it).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
# Two tests at a time on these 2 cores: one intra-op thread each, and OpenMP's threads sleeping
# instead of spinning where a test asks for two (spinning against the other test made pairs of
# tests 2.6 times slower: docs/performance.md, 2026-12-03).
OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive ctest --test-dir "$root/build" --output-on-failure -j 2
seconds=${BIOESP_FUZZ_SECONDS:-15}
if [ "$seconds" -gt 0 ]; then "$root/tests/fuzz/run.sh" "$seconds"; fi
if [ "${BIOESP_TSAN:-1}" != 0 ]; then "$root/tests/tsan.sh"; fi
