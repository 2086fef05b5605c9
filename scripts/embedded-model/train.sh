#!/usr/bin/env bash
# Regenerates the embedded model (models/criaturas) from scratch with bioesp's own commands:
# data from npm (Noto Emoji, Twemoji and OpenMoji pictures, Spanish and English names), `bioesp prepare`,
# `bioesp new-model`, the VAE, then the UNet and text encoder together, `bioesp evaluate`, the
# model card and the sample grid in docs/. Every stage is resumable: run it again after an interruption.
#
#   scripts/embedded-model/train.sh   # a GPU when there is one bioesp can use, else the CPU
#
# Environment: BIOESP (the bioesp binary, default build/bioesp), WORK (default
# build/embedded-model), SIZE (pixels, default 128), VAE_STEPS, VAE_BATCH, UNET_STEPS, UNET_BATCH,
# THREADS (CPU threads), BIOESP_DEVICE (cpu|cuda: no detection), SEED. Needs node and
# rsvg-convert (scripts/install-deps.sh). Each stage's wall time is added to $WORK/times.jsonl
# (a resumed stage adds a line), and the card reports their sum.
# The held-out pictures (eight a family) ship with the model in $HELDOUT for its tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIOESP=${BIOESP:-build/bioesp}
WORK=${WORK:-build/embedded-model}
DEVICE=${BIOESP_DEVICE:-}
SEED=${SEED:-7}
SIZE=${SIZE:-128}
VAE_STEPS=${VAE_STEPS:-1500}
VAE_BATCH=${VAE_BATCH:-16}
UNET_STEPS=${UNET_STEPS:-2500}
UNET_BATCH=${UNET_BATCH:-32}
THREADS=${THREADS:-0}
HERE=scripts/embedded-model
MODEL=models/criaturas
HELDOUT=tests/data/criaturas-heldout-$SIZE
PACKAGES="emoji-datasource-google@16.0.0 @iconify-json/noto@1.2.9 @twemoji/svg@15.0.0 openmoji@17.0.0 emojibase-data@17.0.0"
mkdir -p "$WORK"
# `timed STAGE command…`: runs it and appends its wall time, device and host to times.jsonl, also
# when it stops early (a resumed stage's earlier runs count too).
timed() {
  local stage=$1 start=$SECONDS status=0
  shift
  "$@" || status=$?
  printf '{"stage": "%s", "seconds": %d, "device": "%s", "host": "%s, %s threads"}\n' "$stage" $((SECONDS - start)) \
    "$DEVICE" "$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" >> "$WORK/times.jsonl"
  return "$status"
}

# 1. Data: pinned npm packages, unpacked once.
if [ ! -f "$WORK/npm/.done" ]; then
  rm -rf "$WORK/npm" && mkdir -p "$WORK/npm"
  (cd "$WORK/npm" && npm pack --silent $PACKAGES >/dev/null)
  for t in "$WORK"/npm/*.tgz; do d="$WORK/npm/$(basename "$t" .tgz)"; mkdir -p "$d" && tar xzf "$t" -C "$d" --strip-components=1; done
  touch "$WORK/npm/.done"
fi
if [ ! -f "$WORK/dataset/manifest.jsonl" ]; then
  rm -rf "$WORK/source" "$WORK/heldout-source" "$WORK/dataset" "$WORK/heldout"
  node "$HERE/data.mjs" "$WORK/npm" "$WORK/source" "$WORK/heldout-source" "$SIZE"
  # Transparent pictures on white, whole (padded, never cropped); near-duplicates kept:
  # look-alike emoji (two camels, a cat and a cat face) are different beings.
  "$BIOESP" prepare "$WORK/heldout-source" --out "$WORK/heldout" --size "$SIZE" --crop pad --near-duplicates -1 --quiet
  "$BIOESP" prepare "$WORK/source" --out "$WORK/dataset" --size "$SIZE" --crop pad --near-duplicates -1 --quiet
fi

# 2. A model folder with fresh weights and a vocabulary learned from the captions.
[ -d "$WORK/new" ] || "$BIOESP" new-model --configs "$HERE/configs" --data "$WORK/dataset" --out "$WORK/new" --seed "$SEED"

# The device: CUDA when this bioesp build can draw one step with it (a CPU-only build on a
# machine with a GPU cannot), else the CPU.
if [ -z "$DEVICE" ]; then
  DEVICE=cpu
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 &&
     "$BIOESP" generate --model "$WORK/new" --prompt probe --steps 1 --device cuda --quiet --out "$WORK/probe.png" 2>/dev/null; then
    DEVICE=cuda
  fi
  echo "train.sh: training on $DEVICE"
fi

# 3. The VAE: L1 reconstruction + KL; its scaling factor is measured at the end.
[ -f "$WORK/vae/model_index.json" ] || timed vae "$BIOESP" train --train-vae --model "$WORK/new" --data "$WORK/dataset" \
  --out "$WORK/vae" --resolution "$SIZE" --flip --batch "$VAE_BATCH" --steps "$VAE_STEPS" --lr 1e-3 --lr-scheduler cosine \
  --warmup 50 --checkpoint-every 200 --resume --seed "$SEED" --device "$DEVICE" --threads "$THREADS"

# 4. UNet and text encoder together on the captions: tags dropped and shuffled so single names
#    and mixtures are prompts it knows, the empty caption 10 % of the time for guidance. Each
#    picture's latents (and its mirror image's) are encoded once.
[ -f "$WORK/full/model_index.json" ] || timed unet "$BIOESP" train --full --train-text-encoder --model "$WORK/vae" \
  --data "$WORK/dataset" --out "$WORK/full" --resolution "$SIZE" --flip --cache-latents --batch "$UNET_BATCH" \
  --steps "$UNET_STEPS" --lr 1e-3 --lr-scheduler cosine --warmup 100 --tag-dropout 0.5 --shuffle-tags \
  --caption-dropout 0.1 --snr-gamma 5 --checkpoint-every 250 --resume --save-half --seed "$SEED" \
  --device "$DEVICE" --threads "$THREADS"

# 5. Its grip on prompts: the diffusion classifier among 10 of the held-out pictures' captions.
"$BIOESP" evaluate --model "$WORK/full" --data "$WORK/heldout" --classify 10 --json --quiet > "$WORK/evaluate.json"

# 6. The shipped folder: the model, its card (data, licenses, settings, loss curve, grip), the
#    credits, and the held-out pictures its tests measure.
rm -rf "$MODEL.new" && mkdir -p "$MODEL.new"
for c in model_index.json scheduler tokenizer text_encoder unet vae; do cp -r "$WORK/full/$c" "$MODEL.new/"; done
cp "$WORK/dataset/ATTRIBUTION.md" "$MODEL.new/ATTRIBUTION.md"
cp "$WORK/vae/train_log.jsonl" "$MODEL.new/train_log_vae.jsonl"
cp "$WORK/full/train_log.jsonl" "$MODEL.new/train_log.jsonl"
printf '{"seed": %s, "vae_steps": %s, "vae_batch": %s, "unet_steps": %s, "unet_batch": %s}\n' \
  "$SEED" "$VAE_STEPS" "$VAE_BATCH" "$UNET_STEPS" "$UNET_BATCH" > "$WORK/settings.json"
node "$HERE/model_card.mjs" "$MODEL.new" "$WORK/dataset" "$WORK/settings.json" "$WORK/times.jsonl" "$WORK/evaluate.json" > "$MODEL.new/README.md"
rm -rf "$MODEL" && mv "$MODEL.new" "$MODEL"
rm -rf "$HELDOUT" && cp -r "$WORK/heldout" "$HELDOUT"
du -sh "$MODEL"

# 7. The sample grid: 8 prompts (single beings and blends) × 4 seeds.
"$BIOESP" inspect "$MODEL" --expected >/dev/null
"$HERE/grid.sh" "$BIOESP" docs/criaturas-grid.png --model "$MODEL"
