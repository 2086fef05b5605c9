#!/bin/sh
# A fresh Debian 12 machine to all tests: dependencies, build, CTest, then the fuzzers
# (BIOESP_FUZZ_SECONDS each, default 60; 0 skips them).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j 2
seconds=${BIOESP_FUZZ_SECONDS:-60}
if [ "$seconds" -gt 0 ]; then "$root/tests/fuzz/run.sh" "$seconds"; fi
