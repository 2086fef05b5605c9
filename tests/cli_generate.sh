#!/bin/sh
# bioesp generate with the tiny reference model: outputs, naming, LoRA and img2img flags, prompt
# syntax and embeddings, VAE tiles, TAESD, previews and step caching, Ctrl-C, errors.
set -eu
cli=$1 ref=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
m="$ref/models/tiny-sd1"
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{print $3 * 256 + $4 "x" $7 * 256 + $8}'; }
"$cli" generate --model "$m" --prompt "colibrí" --prompt "frailejón" --num-images 2 --steps 3 --seed 1 \
  --scheduler euler_a --quiet --out "$tmp/x.png"
for i in 0 1 2 3; do [ -s "$tmp/x-$i.png" ] || { echo "missing x-$i.png"; exit 1; }; done
[ ! -e "$tmp/x.png" ]
# same seed, same bytes
"$cli" generate --model "$m" --prompt "colibrí" --steps 3 --seed 1 --quiet --out "$tmp/a.png"
"$cli" generate --model "$m" --prompt "colibrí" --steps 3 --seed 1 --quiet --out "$tmp/b.png"
cmp "$tmp/a.png" "$tmp/b.png"
grep -q "colibr" "$tmp/a.png"  # the prompt is in the PNG's text chunks
BIOESP_MODEL="$m" "$cli" generate --prompt "lagarto" --steps 2 --width 64 --height 96 --quiet --out "$tmp/c.jpg" \
  --lora "$ref/golden/tiny-sd1/lora/kohya_lora.safetensors:0.7" --init-image "$tmp/a.png" --strength 0.5
[ -s "$tmp/c.jpg" ]
# a progress bar unless --quiet
"$cli" generate --model "$m" --prompt "x" --steps 2 --seed 3 --scheduler ddim --out "$tmp/d.png" 2>"$tmp/err.txt"
grep -q '2/2 steps' "$tmp/err.txt"
fails() {
  if "$cli" generate "$@" >/dev/null 2>"$tmp/err.txt"; then echo "accepted: $*"; exit 1; fi
}
fails --model "$m" --prompt x --width 100 --quiet;       grep -q 'multiples of 8' "$tmp/err.txt"
fails --model "$m" --prompt x --scheduler heun --quiet;  grep -q "scheduler: must be one of pndm, .*ddpm.*, not 'heun'" "$tmp/err.txt"
fails --model "$m" --prompt x --guidance nan --quiet;    grep -q 'guidance: must be a finite number' "$tmp/err.txt"
fails --model "$m" --prompt x --steps 0 --quiet;         grep -q 'steps: must be between 1 and 1000, not 0 (--steps)' "$tmp/err.txt"
fails --model "$m" --prompt x --steps ten;               grep -q "steps: must be an integer, not 'ten'" "$tmp/err.txt"
fails --model "$tmp/nowhere" --prompt x;                 grep -q 'nowhere' "$tmp/err.txt"
fails --model "$m" --prompt x --lora "$ref/workshop/model_lora.ckpt" --quiet; grep -q 'do not fit' "$tmp/err.txt"
fails --model "$m";                                      grep -q -- '--prompt is required' "$tmp/err.txt"
fails --model "$m" --prompt x --vae-tiles -8 --quiet;    grep -q 'vae_tile_size: must be between 0 and 16384, not -8 (--vae-tiles)' "$tmp/err.txt"
fails --model "$m" --prompt x --steps 1000 --quiet;      grep -q 'go past the model' "$tmp/err.txt"  # PNDM's offset
# ControlNets, inpainting and outpainting (test_control_api checks the pixels)
cn="$ref/golden/control/controlnet"
"$cli" generate --model "$m" --prompt "colibrí" --steps 2 --seed 1 --quiet --out "$tmp/cn.png" \
  --control "$cn:$tmp/a.png:0.8" --control "$ref/golden/control/controlnet_2:$tmp/b.png" --preprocess canny \
  --control-window 0,0.5 --guess-mode
grep -q "controlnet:0.8:0-0.5 (canny)" "$tmp/cn.png"
"$cli" generate --model "$m" --prompt "colibrí" --steps 2 --seed 1 --quiet --out "$tmp/paint.png" \
  --init-image "$tmp/a.png" --mask "$tmp/b.png" --mask-blur 4 --outpaint-left 8 --outpaint-right 16
[ "$(png_size "$tmp/paint.png")" = 152x128 ]
grep -q "outpaint" "$tmp/paint.png"
fails --model "$m" --prompt x --control "$cn" --quiet;   grep -q 'CONTROLNET:IMAGE' "$tmp/err.txt"
fails --model "$m" --prompt x --control "$cn:$tmp/a.png" --preprocess edges --quiet; grep -q 'none, canny or scribble' "$tmp/err.txt"
fails --model "$m" --prompt x --mask "$tmp/b.png" --quiet; grep -q 'need an init image' "$tmp/err.txt"
fails --model "$m" --prompt x --outpaint-top -2 --quiet; grep -q 'outpaint_top' "$tmp/err.txt"
fails --model "$m" --prompt x --control "$cn:$tmp/a.png" --control-window 0.5 --quiet; grep -q 'START,END' "$tmp/err.txt"
# Weighted prompts and a textual-inversion embedding (diffusers' layout, written here)
python3 - "$tmp/bichito.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"emb_params": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<64f", *[i / 64 - 0.5 for i in range(64)]))
PY
"$cli" generate --model "$m" --prompt "un (bichito:1.3), BREAK [helecho]" --prompt-syntax weighted --steps 2 --seed 1 \
  --embedding "$tmp/bichito.safetensors" --quiet --out "$tmp/w.png"
grep -q "bichito.safetensors:bichito" "$tmp/w.png" && grep -q "weighted" "$tmp/w.png"
"$cli" generate --model "$m" --prompt "un <b>" --steps 2 --seed 1 --embedding "$tmp/bichito.safetensors:<b>" \
  --quiet --out "$tmp/w2.png"
grep -q "bichito.safetensors:<b>" "$tmp/w2.png"
fails --model "$m" --prompt x --prompt-syntax markdown;  grep -q "prompt_syntax: must be one of plain, weighted, not 'markdown'" "$tmp/err.txt"
fails --model "$m" --prompt "(x:1.2.3)" --prompt-syntax weighted --quiet; grep -q 'is not a number' "$tmp/err.txt"
fails --model "$m" --prompt x --embedding "$ref/golden/tiny-sd1/lora/kohya_lora.safetensors" --quiet
grep -q 'not a textual-inversion embedding' "$tmp/err.txt"
# VAE tiles (test_generate checks the pixels)
"$cli" generate --model "$m" --prompt "colibrí" --steps 2 --seed 1 --width 192 --vae-tiles 64 --quiet --out "$tmp/tiled.png"
[ -s "$tmp/tiled.png" ]
# Ctrl-C stops a generation within a step, writing nothing (exit 130)
# (signalled once a step has run: before the handler is installed, a background job ignores SIGINT)
"$cli" generate --model "$m" --prompt x --steps 999 --out "$tmp/int.png" 2>"$tmp/int.txt" &
pid=$!
n=0; while ! grep -q '[0-9]/[0-9]* steps' "$tmp/int.txt" && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid; rc=0; wait $pid || rc=$?
[ "$rc" -eq 130 ] || { echo "interrupted generate exited $rc"; exit 1; }
[ ! -e "$tmp/int.png" ]

# With no model named: $BIOESP_MODEL, else the embedded model (a 64 px, complete folder).
root=$(cd "$(dirname "$0")/.." && pwd)
"$cli" inspect "$root/models/criaturas" --expected >/dev/null
BIOESP_MODEL= "$cli" generate --prompt "lagarto" --steps 3 --seed 1 --quiet --out "$tmp/e.png"
[ "$(png_size "$tmp/e.png")" = 64x64 ]
BIOESP_MODEL= "$cli" generate --prompt "lagarto" --steps 3 --seed 1 --quiet --out "$tmp/e2.png"
cmp "$tmp/e.png" "$tmp/e2.png"  # same seed, same bytes
# --grid: two prompts × two images → one sheet, a row per prompt, 40 px cells, 2 px gaps
"$cli" generate --model "$m" --prompt a --prompt b --num-images 2 --steps 2 --seed 1 --grid 2 --grid-cell 40 \
  --quiet --out "$tmp/grid.png"
[ "$(png_size "$tmp/grid.png")" = 82x82 ] && [ ! -e "$tmp/grid-0.png" ]
fails --model "$m" --prompt x --grid 0 --quiet;          grep -q 'grid' "$tmp/err.txt"
# Fast sampling: TAESD in place of the VAE, live previews into a folder (one per step, at the
# image's size when TAESD decodes them; the image the same without them), step caching.
taesd="$ref/golden/fast/taesd/diffusers"
fast() { "$cli" generate --model "$m" --prompt colibrí --steps 3 --seed 1 --scheduler lcm --vae "$taesd" --quiet "$@"; }
fast --preview-dir "$tmp/prev" --out "$tmp/p.png"
[ "$(ls "$tmp/prev" | wc -l)" -eq 3 ]
[ "$(png_size "$tmp/prev/step-0003-0.png")" = "$(png_size "$tmp/p.png")" ]
fast --out "$tmp/p2.png"
cmp "$tmp/p.png" "$tmp/p2.png"
fast --cache-interval 2 --out "$tmp/cached.png"
grep -q cache_interval "$tmp/cached.png"
fails --model "$m" --prompt x --cache-interval 2 --cache-branch 99 --quiet; grep -q 'cache_branch must be between 0 and' "$tmp/err.txt"
fails --model "$m" --prompt x --vae "$tmp/nowhere" --quiet; grep -q 'nowhere' "$tmp/err.txt"

# bioesp animate: a morph to a WebM and to PNG frames; the ends are the single generations.
anim() { "$cli" animate --model "$m" --prompt colibrí --prompt lagarto --seed 3 --seed 4 --frames 4 --steps 2 \
  --width 64 --height 64 --quiet "$@"; }
anim --out "$tmp/morph.webm" 2>/dev/null
[ "$(od -An -tx1 -N4 "$tmp/morph.webm" | tr -d ' ')" = 1a45dfa3 ]
anim --pingpong --out "$tmp/frames" 2>/dev/null
[ "$(ls "$tmp/frames" | wc -l)" -eq 6 ]
"$cli" generate --model "$m" --prompt lagarto --seed 4 --steps 2 --width 64 --height 64 --quiet --out "$tmp/end.png"
python3 - "$tmp/frames/frame-0003.png" "$tmp/end.png" <<'EOF'
import sys, zlib
def pixels(path):
    d = open(path, "rb").read(); i = 8; out = b""
    while i < len(d):
        n = int.from_bytes(d[i:i + 4], "big")
        if d[i + 4:i + 8] == b"IDAT": out += d[i + 8:i + 8 + n]
        i += 12 + n
    return zlib.decompress(out)
assert pixels(sys.argv[1]) == pixels(sys.argv[2]), "the last frame is not the single generation"
EOF
if "$cli" animate --model "$m" --prompt x --frames 4 --out "$tmp/x.avi" --quiet 2>"$tmp/err.txt"; then exit 1; fi
grep -q ".gif, .mp4, .webm or a folder" "$tmp/err.txt"
echo ok
