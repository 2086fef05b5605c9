#!/bin/sh
# bioesp studio in a real browser (headless Chromium driven by playwright-core from npm, installed
# once into the build folder), against the tiny reference model and a loopback Commons
# (tests/support/commons_server.py); then its runs on the library's jobs (tests/studio/jobs.py),
# hostile clients over raw sockets (tests/studio/hostile.py) and a clean stop on SIGTERM. First, the two languages' tables against each other and their users.
set -eu
cli=$1 ref=$2 build=$3
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "cli_studio: Chromium is needed (Debian: apt-get install chromium)"; exit 1; }
python3 "$here/studio/strings.py" "$here/../examples/cli/studio"
node_dir=$build/studio-test
if [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent playwright-core@1.65 >/dev/null
fi
. "$here/support/loopback.sh"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; cleanup' EXIT
m="$ref/models/tiny-sd1"
# Commons' catalogue: two free pictures and a non-free one.
mkdir -p "$tmp/commons" "$tmp/studio/datasets"
"$cli" generate --model "$m" --prompt colibrí --steps 2 --seed 1 --width 64 --height 80 --quiet --out "$tmp/commons/Ave 1.jpg"
"$cli" generate --model "$m" --prompt tucán --steps 2 --seed 2 --width 80 --height 64 --quiet --out "$tmp/commons/Ave 2.png"
"$cli" generate --model "$m" --prompt flor --steps 2 --seed 3 --width 64 --height 64 --quiet --out "$tmp/commons/Flor nonfree.jpg"
start_server python3 "$here/support/commons_server.py" "$tmp/commons" "$tmp/port" "$tmp/commons.log"
cp -r "$here/data/criaturas-heldout" "$tmp/studio/datasets/heldout"
# Embeddings in the studio's folder: A1111's safetensors layout (attached for its stem) and a
# broken file (left out, with the library's reason)
mkdir -p "$tmp/studio/embeddings"
python3 - "$tmp/studio/embeddings/bichito.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"emb_params": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<64f", *[i / 64 - 0.5 for i in range(64)]))
PY
printf 'not a pickle' >"$tmp/studio/embeddings/roto.pt"
# ControlNets in the studio's folder: the golden one (a diffusers folder, by a link) and a broken
# file (left out, with the library's reason)
mkdir -p "$tmp/studio/controlnets"
ln -s "$ref/golden/control/controlnet" "$tmp/studio/controlnets/bordes"
printf 'not a ControlNet' >"$tmp/studio/controlnets/roto.safetensors"
"$cli" studio --model "$m" --dir "$tmp/studio" --port 0 --threads 1 --contact test@example.org \
  --commons-api "http://127.0.0.1:$(cat "$tmp/port")/plain/w/api.php" >"$tmp/out.txt" 2>"$tmp/err.txt" &
pid=$!
for _ in $(seq 100); do grep -qs '^bioesp studio: http' "$tmp/out.txt" && break; sleep 0.2; done
url=$(sed -n 's|^bioesp studio: \(http://[^ ]*\)/$|\1|p' "$tmp/out.txt")
[ -n "$url" ] || { cat "$tmp/err.txt"; exit 1; }
cp "$here/studio/studio.mjs" "$node_dir/studio.mjs"  # beside its node_modules
CHROMIUM=$chromium node "$node_dir/studio.mjs" "$url" "$tmp/studio"
python3 "$here/studio/jobs.py" "$url" "$tmp/studio" t1  # the runs on the library's jobs, with studio.mjs's LoRA
python3 "$here/studio/hostile.py" "$url" "$tmp/studio"  # raw sockets: slow, many and hostile clients
grep -q "bioesp/[0-9.]* (test@example.org)" "$tmp/commons.log"  # the studio's User-Agent names its contact
kill -TERM "$pid"
wait "$pid"  # exit status 0: stopped cleanly
pid=
grep -q 'bioesp studio: stopped' "$tmp/err.txt"
# bad options are refused before anything starts
if "$cli" studio --model "$m" --lang fr 2>"$tmp/err.txt"; then exit 1; fi
grep -q -- '--lang es|en' "$tmp/err.txt"
if "$cli" studio --model "$m" --port 70000 2>"$tmp/err.txt"; then exit 1; fi
