#!/bin/sh
# bioesp pull / push and model ids against a loopback Hub (tests/support/hub_server.py): the
# revision, paginated tree and resolve protocol with a redirect to a storage host that must not
# see the token, a connection dropped mid-blob (resumed), a 429 with Retry-After, a blob whose hash
# does not match (rejected, cache untouched), a gated repository, missing repositories, revisions
# and entries, a renamed repository, the file selection for pipelines, a cache laid out by
# huggingface_hub before bioesp ever ran, offline use; then publishing a LoRA with its model card
# (create, preupload, basic and multipart LFS uploads, verify, NDJSON commit), pushing again
# (nothing sent), and generating with the published LoRA by its id.
set -eu
cli=$1 ref=$2 src=$(cd "$(dirname "$0")" && pwd)
. "$src/support/loopback.sh"
m="$ref/models/tiny-sd1"

# A pipeline repository with more than a pipeline needs: .bin twins, an fp16 variant, a top-level
# single-file checkpoint, safety checker weights.
mix="$tmp/mixed"
mkdir -p "$mix/unet" "$mix/vae" "$mix/safety_checker" "$mix/tokenizer"
cp "$m/model_index.json" "$mix/"
cp "$m/unet/config.json" "$m/unet/diffusion_pytorch_model.safetensors" "$mix/unet/"
cp "$m/unet/diffusion_pytorch_model.safetensors" "$mix/unet/diffusion_pytorch_model.bin"
cp "$m/unet/diffusion_pytorch_model.safetensors" "$mix/unet/diffusion_pytorch_model.fp16.safetensors"
cp "$m/vae/config.json" "$mix/vae/"
cp "$m/vae/diffusion_pytorch_model.safetensors" "$mix/vae/diffusion_pytorch_model.bin"
echo '{}' > "$mix/safety_checker/config.json"
cp "$m/vae/diffusion_pytorch_model.safetensors" "$mix/safety_checker/model.safetensors"
cp "$m/tokenizer/"* "$mix/tokenizer/"
cp "$m/unet/diffusion_pytorch_model.safetensors" "$mix/sd-v1-4.ckpt"
# SDXL's layout (the tiny one, with an fp16 text_encoder_2 and the base repository's extra VAE
# folder and ONNX export, which its model_index.json does not name).
xl="$tmp/xl"
cp -r "$ref/models/tiny-sdxl" "$xl" && chmod -R u+w "$xl"
cp "$xl/text_encoder_2/model.safetensors" "$xl/text_encoder_2/model.fp16.safetensors"
mkdir -p "$xl/vae_1_0" "$xl/vae_decoder"
cp "$xl/vae/config.json" "$xl/vae/diffusion_pytorch_model.safetensors" "$xl/vae_1_0/"
cp "$xl/vae/config.json" "$xl/vae_decoder/" && echo onnx > "$xl/vae_decoder/model.onnx"

start_server python3 "$src/support/hub_server.py" "$tmp/port" "$tmp/server.log" \
  --seed "bioesp/tiny-sd1=$m" --seed "gated/tiny=$m" --seed "bioesp/mixed=$mix" --seed "bioesp/tiny-sdxl=$xl" --alias "old/tiny-sd1=bioesp/tiny-sd1"
hub="http://127.0.0.1:$(cut -d' ' -f1 "$tmp/port")"
export HF_ENDPOINT="$hub" HF_HUB_CACHE="$tmp/cache" HF_HOME="$tmp/hf-home"
unset HF_TOKEN HF_HUB_OFFLINE HF_TOKEN_PATH 2>/dev/null || true
pull() { "$cli" pull --retry-delay 0.05 --quiet "$@"; }
storage_gets() { grep -c "^storage GET" "$tmp/server.log" || true; }
resolve_gets() { grep -c "^hub GET .*/resolve/" "$tmp/server.log" || true; }

# 1. Pull with a token: a 429 first, a connection dropped in every file, pages of three entries.
HF_TOKEN=hf_read HF_ENDPOINT="$hub/s/ratelimit,drop" pull bioesp/tiny-sd1 > "$tmp/snap" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
snap=$(cat "$tmp/snap")
repo="$tmp/cache/models--bioesp--tiny-sd1"
case "$snap" in "$repo/snapshots/"*) ;; *) echo "snapshot $snap is not in the cache"; exit 1 ;; esac
commit=$(basename "$snap")
[ "$(cat "$repo/refs/main")" = "$commit" ]
for f in model_index.json scheduler/scheduler_config.json text_encoder/config.json text_encoder/model.safetensors \
         tokenizer/vocab.json tokenizer/merges.txt unet/config.json unet/diffusion_pytorch_model.safetensors \
         vae/diffusion_pytorch_model.safetensors; do
  cmp "$m/$f" "$snap/$f"
  [ -L "$snap/$f" ] || { echo "$f is not a symlink"; exit 1; }
  case "$(readlink "$snap/$f")" in ../../*blobs/*) ;; *) echo "$f: link $(readlink "$snap/$f") is not relative"; exit 1 ;; esac
done
# LFS blobs are named by sha256, regular ones by their git blob id.
sha=$(sha256sum "$m/unet/diffusion_pytorch_model.safetensors" | cut -d' ' -f1)
[ -f "$repo/blobs/$sha" ]
oid=$(python3 -c "import hashlib,sys;d=open(sys.argv[1],'rb').read();print(hashlib.sha1(b'blob %d\0'%len(d)+d).hexdigest())" "$m/unet/config.json")
[ -f "$repo/blobs/$oid" ]
ls "$repo/blobs" | grep -q incomplete && { echo "an .incomplete file was left"; exit 1; }
grep -q "cursor=3" "$tmp/server.log"                           # the tree was paged
grep -q "HTTP 429" "$tmp/err"                                  # and the 429 retried
grep "^storage GET" "$tmp/server.log" | grep -q "range=bytes=" # a dropped blob resumed with Range
grep "^hub .*/resolve/" "$tmp/server.log" | grep -q "auth=yes" # the Hub got the token …
grep "^storage" "$tmp/server.log" | grep -q "auth=yes" && { echo "the token reached the storage host"; exit 1; }
grep -q "hf_read" "$tmp/err" && { echo "the token was printed"; exit 1; }

# 2. Pulling again downloads nothing; the id works wherever a model path does.
before=$(storage_gets); before_r=$(resolve_gets)
pull bioesp/tiny-sd1 > /dev/null
[ "$(storage_gets)" -eq "$before" ] && [ "$(resolve_gets)" -eq "$before_r" ]
gen() { "$cli" generate --prompt "una rana" --steps 2 --seed 7 --width 64 --height 64 --quiet "$@"; }
pixels() { python3 -c "
import sys, zlib
d = open(sys.argv[1], 'rb').read(); i = 8; out = b''
while i < len(d):
    n = int.from_bytes(d[i:i+4], 'big'); t = d[i+4:i+8]
    if t == b'IDAT': out += d[i+8:i+8+n]
    i += 12 + n
sys.stdout.write(zlib.decompress(out).hex())" "$1"; }
gen --model "$m" --out "$tmp/local.png"
gen --model bioesp/tiny-sd1 --out "$tmp/byid.png"
[ "$(pixels "$tmp/local.png")" = "$(pixels "$tmp/byid.png")" ]
"$cli" inspect bioesp/tiny-sd1 | grep -q "unet"
"$cli" inspect bioesp/tiny-sd1 --expected > /dev/null
# Offline: from the cache, by the environment variable or because the Hub is unreachable.
HF_HUB_OFFLINE=1 gen --model bioesp/tiny-sd1 --out "$tmp/offline.png"
[ "$(pixels "$tmp/local.png")" = "$(pixels "$tmp/offline.png")" ]
HF_ENDPOINT=http://127.0.0.1:9 gen --model bioesp/tiny-sd1 --out "$tmp/unreachable.png" 2>"$tmp/err"
grep -q "using the cached snapshot" "$tmp/err"
HF_ENDPOINT="$hub/s/down" "$cli" pull --retries 1 --retry-delay 0.05 --quiet bioesp/tiny-sd1 2>"$tmp/err" | grep -q "$commit"
HF_HUB_OFFLINE=1 pull bioesp/unknown 2>"$tmp/err" && exit 1
grep -q "not in the cache" "$tmp/err"

# 3. A renamed repository, a revision (tag), selection, variants, --include.
pull old/tiny-sd1@v1 | grep -q "models--old--tiny-sd1/snapshots/$commit"
mixed=$(pull bioesp/mixed)
( cd "$mixed" && find . -type l -o -type f | sort ) > "$tmp/mixed.txt"
cat > "$tmp/mixed.want" <<EOF
./.gitattributes
./model_index.json
./safety_checker/config.json
./tokenizer/merges.txt
./tokenizer/special_tokens_map.json
./tokenizer/tokenizer_config.json
./tokenizer/vocab.json
./unet/config.json
./unet/diffusion_pytorch_model.safetensors
./vae/config.json
./vae/diffusion_pytorch_model.bin
EOF
diff "$tmp/mixed.want" "$tmp/mixed.txt"
HF_HUB_CACHE="$tmp/cache-fp16" pull bioesp/mixed --variant fp16 > "$tmp/fp16"
[ -e "$(cat "$tmp/fp16")/unet/diffusion_pytorch_model.fp16.safetensors" ]
[ ! -e "$(cat "$tmp/fp16")/unet/diffusion_pytorch_model.safetensors" ]
HF_HUB_CACHE="$tmp/cache-inc" pull bioesp/mixed --include "*.json" > "$tmp/inc"
[ -e "$(cat "$tmp/inc")/unet/config.json" ] && [ ! -e "$(cat "$tmp/inc")/unet/diffusion_pytorch_model.safetensors" ]

# SDXL: both text encoders and tokenizers, no folder model_index.json does not name; fp16 variants.
sdxl=$(pull bioesp/tiny-sdxl)
( cd "$sdxl" && find . -type l -o -type f | sort ) > "$tmp/xl.txt"
{ echo ./.gitattributes; ( cd "$ref/models/tiny-sdxl" && find . -type f ); } | sort > "$tmp/xl.want"
diff "$tmp/xl.want" "$tmp/xl.txt"
"$cli" inspect --expected "$sdxl" | grep -q '^result: 0 missing, 0 unexpected, 0 mismatched$'
HF_HUB_CACHE="$tmp/cache-xl16" pull bioesp/tiny-sdxl --variant fp16 > "$tmp/xl16"
[ -e "$(cat "$tmp/xl16")/text_encoder_2/model.fp16.safetensors" ] && [ -e "$(cat "$tmp/xl16")/tokenizer_2/vocab.json" ]
[ ! -e "$(cat "$tmp/xl16")/text_encoder_2/model.safetensors" ] && [ ! -e "$(cat "$tmp/xl16")/vae_1_0" ]

# 4. Errors as the Hub reports them; nothing half-written enters the cache.
pull gated/tiny 2>"$tmp/err" && exit 1
grep -q "gated" "$tmp/err"
pull bioesp/does-not-exist 2>"$tmp/err" && exit 1
grep -q "not found" "$tmp/err"
pull bioesp/tiny-sd1@no-such-branch 2>"$tmp/err" && exit 1
grep -q "revision not found" "$tmp/err"
HF_HUB_CACHE="$tmp/cache-bad" HF_ENDPOINT="$hub/s/badhash" pull bioesp/tiny-sd1 2>"$tmp/err" && exit 1
grep -q "does not match the Hub's hash" "$tmp/err"
bad="$tmp/cache-bad/models--bioesp--tiny-sd1"
ls "$bad/blobs" | grep -q incomplete && { echo "a corrupt download was left"; exit 1; }
python3 - "$bad" <<'EOF'
import hashlib, os, sys
blobs = os.path.join(sys.argv[1], "blobs")
for n in os.listdir(blobs) if os.path.isdir(blobs) else []:
    d = open(os.path.join(blobs, n), "rb").read()
    h = hashlib.sha256(d).hexdigest() if len(n) == 64 else hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest()
    assert h == n, "blob %s does not hold what its name says" % n
EOF
HF_HUB_CACHE="$tmp/cache-vanish" HF_ENDPOINT="$hub/s/vanish" pull bioesp/tiny-sd1 2>"$tmp/err" && exit 1
grep -q "no such file" "$tmp/err"
[ -e "$tmp/cache-vanish/models--bioesp--tiny-sd1/.no_exist/$commit/unet/config.json" ]

# 5. A cache written by huggingface_hub (same layout, made here by hand): used as it is.
hf="$tmp/cache-hf"
python3 - "$m" "$hf/models--bioesp--tiny-sd1" "$commit" <<'EOF'
import hashlib, os, sys
src, repo, commit = sys.argv[1:]
os.makedirs(repo + "/refs"); open(repo + "/refs/main", "w").write(commit)
files = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
for root, _, names in os.walk(src):
    for n in names:
        files[os.path.relpath(os.path.join(root, n), src)] = open(os.path.join(root, n), "rb").read()
for rel, data in files.items():
    lfs = rel.endswith(".safetensors")
    etag = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    os.makedirs(repo + "/blobs", exist_ok=True)
    open(repo + "/blobs/" + etag, "wb").write(data)
    link = os.path.join(repo, "snapshots", commit, rel)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(os.path.relpath(repo + "/blobs/" + etag, os.path.dirname(link)), link)
EOF
before=$(storage_gets); before_r=$(resolve_gets)
HF_HUB_CACHE="$hf" pull bioesp/tiny-sd1 > /dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
HF_HUB_CACHE="$hf" gen --model bioesp/tiny-sd1 --out "$tmp/hf.png"
[ "$(storage_gets)" -eq "$before" ] && [ "$(resolve_gets)" -eq "$before_r" ]
[ "$(pixels "$tmp/local.png")" = "$(pixels "$tmp/hf.png")" ]

# 6. Publish a training output: LoRA (multipart LFS), a validation image (basic LFS), the log
#    (regular), a generated model card crediting the dataset; checkpoints stay home.
out="$tmp/lora-out"
mkdir -p "$out/validation" "$out/checkpoints"
python3 - "$ref/golden/tiny-sd1/lora/pytorch_lora_weights.safetensors" "$out/pytorch_lora_weights.safetensors" <<'EOF'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
h["__metadata__"] = {"format": "pt", "bioesp.base_model": "bioesp/tiny-sd1", "bioesp.prompt": "criatura especulativa colombiana",
                     "bioesp.rank": "4", "bioesp.steps": "200", "bioesp.learning_rate": "0.0001", "bioesp.seed": "0"}
hb = json.dumps(h).encode(); hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + d[8 + n:])
EOF
cp "$tmp/local.png" "$out/validation/step-000200.png"
echo '{"step": 1, "loss": 0.1}' > "$out/train_log.jsonl"
echo "not for publishing" > "$out/checkpoints/checkpoint-000100.safetensors"
cat > "$out/dataset_manifest.jsonl" <<'EOF'
{"file":"Colibri 1.jpg","title":"File:Colibrí en Boyacá.jpg","author":"Ana María & José","license":"CC BY-SA 4.0","license_url":"https://creativecommons.org/licenses/by-sa/4.0","page_url":"https://commons.wikimedia.org/wiki/File:Colibr%C3%AD_en_Boyac%C3%A1.jpg"}
{"file":"Rana.jpg","title":"File:Rana dorada.jpg","author":"Luis Pérez","license":"CC0","page_url":"https://commons.wikimedia.org/wiki/File:Rana_dorada.jpg"}
EOF
push() { "$cli" push --retry-delay 0.05 --quiet "$@"; }
push "$out" --repo ana/criaturas 2>"$tmp/err" && exit 1
grep -q "needs a Hub token" "$tmp/err"
push "$out" --repo ana/criaturas --token hf_read 2>"$tmp/err" && exit 1
grep -q "forbidden\|403" "$tmp/err"
push "$out" --repo ana/criaturas --token hf_write > "$tmp/url" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "/ana/criaturas/commit/" "$tmp/url"
grep -q "^storage PUT /part/" "$tmp/server.log"     # the LoRA went multipart …
grep -q "^storage POST /complete/" "$tmp/server.log"
grep -q "^storage PUT /upload/" "$tmp/server.log"   # … the image basic
grep -q "lfs/objects/verify" "$tmp/server.log"
card="$out/README.md"
grep -q "^base_model: bioesp/tiny-sd1" "$card"
grep -q "^license: " "$card"
grep -q "^- lora" "$card" && grep -q "^- bioesp" "$card"
grep -q "instance_prompt: 'criatura especulativa colombiana'" "$card"
grep -q "Ana María & José" "$card" && grep -q "Luis Pérez" "$card"
grep -q "CC BY-SA 4.0" "$card" && grep -q "share-alike" "$card"
grep -q "commons.wikimedia.org/wiki/File:Rana_dorada.jpg" "$card"
grep -q "validation/step-000200.png" "$card"
# What the Hub holds now, read back through the download path.
back=$(HF_HUB_CACHE="$tmp/cache-back" pull ana/criaturas --include "*")
cmp "$back/pytorch_lora_weights.safetensors" "$out/pytorch_lora_weights.safetensors"
cmp "$back/README.md" "$card"
cmp "$back/validation/step-000200.png" "$out/validation/step-000200.png"
[ ! -e "$back/checkpoints" ]
# Again: everything is there, nothing is sent.
puts=$(grep -c "^storage PUT" "$tmp/server.log")
push "$out" --repo ana/criaturas --token hf_write 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
grep -q "nothing changed" "$tmp/err"
[ "$(grep -c "^storage PUT" "$tmp/server.log")" -eq "$puts" ]
# A single LoRA file to a new repository, and generating with it by id.
HF_TOKEN=hf_write push "$ref/golden/tiny-sd1/lora/pytorch_lora_weights.safetensors" --repo ana/solo --base-model bioesp/tiny-sd1 > /dev/null
gen --model bioesp/tiny-sd1 --lora ana/solo:0.8 --out "$tmp/lora-id.png"
gen --model "$m" --lora "$ref/golden/tiny-sd1/lora/pytorch_lora_weights.safetensors:0.8" --out "$tmp/lora-file.png"
[ "$(pixels "$tmp/lora-id.png")" = "$(pixels "$tmp/lora-file.png")" ]
[ "$(pixels "$tmp/lora-id.png")" != "$(pixels "$tmp/local.png")" ]
# SDXL LoRAs name SDXL as their base: by their second text encoder's layers, or by the base
# model's folder that training recorded.
xlcard() { HF_HUB_CACHE="$tmp/cache-$1" pull "ana/$1" --include README.md; }
HF_TOKEN=hf_write push "$ref/golden/tiny-sdxl/lora/pytorch_lora_weights.safetensors" --repo ana/xl > /dev/null
grep -q "^- stable-diffusion-xl$" "$(xlcard xl)/README.md"
grep -q "StableDiffusionXLPipeline" "$(xlcard xl)/README.md"
mkdir -p "$tmp/xl-unet"
python3 - "$ref/golden/tiny-sdxl/lora/pytorch_lora_weights.safetensors" "$tmp/xl-unet/pytorch_lora_weights.safetensors" "$ref/models/tiny-sdxl" <<'EOF'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
data, out = b"", {}
for k, v in sorted(h.items()):
    if not k.startswith("unet."):
        continue
    b, e = v["data_offsets"]; out[k] = dict(v, data_offsets=[len(data), len(data) + e - b]); data += d[8 + n + b:8 + n + e]
out["__metadata__"] = {"format": "pt", "bioesp.base_model": sys.argv[3]}
hb = json.dumps(out).encode(); hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + data)
EOF
HF_TOKEN=hf_write push "$tmp/xl-unet" --repo ana/xl-unet > /dev/null
grep -q "^- stable-diffusion-xl$" "$tmp/xl-unet/README.md"
grep -q "^license: openrail++$" "$tmp/xl-unet/README.md"
echo "cli_hub: ok"
