#!/bin/sh
# Installs bioesp into a temporary prefix, then builds and runs a C consumer against it twice:
# with pkg-config and with CMake's find_package.
set -eu
build=$1 consumer=$2
prefix=$(mktemp -d /tmp/bioesp-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name bioesp.pc)
libdir=$(dirname "$(find "$prefix" -name 'libbioesp.so.0')")
[ -f "$prefix/include/bioesp.h" ] || { echo "header not installed"; exit 1; }
[ -n "$pc" ] || { echo "bioesp.pc not installed"; exit 1; }

PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --exists bioesp
cc "$consumer/main.c" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs bioesp) -o "$prefix/with-pkgconfig"
LD_LIBRARY_PATH=$libdir "$prefix/with-pkgconfig" > "$prefix/out.txt"
# The installed library finds the model installed beside it, not the one in the source tree.
grep -q "^embedded model: $prefix/lib.*/\.\./share/bioesp/criaturas\$" "$prefix/out.txt" || { cat "$prefix/out.txt"; exit 1; }
[ -f "$prefix/share/bioesp/criaturas/unet/diffusion_pytorch_model.safetensors" ]

cmake -S "$consumer" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
LD_LIBRARY_PATH=$libdir "$prefix/consumer-build/consumer"

# Installed bindings load from the prefix alone (their rpaths find libbioesp there).
py=$(find "$prefix" -name '_bioesp*.so' | head -n 1)
if [ -n "$py" ]; then
  PYTHONPATH=$(dirname "$py") python3 -c 'import bioesp; assert bioesp.version()'
fi
addon=$(find "$prefix" -name bioesp.node | head -n 1)
if [ -n "$addon" ]; then
  node -e 'if (!require(process.argv[1]).version()) process.exit(1)' "$(dirname "$addon")"
fi
