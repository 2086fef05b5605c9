#!/bin/sh
# The C API generation test under ThreadSanitizer: async jobs queued on one model, running on two,
# cancelled, freed while running. Any report fails the run. It builds in the main build folder:
# libbioesp_tsan is the sources that hold bioesp's threads, locks and shared state compiled again
# instrumented (-O1, line tables only), linked with the rest of the objects as built
# (lib/CMakeLists.txt, BIOESP_TSAN).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
cmake -S "$root" -B "$build" -DBIOESP_TSAN=ON >/dev/null
cmake --build "$build" --target test_generate_tsan
# LibTorch, c10, OpenMP and the objects built without TSan: their own synchronisation is
# invisible to it, so the memory accesses those libraries make themselves are ignored
# (called_from_lib); every access in the instrumented code is still checked. Names are the exact
# sonames, which libtsan needs.
supp=$(mktemp /tmp/bioesp-tsan-XXXXXX)
trap 'rm -f "$supp"' EXIT
torch=$(ldd "$build/lib/libbioesp_tsan.so" | awk '/libtorch_cpu/ {print $1}')
c10=$(ldd "$build/lib/libbioesp_tsan.so" | awk '/libc10\.so/ {print $1}')
printf 'called_from_lib:libgomp.so.1\ncalled_from_lib:%s\ncalled_from_lib:%s\n' "$torch" "$c10" > "$supp"
BIOESP_REFERENCE_DIR=${BIOESP_REFERENCE_DIR:-$root/../shared/reference} OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  TSAN_OPTIONS="suppressions=$supp halt_on_error=1 exitcode=66 report_signal_unsafe=0" \
  "$build/tests/test_generate_tsan"
echo "ThreadSanitizer: 1 passed, 0 failed"
