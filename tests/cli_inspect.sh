#!/bin/sh
# bioesp inspect on reference files: formats, counts, LoRA flavour; errors go to stderr, nonzero.
set -eu
cli=$1 ref=$2
out=$("$cli" inspect "$ref/workshop/model_lora.ckpt")
echo "$out" | grep -q '^format: PyTorch zip checkpoint$'
echo "$out" | grep -q '^tensor count: 256$'
echo "$out" | grep -q '^  global_step = 200$'
echo "$out" | grep -q '^lora: legacy checkpoint, rank 4, 128 target modules$'
echo "$out" | grep -q 'model.diffusion_model.unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight  F32  \[4, 768\]'
"$cli" inspect "$ref/golden/tiny-sd1/lora/kohya_lora.safetensors" | grep -q '^lora: kohya, rank 4'
"$cli" inspect "$ref/models/tiny-sd1" | grep -q '^  unet/conv_in.weight  F32  \[32, 4, 3, 3\]$'
"$cli" inspect "$ref/golden/tiny-sd1/tiny-sd1.single_file.safetensors" --config "$ref/models/tiny-sd1" \
  | grep -q '^  vae/decoder.mid_block.attentions.0.to_q.weight  F32  \[32, 32\]$'
"$cli" --version | grep -q '^bioesp [0-9]*\.[0-9]*\.[0-9]*$'
"$cli" --help | grep -q 'inspect PATH'
if "$cli" inspect /nonexistent 2>err.txt >/dev/null; then echo "missing file accepted"; exit 1; fi
grep -q 'no such file' err.txt
if "$cli" frobnicate 2>/dev/null; then echo "unknown command accepted"; exit 1; fi
echo ok
