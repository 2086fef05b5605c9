#!/bin/sh
# A fresh Debian 12 machine to the main job: dependencies, build, then bioesp draws with the model
# that ships in the repository (or $BIOESP_MODEL): your prompt into creature.png and a grid of
# single beings and blends (8 prompts × 4 seeds) into creatures.png. With the shared reference
# data beside the checkout it also describes the workshop's trained LoRA.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
bioesp="$root/build/bioesp"
lora="$root/../shared/reference/workshop/model_lora.ckpt"
[ -f "$lora" ] && "$bioesp" inspect "$lora" | tail -n 4
"$bioesp" generate --prompt "${1:-lagarto mariposa}" --seed 1234 --steps 25 --guidance 5 --out "$root/creature.png"
"$root/scripts/embedded-model/grid.sh" "$bioesp" "$root/creatures.png"
echo "bioesp: wrote $root/creature.png and $root/creatures.png"
