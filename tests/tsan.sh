#!/bin/sh
# Builds bioesp and the C API generation test with ThreadSanitizer and runs it: async jobs queued
# on one model, running on two, cancelled, freed while running. Any report fails the run.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-tsan
# -O1 with line tables only (-g1): reports keep file:line, and the LibTorch-heavy build takes far
# less time than with full debug information.
flags="-fsanitize=thread -O1 -g1"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None "-DCMAKE_C_FLAGS=$flags" \
  "-DCMAKE_CXX_FLAGS=$flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$build" --target test_generate
# LibTorch, c10 and OpenMP are not built with TSan, so their own synchronisation is invisible to it:
# the memory accesses those libraries make themselves are ignored (called_from_lib); every access
# in bioesp's instrumented code is still checked. Names are the exact sonames, which libtsan needs.
supp=$(mktemp /tmp/bioesp-tsan-XXXXXX)
trap 'rm -f "$supp"' EXIT
torch=$(ldd "$build/lib/libbioesp.so.0" | awk '/libtorch_cpu/ {print $1}')
c10=$(ldd "$build/lib/libbioesp.so.0" | awk '/libc10\.so/ {print $1}')
printf 'called_from_lib:libgomp.so.1\ncalled_from_lib:%s\ncalled_from_lib:%s\n' "$torch" "$c10" > "$supp"
BIOESP_REFERENCE_DIR=${BIOESP_REFERENCE_DIR:-$root/../shared/reference} OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  TSAN_OPTIONS="suppressions=$supp halt_on_error=1 exitcode=66 report_signal_unsafe=0" \
  "$build/tests/test_generate"
echo "ThreadSanitizer: 1 passed, 0 failed"
