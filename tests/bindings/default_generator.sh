#!/bin/sh
# The bindings configure, and their SWIG steps (the Node wrapper's patch included) run, under
# CMake's default generator (Unix Makefiles) as under Ninja.
# Usage: default_generator.sh SOURCE_DIR HOST... (python, node)
set -eu
src=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset CMAKE_GENERATOR
flags=
for host in "$@"; do flags="$flags -DBIOESP_BINDINGS_$(echo "$host" | tr a-z A-Z)=ON"; done
# shellcheck disable=SC2086
cmake -S "$src" -B "$tmp" -DCMAKE_BUILD_TYPE=Release -DBIOESP_BUILD_TESTS=OFF -DBIOESP_BUILD_EXAMPLES=OFF $flags \
  >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
grep -q "^CMAKE_GENERATOR:INTERNAL=Unix Makefiles" "$tmp/CMakeCache.txt"
for host in "$@"; do
  case "$host" in
    node) wrap=node/bioespJAVASCRIPT_wrap ;;
    python) wrap=python/bioespPYTHON_wrap ;;
    *) echo "unknown host $host"; exit 2 ;;
  esac
  make -C "$tmp/bindings" "$wrap.o" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
done
case " $* " in
  *" node "*) grep -q "swig_isolate" "$tmp/bindings/node/bioespJAVASCRIPT_wrap.cxx" ;;  # patched
esac
echo "default generator: configured; $* wrappers built"
