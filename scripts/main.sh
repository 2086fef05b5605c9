#!/bin/sh
# A fresh Debian 12 machine to the main job: dependencies, build, then bioesp draws a creature.
# Until the embedded model lands (issue 10) it uses the tiny reference pipeline in
# ../shared/reference (random weights: the image is the pipeline's, not yet a creature), or the
# model in $BIOESP_MODEL; and it describes the workshop's trained LoRA.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
ref="$root/../shared/reference"
"$root/build/bioesp" inspect "$ref/workshop/model_lora.ckpt" | tail -n 4
"$root/build/bioesp" generate --model "${BIOESP_MODEL:-$ref/models/tiny-sd1}" \
  --prompt "${1:-criatura especulativa colombiana}" --seed 1234 --steps 25 --out "$root/creature.png"
