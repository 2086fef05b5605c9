#!/bin/sh
# A fresh Debian 12 machine to all tests: dependencies, build, CTest, the fuzzers
# (BIOESP_FUZZ_SECONDS each, default 15: CI must stay under 40 minutes; 0 skips them), then the async API under ThreadSanitizer
# (BIOESP_TSAN=0 skips it).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j 2
seconds=${BIOESP_FUZZ_SECONDS:-15}
if [ "$seconds" -gt 0 ]; then "$root/tests/fuzz/run.sh" "$seconds"; fi
if [ "${BIOESP_TSAN:-1}" != 0 ]; then "$root/tests/tsan.sh"; fi
