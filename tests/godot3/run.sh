#!/bin/sh
# Runs the Godot 3 module's test in godot3-server, headless, on the ready project BUILD/godot3.
# A script error does not stop Godot, so the verdict is the test's last line, not only the exit
# status. Usage: run.sh GODOT3_SERVER BUILD_DIR
set -eu
godot=$1 build=$2
src=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp) home=$(mktemp -d)  # Godot keeps its user data under $HOME
trap 'rm -rf "$log" "$home"' EXIT
status=0
HOME=$home timeout 900 "$godot" --path "$build/godot3" --script "$src/test_creatures.gd" >"$log" 2>&1 || status=$?
cat "$log"
grep -q "SCRIPT ERROR" "$log" && { echo "a script error in the test"; exit 1; }
grep -q "^godot3 module: all checks passed$" "$log" || { echo "the test did not pass (exit $status)"; exit 1; }
[ "$status" -eq 0 ]
