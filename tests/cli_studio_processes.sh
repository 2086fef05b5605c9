#!/bin/sh
# bioesp studio's trainings across processes (tests/studio/processes.py, over raw HTTP: no browser)
# against the tiny reference model; then a clean stop on SIGTERM with no worker left.
set -eu
cli=$1 ref=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/studio/datasets"
cp -r "$here/data/criaturas-heldout" "$tmp/studio/datasets/heldout"
"$cli" studio --model "$ref/models/tiny-sd1" --dir "$tmp/studio" --port 0 --threads 1 >"$tmp/out.txt" 2>"$tmp/err.txt" &
pid=$!
for _ in $(seq 100); do grep -qs '^bioesp studio: http' "$tmp/out.txt" && break; sleep 0.2; done
url=$(sed -n 's|^bioesp studio: \(http://[^ ]*\)/$|\1|p' "$tmp/out.txt")
[ -n "$url" ] || { cat "$tmp/err.txt"; exit 1; }
python3 "$here/studio/processes.py" "$url" "$tmp/studio" "$pid" || { cat "$tmp/err.txt"; exit 1; }
kill -TERM "$pid"
wait "$pid"
pid=
grep -q 'bioesp studio: stopped' "$tmp/err.txt"
echo ok
