#!/bin/sh
# bioesp studio in a real browser (headless Chromium driven by playwright-core from npm, installed
# once into the build folder), against the tiny reference model; then a clean stop on SIGTERM.
set -eu
cli=$1 ref=$2 build=$3
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "cli_studio: Chromium is needed (Debian: apt-get install chromium)"; exit 1; }
node_dir=$build/studio-test
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.65 >/dev/null
fi
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/studio/datasets"
cp -r "$here/data/criaturas-heldout" "$tmp/studio/datasets/heldout"
"$cli" studio --model "$ref/models/tiny-sd1" --dir "$tmp/studio" --port 0 --threads 1 >"$tmp/out.txt" 2>"$tmp/err.txt" &
pid=$!
for _ in $(seq 100); do grep -q '^bioesp studio: http' "$tmp/out.txt" && break; sleep 0.2; done
url=$(sed -n 's|^bioesp studio: \(http://[^ ]*\)/$|\1|p' "$tmp/out.txt")
[ -n "$url" ] || { cat "$tmp/err.txt"; exit 1; }
cp "$here/studio/studio.mjs" "$node_dir/studio.mjs"  # beside its node_modules
CHROMIUM=$chromium node "$node_dir/studio.mjs" "$url" "$tmp/studio"
kill -TERM "$pid"
wait "$pid"  # exit status 0: stopped cleanly
pid=
grep -q 'bioesp studio: stopped' "$tmp/err.txt"
# bad options are refused before anything starts
if "$cli" studio --model "$ref/models/tiny-sd1" --lang fr 2>"$tmp/err.txt"; then exit 1; fi
grep -q -- '--lang es|en' "$tmp/err.txt"
if "$cli" studio --model "$ref/models/tiny-sd1" --port 70000 2>"$tmp/err.txt"; then exit 1; fi
