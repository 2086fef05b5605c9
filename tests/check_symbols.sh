#!/bin/sh
# libbioesp.so exports bioesp_* and nothing else: no C++, no LibTorch, no helpers.
set -eu
lib=$1
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libbioesp.so.0" ] || { echo "SONAME is '$soname', want libbioesp.so.0"; exit 1; }
all=$(nm -D --defined-only "$lib" | awk '{print $NF}')
[ -n "$all" ] || { echo "no exported symbols"; exit 1; }
bad=$(echo "$all" | grep -v '^bioesp_' || true)
if [ -n "$bad" ]; then
  echo "symbols exported besides bioesp_*:"; echo "$bad" | head -20; exit 1
fi
echo "$(echo "$all" | wc -l) symbols, all bioesp_*"
