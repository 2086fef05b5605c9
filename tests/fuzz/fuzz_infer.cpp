// Single-file shape inference: any bytes become an original (CompVis/LDM, SGM) checkpoint's keys and
// shapes (any number of dimensions, any sizes), renamed to diffusers names, its layout and
// configs inferred and the configs parsed. Everything either succeeds or throws an Error.
#include <cstdint>
#include <string>
#include <vector>

#include "config/infer.h"
#include "config/model_config.h"
#include "core/error.h"
#include "io/single_file.h"

namespace {

// Keys the inference reads, with {a} and {b} for block indices.
const char* const kKeys[] = {
    "model.diffusion_model.input_blocks.{a}.0.in_layers.2.weight",
    "model.diffusion_model.input_blocks.{a}.0.op.weight",
    "model.diffusion_model.input_blocks.{a}.1.proj_in.weight",
    "model.diffusion_model.input_blocks.{a}.1.transformer_blocks.{b}.attn2.to_k.weight",
    "model.diffusion_model.input_blocks.{a}.1.transformer_blocks.{b}.norm1.weight",
    "model.diffusion_model.output_blocks.{a}.1.proj_in.weight",
    "model.diffusion_model.input_blocks.0.0.weight",
    "model.diffusion_model.out.2.weight",
    "model.diffusion_model.label_emb.0.0.weight",
    "first_stage_model.encoder.down.{a}.block.{b}.conv1.weight",
    "first_stage_model.decoder.up.{a}.block.{b}.conv1.weight",
    "first_stage_model.encoder.conv_in.weight",
    "first_stage_model.decoder.conv_in.weight",
    "first_stage_model.decoder.conv_out.weight",
    "first_stage_model.encoder.mid.attn_1.q.weight",
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight",
    "cond_stage_model.transformer.text_model.encoder.layers.{a}.layer_norm1.weight",
    "cond_stage_model.transformer.text_model.encoder.layers.{a}.mlp.fc1.weight",
    "cond_stage_model.model.token_embedding.weight",
    "cond_stage_model.model.positional_embedding",
    "cond_stage_model.model.transformer.resblocks.{a}.attn.in_proj_weight",
    "cond_stage_model.model.transformer.resblocks.{a}.ln_1.weight",
    "cond_stage_model.model.transformer.resblocks.{a}.mlp.c_fc.weight",
    "conditioner.embedders.{b}.transformer.text_model.embeddings.token_embedding.weight",
    "conditioner.embedders.{b}.model.token_embedding.weight",
    "conditioner.embedders.{b}.model.transformer.resblocks.{a}.ln_1.weight",
    "conditioner.embedders.{b}.model.transformer.resblocks.{a}.mlp.c_fc.weight",
};

std::string fill(std::string key, const char* hole, int v) {
  size_t at = key.find(hole);
  if (at != std::string::npos) key.replace(at, 3, std::to_string(v));
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bioesp;
  size_t i = 0;
  auto byte = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
  io::WeightSet set;
  while (i < size && set.tensors.size() < 64) {
    io::Tensor t;
    t.name = kKeys[byte() % (sizeof kKeys / sizeof *kKeys)];
    t.name = fill(fill(t.name, "{a}", byte() % 16), "{b}", byte() % 4);
    for (int d = byte() % 5; d > 0; --d) {
      uint8_t v = byte();
      t.shape.push_back(v < 250 ? v % 64 : int64_t{1} << (v % 40));
    }
    try {
      t.nbytes = static_cast<size_t>(t.numel()) * 4;
    } catch (const Error&) {
      continue;
    }
    set.tensors.push_back(std::move(t));
  }
  set.sort();
  try {
    if (!io::looks_like_ldm(set)) return 0;
    io::WeightSet d = io::ldm_to_diffusers(set, io::infer_ldm_layout(set), nullptr);
    for (const char* c : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
      try {
        std::string text = config::infer_config(d, c);
        if (std::string(c) == "unet") config::parse_unet(text, c);
        else if (std::string(c) == "vae") config::parse_vae(text, c);
        else config::parse_clip_text(text, c);
      } catch (const Error&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
