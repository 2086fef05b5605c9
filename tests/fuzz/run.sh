#!/bin/bash
# Builds the fuzz targets with clang (ASan + UBSan) and runs each for SECONDS (default 60; as
# many at once as there are cores),
# seeded with small inputs, the reference data's configs and pickles, MediaWiki answers,
# small PNG/JPEG files and A1111 prompts (windowed with the reference tokenizer).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
# The targets to run (all by default).
targets=${BIOESP_FUZZ_TARGETS:-safetensors pickle checkpoint infer config commons image prompt}
ref=${BIOESP_REFERENCE_DIR:-$root/../shared/reference}
build=$root/build-fuzz
cmake -S "$root" -B "$build" -G Ninja -DBIOESP_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build"
seeds=$(mktemp -d /tmp/bioesp-fuzz-XXXXXX)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds/safetensors" "$seeds/pickle" "$seeds/checkpoint" "$seeds/infer" "$seeds/config" "$seeds/commons" "$seeds/image" "$seeds/prompt"
for c in unet vae text_encoder; do cp "$ref/models/tiny-sd1/$c/config.json" "$seeds/config/$c.json"; done
python3 - "$ref" "$seeds" <<'PY'
import json, struct, sys, zipfile
ref, seeds = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(ref + "/golden/tiny-sd1/lora/legacy_lora.ckpt")
pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
open(seeds + "/pickle/legacy.pkl", "wb").write(pkl[:4096])
h = json.dumps({"__metadata__": {"format": "pt"},
                "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]}}).encode()
open(seeds + "/safetensors/small.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + bytes(22))
ii = {"url": "https://u/a.jpg", "thumburl": "https://u/t.jpg", "thumbwidth": 500, "size": 10, "sha1": "ab",
      "extmetadata": {"LicenseShortName": {"value": "CC BY-SA 4.0"}, "Artist": {"value": "<a href='x'>Ana Mar&iacute;a</a> &#233;"},
                      "Categories": {"value": "A|B"}, "Restrictions": {"value": "personality"}}}
v2 = {"continue": {"iicontinue": "B|1", "continue": "gcmcontinue||"},
      "query": {"pages": [{"pageid": 1, "title": "File:A.jpg", "imageinfo": [ii]}, {"title": "File:M.jpg", "missing": True}]}}
v1 = {"query": {"pages": {"1": {"pageid": 1, "title": "File:A.jpg", "imageinfo": [ii]}, "-1": {"title": "X", "missing": ""}}}}
open(seeds + "/commons/v2.json", "w").write(json.dumps(v2))
open(seeds + "/commons/v1.json", "w").write(json.dumps(v1))
open(seeds + "/commons/error.json", "w").write(json.dumps({"error": {"code": "maxlag", "info": "lag", "lag": 5}}))
for i, p in enumerate(["a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", "(colibr\u00ed:1.3) BREAK helecho",
                       "\\(literal\\] (unbalanced [x", "(x: \uff11.5 ) <bichito>, (bichito:1.2) " + "cat, " * 40]):
    open(seeds + "/prompt/%d.txt" % i, "w").write(p)
PY
# Inputs that once failed stay in the seeds, so a fixed bug stays fixed.
for t in $targets; do
  if [ -d "$root/tests/fuzz/regressions/$t" ]; then cp "$root/tests/fuzz/regressions/$t"/* "$seeds/$t/"; fi
done
# Seed images: a small PNG and JPEG drawn by the main build's bioesp, when it is there.
for ext in png jpg; do
  [ -x "$root/build/bioesp" ] && "$root/build/bioesp" generate --model "$ref/models/tiny-sd1" --prompt x --steps 1 \
    --width 16 --height 16 --seed 1 --quiet --out "$seeds/image/small.$ext" 2>/dev/null || true
done
# The targets run side by side, one per core, each for the full time. No input of 8 KB may get a
# single allocation of more than 320 MB (the largest picture the budget admits is 268 MB).
run_one() {
  local t=$1
  mkdir -p "$seeds/work-$t"
  if "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=6144 -malloc_limit_mb=320 -print_final_stats=1 \
      "$seeds/work-$t" "$seeds/$t" >"$seeds/$t.log" 2>&1; then
    echo ok > "$seeds/$t.result"
  else
    echo failed > "$seeds/$t.result"
  fi
}
slots=$(nproc)
export BIOESP_REFERENCE_DIR="$ref"  # fuzz_prompt windows with the reference tokenizer
for t in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$slots" ]; do wait -n || true; done
  echo "fuzz_$t: ${seconds}s"
  run_one "$t" &
done
wait
passed=0 failed=0
for t in $targets; do
  if [ "$(cat "$seeds/$t.result")" = ok ]; then
    echo "fuzz_$t:"; tail -n 5 "$seeds/$t.log"
    passed=$((passed + 1))
  else
    echo "fuzz_$t FAILED:"; tail -n 60 "$seeds/$t.log"
    failed=$((failed + 1))
  fi
done
echo "fuzzing: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
