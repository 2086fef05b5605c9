#!/bin/sh
# bioesp train with the tiny reference model: a dataset made by bioesp itself, LoRA training with
# checkpoints, validation images and kohya output, the result used by generate, Ctrl-C + resume,
# SIGTERM and SIGHUP, SDXL, and errors.
set -eu
cli=$1 ref=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
m="$ref/models/tiny-sd1"
mkdir "$tmp/data"
"$cli" generate --model "$m" --prompt "colibrí" --num-images 3 --steps 2 --seed 5 --width 72 --height 64 \
  --quiet --out "$tmp/data/bird.png"
echo "un colibrí especulativo" > "$tmp/data/bird-0.txt"
"$cli" train --model "$m" --data "$tmp/data" --prompt "criatura especulativa colombiana" --resolution 64 \
  --steps 4 --batch 2 --seed 1 --checkpoint-every 2 --validation-prompt "criatura" --validation-every 2 \
  --validation-steps 2 --kohya --out "$tmp/out" 2>"$tmp/err.txt"
grep -q 'only 3 images' "$tmp/err.txt"         # the workshop's advice on dataset size
grep -q '4/4  loss' "$tmp/err.txt"             # progress bar with the loss
for f in pytorch_lora_weights.safetensors kohya_lora.safetensors checkpoints/checkpoint-000002.safetensors \
         validation/step-000002.png validation/step-000004.png train_log.jsonl; do
  [ -s "$tmp/out/$f" ] || { echo "missing $f"; exit 1; }
done
[ "$(wc -l < "$tmp/out/train_log.jsonl")" -eq 4 ]
"$cli" inspect "$tmp/out/pytorch_lora_weights.safetensors" > "$tmp/inspect.txt"
grep -q 'diffusers' "$tmp/inspect.txt"
grep -q 'bioesp.rank' "$tmp/inspect.txt"
"$cli" generate --model "$m" --prompt "criatura especulativa colombiana" --steps 2 --seed 2 --quiet \
  --lora "$tmp/out/kohya_lora.safetensors" --out "$tmp/g.png"
[ -s "$tmp/g.png" ]

# Ctrl-C: a checkpoint, exit 130, and --resume finishes with the same weights as a straight run.
"$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps 40 --seed 3 --quiet \
  --out "$tmp/straight" 2>/dev/null
"$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps 40 --seed 3 --quiet \
  --checkpoint-every 1 --checkpoints-kept 2 --out "$tmp/cut" 2>/dev/null &
pid=$!
n=0
while [ ! -d "$tmp/cut/checkpoints" ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid 2>/dev/null || true
rc=0; wait $pid || rc=$?
if [ $rc -eq 130 ]; then
  [ "$(ls "$tmp/cut/checkpoints" | wc -l)" -le 2 ]  # older checkpoints pruned
  "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps 40 --seed 3 --quiet \
    --checkpoint-every 1 --resume --out "$tmp/cut" 2>/dev/null
else
  echo "note: training finished before the interrupt landed (rc $rc)"
  [ $rc -eq 0 ]
fi
cmp "$tmp/straight/pytorch_lora_weights.safetensors" "$tmp/cut/pytorch_lora_weights.safetensors" ||
  { echo "resumed weights differ"; exit 1; }

# Ctrl-C without --checkpoint-every still leaves a checkpoint to resume from.
"$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps 400 --seed 3 \
  --out "$tmp/nockpt" 2>"$tmp/nockpt.txt" &
pid=$!
n=0
while ! grep -q '/400  loss' "$tmp/nockpt.txt" && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid
rc=0; wait $pid || rc=$?
[ $rc -eq 130 ] || { echo "Ctrl-C: exit $rc"; cat "$tmp/nockpt.txt"; exit 1; }
ls "$tmp/nockpt/checkpoints"/checkpoint-*.safetensors >/dev/null
grep -q 'a checkpoint was written' "$tmp/nockpt.txt"

# SIGTERM and SIGHUP stop a training as Ctrl-C does: a checkpoint first (also with no checkpoint
# interval), then exit 128 + the signal; --resume continues from it.
for sig in TERM:15 HUP:1; do
  name=${sig%:*} number=${sig#*:}
  "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps 100000 --seed 3 \
    --checkpoint-every 0 --out "$tmp/sig-$name" 2>"$tmp/sig-$name.txt" &
  pid=$!
  n=0
  while ! grep -q 'loss' "$tmp/sig-$name.txt" 2>/dev/null && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
  kill -$name $pid
  rc=0; wait $pid || rc=$?
  [ $rc -eq $((128 + number)) ] || { echo "SIG$name: exit $rc"; cat "$tmp/sig-$name.txt"; exit 1; }
  grep -q "interrupted (signal $number); writing a checkpoint" "$tmp/sig-$name.txt"
  ckpt=$(ls "$tmp/sig-$name/checkpoints/" | grep '^checkpoint-[0-9]*\.safetensors$') ||
    { echo "SIG$name wrote no checkpoint"; exit 1; }
  step=$(echo "$ckpt" | sed 's/checkpoint-0*\([0-9]*\)\.safetensors/\1/')
  "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps $((step + 1)) --seed 3 --quiet \
    --resume --out "$tmp/sig-$name" 2>/dev/null
  [ -s "$tmp/sig-$name/pytorch_lora_weights.safetensors" ]
  [ "$(wc -l < "$tmp/sig-$name/train_log.jsonl")" -eq $((step + 1)) ]
done

# SDXL: the same command on the tiny SDXL, both text encoders with LoRA, bf16 (the VAE kept in
# float32), the VAE given apart with the script's other options; both saved layouts load into
# generation with every key placed.
xl="$ref/models/tiny-sdxl"
"$cli" train --model "$xl" --data "$tmp/data" --prompt "criatura especulativa colombiana" --resolution 64 \
  --steps 2 --batch 2 --seed 1 --train-text-encoder --mixed-precision bf16 --kohya --quiet --out "$tmp/xl" \
  --vae "$xl/vae" --weight-decay-text-encoder 1e-3 --text-encoder-lr 5e-6 2>/dev/null
"$cli" inspect "$tmp/xl/pytorch_lora_weights.safetensors" > "$tmp/inspect-xl.txt"
grep -q 'text_encoder_2' "$tmp/inspect-xl.txt"
grep -q 'bioesp.vae' "$tmp/inspect-xl.txt"
for f in pytorch_lora_weights.safetensors kohya_lora.safetensors; do
  "$cli" generate --model "$xl" --prompt "criatura especulativa colombiana" --steps 2 --seed 2 --width 64 --height 64 \
    --quiet --lora "$tmp/xl/$f" --out "$tmp/xl-$f.png"
  [ -s "$tmp/xl-$f.png" ]
done

fails() {
  if "$cli" train "$@" >/dev/null 2>"$tmp/err.txt"; then echo "accepted: $*"; exit 1; fi
}
fails --model "$m" --data "$tmp/data" --prompt x --resolution 100 --out "$tmp/o";  grep -q 'multiple of 8' "$tmp/err.txt"
fails --model "$m" --data "$tmp/nowhere" --prompt x --out "$tmp/o";               grep -q 'no such folder' "$tmp/err.txt"
fails --model "$m" --data "$tmp/data" --prompt x --lr-scheduler exp --out "$tmp/o"; grep -q "lr_scheduler: must be one of constant," "$tmp/err.txt"
fails --model "$m" --data "$tmp/data" --out "$tmp/o" --rank;                       grep -q 'needs a value' "$tmp/err.txt"
fails --model "$m" --data "$tmp/data" --prompt x --mixed-precision fp16 --out "$tmp/o"; grep -q 'needs CUDA' "$tmp/err.txt"
fails --model "$m" --data "$tmp/data" --prompt x --vae "$tmp/nowhere" --out "$tmp/o"; grep -q 'no such autoencoder' "$tmp/err.txt"
echo ok
