#!/bin/sh
# Configures and builds bioesp in ./build (Release, Ninja, ccache when present).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# The SWIG bindings for every host whose toolchain is here.
bindings=
if command -v swig >/dev/null 2>&1; then
  python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' 2>/dev/null &&
    bindings="$bindings -DBIOESP_BINDINGS_PYTHON=ON"
  command -v javac >/dev/null 2>&1 && bindings="$bindings -DBIOESP_BINDINGS_JAVA=ON"
  [ -f /usr/include/node/node.h ] && command -v node >/dev/null 2>&1 && bindings="$bindings -DBIOESP_BINDINGS_NODE=ON"
  command -v mcs >/dev/null 2>&1 && command -v mono >/dev/null 2>&1 && bindings="$bindings -DBIOESP_BINDINGS_CSHARP=ON"
  :
fi
# shellcheck disable=SC2086
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release $bindings >/dev/null
cmake --build "$root/build" -j "$(nproc)"
