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
# --expected: the folder, and the single file with given and with inferred configs, are complete
"$cli" inspect --expected "$ref/models/tiny-sd1" | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
"$cli" inspect --expected "$ref/golden/tiny-sd1/tiny-sd1.single_file.safetensors" --config "$ref/models/tiny-sd1" \
  | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
"$cli" inspect --expected "$ref/golden/tiny-sd1/tiny-sd1.single_file.safetensors" \
  | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
# SDXL: the folder, and its original (SGM) single file with given and inferred configs
xl="$ref/golden/tiny-sdxl/tiny-sdxl.single_file.safetensors"
"$cli" inspect --expected "$ref/models/tiny-sdxl" | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
"$cli" inspect --expected "$xl" --config "$ref/models/tiny-sdxl" | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
"$cli" inspect --expected "$xl" | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
"$cli" inspect --to-diffusers "$xl" | grep -q '^  text_encoder_2/text_projection.weight  F32  \[16, 12\]$'
# a component whose weights do not fit its config: exit 1 and every mismatch named
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/unet"; ln -s "$ref/models/tiny-sd1/unet/diffusion_pytorch_model.safetensors" "$tmp/unet/"
sed 's/"cross_attention_dim": 32/"cross_attention_dim": 64/' "$ref/models/tiny-sd1/unet/config.json" > "$tmp/unet/config.json"
printf '{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}' > "$tmp/model_index.json"
if "$cli" inspect --expected "$tmp" > "$tmp/out.txt"; then echo "mismatch not reported"; exit 1; fi
grep -q '^mismatched: unet/down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight file \[32, 32\] vs architecture \[32, 64\]$' "$tmp/out.txt"
# --scheduler: what a name gives the model, as diffusers' from_config builds it
"$cli" inspect "$ref/models/tiny-sd1" --scheduler ddim --steps 10 > "$tmp/ddim.json"
"$cli" inspect "$ref/models/tiny-sd1" --scheduler euler:timestep_spacing=trailing --steps 4 > "$tmp/euler.json"
python3 - "$tmp/ddim.json" "$tmp/euler.json" <<'EOF'
import json, sys
ddim, euler = (json.load(open(p)) for p in sys.argv[1:])
c = ddim["config"]
assert ddim["class"] == "DDIMScheduler" and c["_class_name"] == "DDIMScheduler", ddim
assert c["clip_sample"] is True and "clip_sample" in c["_use_default_values"] and c["steps_offset"] == 1, c
assert c["skip_prk_steps"] is True and ddim["timesteps"] == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1], ddim
assert euler["timesteps"] == [999.0, 749.0, 499.0, 249.0] and len(euler["sigmas"]) == 5, euler
EOF
if "$cli" inspect "$ref/models/tiny-sd1" --scheduler heun 2>"$tmp/err.txt"; then echo "unknown scheduler accepted"; exit 1; fi
grep -q "unknown scheduler 'heun'" "$tmp/err.txt"
"$cli" --version | grep -q '^bioesp [0-9]*\.[0-9]*\.[0-9]*$'
"$cli" --help | grep -q 'inspect PATH'
if "$cli" inspect /nonexistent 2>err.txt >/dev/null; then echo "missing file accepted"; exit 1; fi
grep -q 'no such file' err.txt; rm -f err.txt
if "$cli" frobnicate 2>/dev/null; then echo "unknown command accepted"; exit 1; fi
echo ok
