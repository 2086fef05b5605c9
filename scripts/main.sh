#!/bin/sh
# A fresh Debian 12 machine to the main job: dependencies, build, then the bioesp command on the
# workshop's LoRA (until generation lands, the main job inspects the workshop's trained model).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
"$root/build/bioesp" inspect "${1:-$root/../shared/reference/workshop/model_lora.ckpt}"
