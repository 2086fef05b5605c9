#!/bin/bash
# One run on a CUDA machine with PyTorch's bundled LibTorch 2.x: build, run the CUDA bench (tiny
# model checks against the CPU, full-size SD 1.x generation and LoRA training rows), generate
# and train with the CLI.
# Usage: scripts/gpu-check.sh REFERENCE_DIR [OUT_DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref=$(cd "$1" && pwd)
out=${2:-/tmp}
py=$(command -v python3)
export PATH="$(dirname "$py"):$PATH"
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
export TORCH_CUDA_ARCH_LIST=9.0
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
configure() {
  cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
    -DBIOESP_BUILD_TESTS=OFF "$@" > "$out/configure.log" 2>&1
}
start=$(date +%s)
if ! configure || ! cmake --build "$root/build-gpu" -j 16 > "$out/build.log" 2>&1; then
  echo "first build failed; retrying without CUDA allocator statistics"; grep -m 10 -A4 'error' "$out/build.log"
  configure -DBIOESP_BENCH_CUDA_MEMORY=OFF && cmake --build "$root/build-gpu" -j 16 > "$out/build.log" 2>&1
fi
if [ ! -x "$root/build-gpu/bench/bench" ]; then
  echo "build failed again; retrying with C++20 and without image support"; tail -n 30 "$out/build.log" "$out/configure.log"
  rm -rf "$root/build-gpu"
  configure -DCMAKE_CXX_STANDARD=20 -DBIOESP_WITH_IMAGES=OFF || { tail -n 40 "$out/configure.log"; exit 1; }
  cmake --build "$root/build-gpu" -j 16 > "$out/build.log" 2>&1 || { grep -m 20 -B2 -A6 'error' "$out/build.log"; exit 1; }
fi
echo "build: $(( $(date +%s) - start )) s"
export BIOESP_REFERENCE_DIR="$ref"
"$root/build-gpu/bench/bench" --device cuda --full --repeat 3 2>&1 | tee "$out/bench-cuda.txt"
"$root/build-gpu/bench/bench" --repeat 1 2>&1 | tee "$out/bench-cpu.txt"
# Training on the GPU with the CLI: fp16 and bf16 mixed precision, with a validation image.
mkdir -p "$out/data"
"$root/build-gpu/bioesp" generate --model "$ref/models/tiny-sd1" --prompt "colibrí" --num-images 4 --steps 4 --seed 9 \
  --quiet --out "$out/data/img.png"
for mp in fp16 bf16 no; do
  /usr/bin/time -f "train $mp: %e s wall" "$root/build-gpu/bioesp" train --model "$ref/models/tiny-sd1" \
    --data "$out/data" --prompt "criatura especulativa colombiana" --resolution 128 --steps 30 --batch 2 --seed 1 \
    --mixed-precision $mp --device cuda --validation-prompt "criatura" --validation-steps 10 --quiet \
    --out "$out/train-$mp" 2>&1 | grep -v "DreamBooth works best" | tail -n 3
  tail -n 1 "$out/train-$mp/train_log.jsonl"
done
# bf16 and fp32 once more with the step captured as a CUDA graph (BIOESP_CUDA_GRAPHS=1): the
# trained LoRA against the eager one.
for mp in bf16 no; do
  BIOESP_CUDA_GRAPHS=1 /usr/bin/time -f "train $mp, captured: %e s wall" "$root/build-gpu/bioesp" train \
    --model "$ref/models/tiny-sd1" --data "$out/data" --prompt "criatura especulativa colombiana" --resolution 128 \
    --steps 30 --batch 2 --seed 1 --mixed-precision $mp --device cuda --validation-prompt "criatura" \
    --validation-steps 10 --quiet --out "$out/graph-$mp" 2>&1 | grep -v "DreamBooth works best" | tail -n 3
  tail -n 1 "$out/graph-$mp/train_log.jsonl"
  python3 "$root/scripts/compare_lora.py" "$out/graph-$mp/pytorch_lora_weights.safetensors" \
    "$out/train-$mp/pytorch_lora_weights.safetensors"
done
rm -rf "$out"/train-*/checkpoints "$out"/graph-*/checkpoints
"$root/build-gpu/bioesp" generate --model "$ref/models/tiny-sd1" --device cuda --prompt "criatura especulativa colombiana" \
  --negative-prompt "blurry, low quality" --steps 10 --scheduler ddim --seed 1234 --quiet --out "$out/cuda.png" && echo "generate on cuda: ok"
"$root/build-gpu/bioesp" generate --model "$ref/models/tiny-sd1" --device cuda --dtype f16 --prompt "colibrí" \
  --steps 10 --seed 1 --quiet --out "$out/cuda-f16.png" && echo "generate on cuda fp16: ok"
"$root/build-gpu/bioesp" generate --model "$ref/models/tiny-sd1" --device cuda --dtype f16 --prompt "colibrí" \
  --steps 10 --seed 1 --width 512 --height 384 --vae-tiles 128 --quiet --out "$out/cuda-f16-tiled.png" \
  && echo "generate on cuda fp16, 512×384 in 128 px VAE tiles: ok"
