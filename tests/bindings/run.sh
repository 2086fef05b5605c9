#!/bin/sh
# Runs one binding's test against the C API's own pixels for the same settings.
# Usage: run.sh python|java|node|csharp BUILD_DIR REFERENCE_DIR REFERENCE_EXE
set -eu
host=$1 build=$2 ref=$3 reference=$4
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model="$ref/models/tiny-sd1"
controlnet="$ref/golden/control/controlnet"
# The steered pictures' inputs and outputs, which every host's test takes after MODEL and PIXELS.
set -- "$controlnet" "$tmp/control.raw" "$tmp/inpaint.raw" "$tmp/mask.png"
"$reference" "$model" "$tmp/pixels.raw" "$@"
case "$host" in
  python) PYTHONPATH="$build/python" python3 "$src/test_python.py" "$model" "$tmp/pixels.raw" "$@" ;;
  java)
    javac -nowarn -cp "$build/java/bioesp.jar" -d "$tmp" "$src/BindingTest.java"
    java -Xcheck:jni -cp "$build/java/bioesp.jar:$tmp" -Djava.library.path="$build/java" BindingTest "$model" "$tmp/pixels.raw" "$@"
    # The Processing library folder holds what Processing loads.
    p5="$build/processing/bioesp"
    grep -q "^prettyVersion = " "$p5/library.properties"
    [ -f "$p5/library/bioesp.jar" ] && [ -f "$p5/library/linux-amd64/libbioesp_java.so" ] && [ -f "$p5/examples/Creature/Creature.pde" ]
    ;;
  node) node "$src/test_node.js" "$build/node" "$model" "$tmp/pixels.raw" "$@" ;;
  csharp)
    mcs -nologo -r:"$build/csharp/Bioesp.dll" -out:"$tmp/BindingTest.exe" "$src/BindingTest.cs"
    cp "$build/csharp/Bioesp.dll" "$tmp/"
    LD_LIBRARY_PATH="$build/csharp" mono "$tmp/BindingTest.exe" "$model" "$tmp/pixels.raw" "$@"
    # The Godot 4 example compiles against the binding (and stubs of the Godot types it uses).
    mcs -nologo -target:library -r:"$build/csharp/Bioesp.dll" -out:"$tmp/Creature.dll" \
      "$src/../../examples/godot/Creature.cs" "$src/GodotStubs.cs"
    ;;
  *) echo "unknown host $host"; exit 2 ;;
esac
