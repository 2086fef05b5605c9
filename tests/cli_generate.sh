#!/bin/sh
# bioesp generate with the tiny reference model: outputs, naming, LoRA and img2img flags, errors.
set -eu
cli=$1 ref=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
m="$ref/models/tiny-sd1"
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
fails --model "$m" --prompt x --scheduler heun --quiet;  grep -q "unknown scheduler 'heun'" "$tmp/err.txt"
fails --model "$m" --prompt x --guidance nan --quiet;    grep -q 'guidance' "$tmp/err.txt"
fails --model "$m" --prompt x --steps 0 --quiet;         grep -q 'steps' "$tmp/err.txt"
fails --model "$m" --prompt x --steps ten;               grep -q 'needs an integer' "$tmp/err.txt"
fails --model "$tmp/nowhere" --prompt x;                 grep -q 'nowhere' "$tmp/err.txt"
fails --model "$m" --prompt x --lora "$ref/workshop/model_lora.ckpt" --quiet; grep -q 'do not fit' "$tmp/err.txt"
fails --model "$m";                                      grep -q -- '--prompt is required' "$tmp/err.txt"
echo ok
