#!/bin/sh
# bioesp train killed with SIGKILL again and again as it writes a checkpoint every step (a full
# fine-tune, whose checkpoints are large enough that most kills land mid-write): after each kill
# every checkpoint under its final name loads; each --resume removes the temporaries the kills left
# and starts from the newest complete checkpoint; the last run ends with the weights and the
# train_log.jsonl of one uninterrupted run.
set -eu
cli=$1 ref=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
m="$ref/models/tiny-sd1"
mkdir "$tmp/data"
"$cli" generate --model "$m" --prompt "colibrí" --num-images 2 --steps 2 --seed 5 --width 64 --height 64 \
  --quiet --out "$tmp/data/bird.png"
steps=12
train() {  # exec: run in the background, $! is bioesp itself
  exec "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --steps $steps --seed 3 --quiet \
    --full --checkpoint-every 1 --checkpoints-kept 3 "$@"
}
(train --out "$tmp/straight" 2>/dev/null)

# A temporary as a kill mid-write leaves it: the next start removes it.
mkdir -p "$tmp/cut/checkpoints"
echo partial > "$tmp/cut/checkpoints/checkpoint-000001.safetensors.tmp-4242"
echo partial > "$tmp/cut/train_log.jsonl.tmp-4242"
# Whether checkpoint 2 × round (or a later one) is being written or done: each round gets further.
reached() {
  n=$(ls "$tmp/cut/checkpoints" 2>/dev/null | sed -n 's/^checkpoint-0*\([0-9][0-9]*\)\.safetensors.*/\1/p' | sort -n | tail -1)
  [ -n "$n" ] && [ "$n" -ge $((2 * round)) ]
}
round=1 midwrite=0
while :; do
  train --resume --out "$tmp/cut" 2>>"$tmp/log.txt" &
  pid=$!
  while kill -0 $pid 2>/dev/null && ! reached; do sleep 0.02; done
  kill -KILL $pid 2>/dev/null || true
  rc=0; wait $pid || rc=$?
  [ $rc -eq 0 ] && break
  [ $rc -eq 137 ] || { echo "round $round: exit $rc"; cat "$tmp/log.txt"; exit 1; }
  ls "$tmp/cut/checkpoints" | grep -q '\.tmp-' && midwrite=$((midwrite + 1))
  for c in "$tmp/cut/checkpoints"/checkpoint-*.safetensors; do
    [ -e "$c" ] || continue
    "$cli" inspect "$c" >/dev/null 2>&1 || { echo "round $round: $c does not load"; "$cli" inspect "$c"; exit 1; }
  done
  round=$((round + 1))
  [ $round -le $steps ] || { echo "no progress after $steps rounds"; cat "$tmp/log.txt"; exit 1; }
done
echo "$round runs, $midwrite killed mid-write"
grep -q 'removed .*checkpoint-000001.safetensors.tmp-4242, left behind by an interrupted write' "$tmp/log.txt"
if ls "$tmp/cut" "$tmp/cut/checkpoints" | grep -q '\.tmp-'; then echo "temporaries left"; exit 1; fi
cmp "$tmp/straight/unet/diffusion_pytorch_model.safetensors" "$tmp/cut/unet/diffusion_pytorch_model.safetensors" ||
  { echo "weights differ from the uninterrupted run"; exit 1; }
# One line per step, in order, none lost or repeated.
[ "$(sed 's/^{"step": \([0-9]*\),.*/\1/' "$tmp/cut/train_log.jsonl" | tr '\n' ' ')" = "$(seq 1 $steps | tr '\n' ' ')" ] ||
  { echo "train_log.jsonl:"; cat "$tmp/cut/train_log.jsonl"; exit 1; }
cmp "$tmp/straight/train_log.jsonl" "$tmp/cut/train_log.jsonl"
echo ok
