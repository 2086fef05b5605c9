#!/bin/sh
# bioesp fetch and prepare against a loopback Commons (tests/support/commons_server.py): listing
# with continuation and the iicontinue break, formatversion 1 and 2, maxlag, ratelimited, 503 and
# 429 answers, a connection dropped mid-file (resumed with Range), a wrong SHA-1, an HTML page and
# a truncated JPEG instead of images, non-free and personality-restricted files, re-runs that
# download nothing, sampling, search, titles, campaigns, keywords; then prepare and train on it.
set -eu
cli=$1 ref=$2 src=$(cd "$(dirname "$0")" && pwd)
. "$src/support/loopback.sh"
m="$ref/models/tiny-sd1"
img="$tmp/images"
mkdir "$img"
gen() { "$cli" generate --model "$m" --prompt "$1" --steps 2 --seed "$2" --width 64 --height 80 --quiet --out "$img/$3"; }
gen colibrí 1 "Ave 1.jpg"; gen tucán 2 "Ave 2.png"; gen rana 3 "Rana cc0.jpg"; gen flor 4 "Flor nonfree.jpg"
gen mono 5 "Mono person.jpg"; gen lagarto 6 "Lagarto wrongsha.jpg"; gen pez 7 "Pez html.jpg"; gen sapo 8 "Sapo truncated.jpg"
start_server python3 "$src/support/commons_server.py" "$img" "$tmp/port" "$tmp/server.log"
api() { echo "http://127.0.0.1:$(cat "$tmp/port")/$1/w/api.php"; }
fetch() { "$cli" fetch --contact test@example.org --retry-delay 0.05 --quiet "$@"; }
count() { wc -l < "$1/manifest.jsonl" | tr -d ' '; }

# formatversion 2, maxlag then ratelimited, thumbnails with the iicontinue break.
fetch --category "Category:Aves de Colombia" --api "$(api maxlag,ratelimit)" --out "$tmp/a" 2>"$tmp/err"
[ "$(count "$tmp/a")" -eq 6 ] || { cat "$tmp/err"; exit 1; }
grep -q "Flor nonfree.jpg: license 'CC BY-NC 4.0' is not among the allowed" "$tmp/err"
grep -q "Mono person.jpg: restricted (personality)" "$tmp/err"
grep -q "maxlag" "$tmp/err"
grep -q "ratelimited" "$tmp/err"
grep -q "Ana María & José" "$tmp/a/ATTRIBUTION.md"
grep -q "CC BY-SA 4.0" "$tmp/a/ATTRIBUTION.md"
grep -q '"author":"Ana María & José"' "$tmp/a/manifest.jsonl"
grep -q '"description":"Un colibrí en Boyacá"' "$tmp/a/manifest.jsonl"
grep -q "bioesp/[0-9.]* (test@example.org) libcurl/" "$tmp/server.log"
grep -q "iicontinue=" "$tmp/server.log"
[ -s "$tmp/a/Ave 1.jpg" ] && [ -s "$tmp/a/Ave 2.png" ]
ls "$tmp/a" | grep -q '\.part$' && { echo "a .part file was left"; exit 1; }
# A second run downloads nothing.
fetch --category "Aves de Colombia" --api "$(api maxlag,ratelimit)" --out "$tmp/a" 2>"$tmp/err2" || { cat "$tmp/err2"; exit 1; }
"$cli" fetch --contact x --retry-delay 0.05 --category "Aves de Colombia" --api "$(api plain)" --out "$tmp/a" 2>&1 | grep -q "0 downloaded"

# formatversion 1, originals (SHA-1 checked), 503 from the API, 429s, 503s and a dropped file.
fetch --category "Aves" --original --api "$(api fv1,flaky,api503)" --out "$tmp/b" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
[ "$(count "$tmp/b")" -eq 6 ] || { cat "$tmp/err"; exit 1; }
for f in "Ave 1.jpg" "Ave 2.png" "Rana cc0.jpg" "Lagarto wrongsha.jpg"; do cmp "$img/$f" "$tmp/b/$f"; done
grep -q "Range\|HTTP 429\|HTTP 503" "$tmp/err"

# Bad files: HTML instead of an image, a truncated JPEG, a wrong SHA-1 (originals).
fetch --category "Aves" --original --api "$(api badfiles)" --out "$tmp/c" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "Lagarto wrongsha.jpg: SHA-1 .* differs" "$tmp/err"
grep -q "Pez html.jpg: SHA-1" "$tmp/err"
grep -q "Sapo truncated.jpg: SHA-1" "$tmp/err"
[ "$(count "$tmp/c")" -eq 3 ]
fetch --category "Aves" --api "$(api badfiles)" --out "$tmp/d" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "Pez html.jpg: the download is not a readable image" "$tmp/err"
grep -q "Sapo truncated.jpg: the download is not a readable image" "$tmp/err"
[ ! -e "$tmp/d/Pez html.jpg" ] && [ ! -e "$tmp/d/Pez html.jpg.part" ]

# Selection: a seeded sample is reproducible; search, titles, campaign, keywords, licenses.
fetch --category "Aves" --limit 2 --seed 7 --api "$(api plain)" --out "$tmp/s1" 2>/dev/null
fetch --category "Aves" --limit 2 --seed 7 --api "$(api plain)" --out "$tmp/s2" 2>/dev/null
[ "$(count "$tmp/s1")" -eq 2 ] && [ "$(ls "$tmp/s1" | sort)" = "$(ls "$tmp/s2" | sort)" ]
fetch --search "ave" --api "$(api plain)" --out "$tmp/search" 2>/dev/null
[ "$(count "$tmp/search")" -eq 2 ]
printf 'File:Ave 1.jpg\nAve 2.png\nFile:No existe.jpg\n' > "$tmp/titles.txt"
fetch --titles "$tmp/titles.txt" --api "$(api fv1)" --out "$tmp/titles" 2>/dev/null
[ "$(count "$tmp/titles")" -eq 2 ]
fetch --campaign "Biodiversidad en Colombia 2025" --keywords rana --api "$(api plain)" --out "$tmp/camp" 2>/dev/null
[ "$(count "$tmp/camp")" -eq 1 ] && [ -s "$tmp/camp/Rana cc0.jpg" ]
grep -q "gcmtitle=Category%3AUploaded%20via%20Campaign%3ABiodiversidad%20en%20Colombia%202025" "$tmp/server.log"
fetch --category "Aves" --licenses cc0 --api "$(api plain)" --out "$tmp/cc0" 2>/dev/null
[ "$(count "$tmp/cc0")" -eq 1 ]
fetch --category "Empty" --api "$(api plain)" --out "$tmp/empty" 2>/dev/null
[ "$(count "$tmp/empty")" -eq 0 ]

# Ctrl-C during downloads: exit 130, finished files recorded; the rerun fetches only the rest.
"$cli" fetch --contact x --category Aves --api "$(api slow)" --out "$tmp/int" --quiet 2>/dev/null &
pid=$!
# (up to 60 s for the first file: a loaded machine starts the CLI slowly)
n=0; while [ -z "$(ls "$tmp/int" 2>/dev/null | grep -v '\.part$')" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n + 1)); done
kill -INT $pid; rc=0; wait $pid || rc=$?
[ $rc -eq 130 ] || { echo "interrupted fetch exited $rc"; exit 1; }
done_before=$(count "$tmp/int")
[ "$done_before" -ge 1 ] || { echo "no file finished before the interrupt"; exit 1; }
[ "$done_before" -lt 6 ] || { echo "every file finished before the interrupt"; exit 1; }
"$cli" fetch --contact x --category Aves --api "$(api slow)" --out "$tmp/int" 2>&1 | grep -q "$((6 - done_before)) downloaded"
[ "$(count "$tmp/int")" -eq 6 ]

# A title longer than a file name may be is saved under a shortened name (its start, a hash of the
# title, its extension) with the whole title in the manifest; a file that cannot be written (here
# a folder stands where its download goes) is skipped with the reason, and the others are fetched.
mkdir -p "$tmp/long/Ave 2.png.part"
fetch --category "Aves" --api "$(api longtitle)" --out "$tmp/long" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "Ave 2.png: cannot write .*Is a directory" "$tmp/err" || { cat "$tmp/err"; exit 1; }
[ "$(count "$tmp/long")" -eq 5 ]
long=$(ls "$tmp/long" | grep '^Rana cc0 de la selva')
[ "$(printf %s "$long" | wc -c)" -le 200 ] && printf %s "$long" | grep -q -- '-[0-9a-f]\{12\}\.jpg$'
grep -q '"title":"File:Rana cc0 de la selva húmeda del Chocó biogeográfico, de la selva.*fotografiada de noche.jpg"' "$tmp/long/manifest.jsonl"
"$cli" prepare "$tmp/long" --size 64 --out "$tmp/long-p" --quiet 2>/dev/null
[ "$(count "$tmp/long-p")" -eq 5 ]

fails() { if "$cli" "$@" >/dev/null 2>"$tmp/err"; then echo "accepted: $*"; exit 1; fi; }
fails fetch --category x --width 512 --api "$(api plain)" --out "$tmp/x"; grep -q "standard widths" "$tmp/err"
fails fetch --category x --api "http://127.0.0.1:1/w/api.php" --retries 1 --out "$tmp/x"; grep -q "127.0.0.1" "$tmp/err"
fails fetch --out "$tmp/x"; grep -q "give one of" "$tmp/err"

# prepare: squares (centre and pad), captions with the species, duplicates, attribution carried.
cp "$tmp/a/Ave 1.jpg" "$tmp/a/Ave 1 copia.jpg"
"$cli" prepare "$tmp/a" --size 64 --caption "criatura especulativa colombiana" --caption-from-metadata \
  --out "$tmp/p" --quiet 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "Ave 1.jpg: the same file as Ave 1 copia.jpg\|Ave 1 copia.jpg: the same file as Ave 1.jpg" "$tmp/err"
[ "$(count "$tmp/p")" -eq 6 ]
grep -q "criatura especulativa colombiana, Colibri coruscans" "$tmp/p/Ave 2.txt"
grep -q "Ana María & José" "$tmp/p/ATTRIBUTION.md"
python3 - "$tmp/p/Ave 2.png" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert struct.unpack(">II", d[16:24]) == (64, 64), struct.unpack(">II", d[16:24])
PY
"$cli" prepare "$tmp/a" --size 64 --crop pad --background 000000 --out "$tmp/pad" --quiet 2>/dev/null
"$cli" prepare "$tmp/a" --size 64 --crop attention --out "$tmp/att" --quiet 2>/dev/null
[ "$(count "$tmp/att")" -eq 6 ]
fails prepare "$tmp/a" --size 60 --out "$tmp/x"; grep -q "multiple of 8" "$tmp/err"
fails prepare "$tmp/a" --crop stretch --out "$tmp/x"; grep -q "crop: must be one of center, attention, pad, not 'stretch'" "$tmp/err"

# The prepared dataset trains, with its per-image captions.
"$cli" train --model "$m" --data "$tmp/p" --resolution 64 --steps 2 --seed 1 --quiet --out "$tmp/lora" 2>/dev/null
[ -s "$tmp/lora/pytorch_lora_weights.safetensors" ]
# The dataset's credits travel with the LoRA (bioesp push turns them into the model card).
cmp "$tmp/p/manifest.jsonl" "$tmp/lora/dataset_manifest.jsonl"
python3 - "$tmp/lora/pytorch_lora_weights.safetensors" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); meta = json.loads(d[8:8 + struct.unpack("<Q", d[:8])[0]])["__metadata__"]
assert meta["bioesp.learning_rate"] == "0.0001" and meta["bioesp.lr_scheduler"] == "constant", meta
assert meta["bioesp.batch_size"] == "1" and meta["bioesp.mixed_precision"] == "no", meta
PY
echo ok
