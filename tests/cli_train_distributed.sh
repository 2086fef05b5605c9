#!/bin/sh
# bioesp train across processes on the loopback (Gloo): two ranks started by hand with torchrun's
# variables; a run checkpointed at step 5 and resumed to 10 by `--nproc 2` equal to the straight
# run byte for byte, resumed by one process it continues and says so; one rank killed with SIGKILL
# (the other stops within the 20 s timeout naming it, only complete checkpoints left); the
# launcher's Ctrl-C, SIGTERM and SIGHUP (one checkpoint, by rank 0, that resumes; no worker left;
# exit 130, 143, 129) and a killed worker; rendezvous errors in time.
set -eu
cli=$1 ref=$2
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill -KILL $p 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
m="$ref/models/tiny-sd1"
mkdir "$tmp/data"
"$cli" generate --model "$m" --prompt "colibrí" --num-images 3 --steps 2 --seed 5 --width 64 --height 64 \
  --quiet --out "$tmp/data/bird.png"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
train() { "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --seed 3 --timeout 20 "$@"; }
# launcher ARGS...: `train --nproc 2 ARGS` in the background, in a session of its own as a
# terminal's command ($! is the launcher itself, and its process group)
launcher() {
  (exec setsid "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --seed 3 --timeout 20 --nproc 2 "$@") &
  pids="$pids $!"
}
# rank R WORLD PORT ARGS...: rank R with torchrun's variables, in the background ($! is bioesp)
rank() {
  r=$1 w=$2 port=$3; shift 3
  (RANK=$r LOCAL_RANK=$r WORLD_SIZE=$w LOCAL_WORLD_SIZE=$w MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    exec "$cli" train --model "$m" --data "$tmp/data" --prompt x --resolution 64 --seed 3 --timeout 20 "$@") &
  pids="$pids $!"
}
loads() {  # every checkpoint under its final name loads
  for c in "$1"/checkpoint-*.safetensors; do
    [ -e "$c" ] || continue
    "$cli" inspect "$c" >/dev/null 2>&1 || { echo "$c does not load"; exit 1; }
  done
}

# Two ranks by hand, 10 steps, a checkpoint at step 5. Rank 1 writes nothing.
port=$(free_port)
rank 0 2 $port --steps 10 --checkpoint-every 5 --quiet --out "$tmp/a" 2>"$tmp/a0.txt"; p0=$!
rank 1 2 $port --steps 10 --checkpoint-every 5 --quiet --out "$tmp/a1" 2>"$tmp/a1.txt"; p1=$!
wait $p0 || { cat "$tmp/a0.txt" "$tmp/a1.txt"; exit 1; }
wait $p1 || { cat "$tmp/a1.txt"; exit 1; }
[ -s "$tmp/a/pytorch_lora_weights.safetensors" ]  # (one test a line: set -e passes over a failed `a` in `a && b`)
[ -s "$tmp/a/checkpoints/checkpoint-000005.safetensors" ]
[ ! -e "$tmp/a1" ] || { echo "rank 1 wrote to its --out"; exit 1; }
[ "$(wc -l < "$tmp/a/train_log.jsonl")" -eq 10 ]
"$cli" inspect "$tmp/a/checkpoints/checkpoint-000005.safetensors" | grep -q 'world_size.*2'

# Resumed from step 5 by the launcher: the same bytes as the straight run.
mkdir -p "$tmp/b/checkpoints" "$tmp/c/checkpoints"
cp "$tmp/a/checkpoints/checkpoint-000005.safetensors" "$tmp/b/checkpoints/"
cp "$tmp/a/checkpoints/checkpoint-000005.safetensors" "$tmp/c/checkpoints/"
train --nproc 2 --steps 10 --checkpoint-every 5 --resume --out "$tmp/b" 2>"$tmp/b.txt" || { cat "$tmp/b.txt"; exit 1; }
grep -q '10/10  loss .*2 processes' "$tmp/b.txt"  # the progress bar shows the world size
cmp "$tmp/a/pytorch_lora_weights.safetensors" "$tmp/b/pytorch_lora_weights.safetensors" ||
  { echo "the resumed 2-rank run differs from the straight one"; exit 1; }
[ "$(tail -n 5 "$tmp/a/train_log.jsonl")" = "$(cat "$tmp/b/train_log.jsonl")" ]
# Resumed by one process: it goes on from the weights and optimizer state, and says so.
train --steps 10 --resume --out "$tmp/c" 2>"$tmp/c.txt" || { cat "$tmp/c.txt"; exit 1; }
grep -q 'comes from a run of 2 processes, this one has 1: the weights and optimizer state continue' "$tmp/c.txt"
[ -s "$tmp/c/pytorch_lora_weights.safetensors" ]

# SIGKILL of rank 1 mid-run: rank 0 stops within the timeout naming it.
port=$(free_port)
rank 0 2 $port --steps 2000 --checkpoint-every 2 --quiet --out "$tmp/k" 2>"$tmp/k0.txt"; p0=$!
rank 1 2 $port --steps 2000 --checkpoint-every 2 --quiet --out "$tmp/k" 2>"$tmp/k1.txt"; p1=$!
n=0
while ! ls "$tmp/k/checkpoints" 2>/dev/null | grep -q 'checkpoint-000004.safetensors$' && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
kill -KILL $p1
start=$(date +%s)
rc=0; wait $p0 || rc=$?
took=$(($(date +%s) - start))
echo "rank 0 stopped $took s after rank 1 was killed (exit $rc)"
[ $rc -ne 0 ]
[ $took -le 20 ]
grep -q 'rank 1 stopped answering' "$tmp/k0.txt" || { cat "$tmp/k0.txt"; exit 1; }
loads "$tmp/k/checkpoints"
if ls "$tmp/k/checkpoints" | grep -v '\.safetensors$'; then echo "not only complete checkpoints"; exit 1; fi

# The launcher: Ctrl-C (sent to its process group, as a terminal sends it), SIGTERM and SIGHUP
# each stop both ranks after the same step: no worker left, exit 128 + the signal, and one
# checkpoint, rank 0's (rank 1 is quiet), complete, of 2 processes, from which --resume goes on.
for sig in INT TERM HUP; do
  d="$tmp/$sig"
  launcher --steps 2000 --out "$d" 2>"$d.txt"
  launcher=$!
  n=0
  while ! grep -q '/2000  loss' "$d.txt" && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
  case $sig in
    INT) kill -INT "-$launcher"; want=130 ;;
    TERM) kill -TERM $launcher; want=143 ;;
    HUP) kill -HUP $launcher; want=129 ;;
  esac
  rc=0; wait $launcher || rc=$?
  [ $rc -eq $want ] || { echo "SIG$sig: exit $rc"; cat "$d.txt"; exit 1; }
  for p in $(sed -n 's/.*rank [0-9] is pid \([0-9]*\).*/\1/p' "$d.txt"); do
    if kill -0 "$p" 2>/dev/null; then echo "SIG$sig: worker $p outlived the launcher"; exit 1; fi
  done
  [ "$(grep -c 'training cancelled at step' "$d.txt")" -eq 1 ] || { cat "$d.txt"; exit 1; }
  step=$(sed -n 's/.*training cancelled at step \([0-9]*\);.*/\1/p' "$d.txt")
  [ "$(ls "$d/checkpoints")" = "checkpoint-$(printf %06d "$step").safetensors" ] || { echo "SIG$sig at $step:"; ls "$d/checkpoints"; exit 1; }
  loads "$d/checkpoints"
  "$cli" inspect "$d/checkpoints/checkpoint-$(printf %06d "$step").safetensors" | grep -q 'world_size.*2'
  [ "$(wc -l < "$d/train_log.jsonl")" -eq "$step" ]
  train --nproc 2 --steps $((step + 2)) --resume --out "$d" 2>"$d.resumed.txt" || { cat "$d.resumed.txt"; exit 1; }
  grep -q "resuming from .*checkpoint-$(printf %06d "$step").safetensors at step $step" "$d.resumed.txt"
  [ "$(wc -l < "$d/train_log.jsonl")" -eq $((step + 2)) ]
  [ -s "$d/pytorch_lora_weights.safetensors" ]
done
# A killed worker is named.
launcher --steps 2000 --out "$tmp/j" 2>"$tmp/j.txt"
launcher=$!
n=0
while ! grep -q '/2000  loss' "$tmp/j.txt" && [ $n -lt 1200 ]; do sleep 0.1; n=$((n + 1)); done
kill -KILL "$(sed -n 's/.*rank 1 is pid \([0-9]*\).*/\1/p' "$tmp/j.txt")"
rc=0; wait $launcher || rc=$?
[ $rc -ne 0 ] && grep -q 'rank 1 was killed by signal 9' "$tmp/j.txt" || { cat "$tmp/j.txt"; exit 1; }

# Rendezvous errors, each within the timeout: nobody at rank 1's port, a world that never fills,
# a backend that does not exist.
# in_time SECONDS: the time since $start was at most that (the timeout and a process's start)
in_time() { took=$(($(date +%s) - start)); [ $took -le "$1" ] || { echo "an error took $took s"; exit 1; }; }
port=$(free_port)
start=$(date +%s)
rank 0 2 $port --steps 2 --timeout 5 --out "$tmp/e" 2>"$tmp/e0.txt"; p0=$!
rank 1 2 $(free_port) --steps 2 --timeout 5 --out "$tmp/e" 2>"$tmp/e1.txt"; p1=$!
if wait $p0 || wait $p1; then echo "a rank without its peer succeeded"; exit 1; fi
in_time 15
grep -q 'only 1 of 2 ranks joined the rendezvous' "$tmp/e0.txt"
grep -q 'cannot reach the rendezvous' "$tmp/e1.txt"
start=$(date +%s)
if RANK=0 WORLD_SIZE=3 MASTER_PORT=$(free_port) train --steps 2 --timeout 3 --out "$tmp/e" 2>"$tmp/e.txt"; then exit 1; fi
in_time 13
grep -q 'only 1 of 3 ranks joined' "$tmp/e.txt"
start=$(date +%s)
if train --steps 2 --backend mpi --out "$tmp/e" 2>"$tmp/e.txt"; then exit 1; fi
in_time 5
grep -q "one of auto, gloo, nccl, not 'mpi'" "$tmp/e.txt"
echo ok
