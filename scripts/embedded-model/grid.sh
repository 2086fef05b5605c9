#!/bin/sh
# The sample grid of the embedded model (or $BIOESP_MODEL): 8 prompts, single beings and blends,
# one row each, seeds 1–4 across.   grid.sh BIOESP_BINARY OUT.png [generate options...]
set -eu
bioesp=$1 out=$2
shift 2
"$bioesp" generate --seed 1 --num-images 4 --steps 25 --guidance 5 --quiet \
  --prompt "lagarto" --prompt "mariposa" --prompt "loro" --prompt "cactus" \
  --prompt "lagarto mariposa" --prompt "cactus tigre" --prompt "pulpo girasol" --prompt "búho hongo" \
  --grid 4 --grid-cell 128 --out "$out" "$@"
