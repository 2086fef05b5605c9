#include "config/infer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"

namespace bioesp::config {

using nlohmann::json;

namespace {

struct Shapes {
  const io::WeightSet& set;
  const std::string& component;
  const io::Tensor* find(const std::string& name) const {
    for (const auto& t : set.tensors)
      if (t.component == component && t.name == name) return &t;
    return nullptr;
  }
  // The shape of a tensor that must have `rank` dimensions (4: a convolution, 2: a linear layer
  // or an embedding).
  std::vector<int64_t> shape(const std::string& name, size_t rank) const {
    const io::Tensor* t = find(name);
    if (!t) fail(BIOESP_ERR_UNSUPPORTED, component + ": cannot infer the architecture without " + name);
    if (t->shape.size() != rank)
      fail(BIOESP_ERR_FORMAT, component + ": " + name + " has " + std::to_string(t->shape.size()) + " dimensions, not " +
                                  std::to_string(rank));
    for (int64_t d : t->shape)
      if (d < 1 || d > kMaxWidth)
        fail(BIOESP_ERR_FORMAT, component + ": " + name + " has a dimension of " + std::to_string(d) +
                                    " (a width from 1 to " + std::to_string(kMaxWidth) + " was expected)");
    return t->shape;
  }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  int count(const std::string& prefix, const std::string& suffix) const {
    int n = 0;
    while (has(prefix + std::to_string(n) + suffix)) ++n;
    return n;
  }
};

// 32 groups as in every SD checkpoint, fewer for narrow models (group counts leave no trace in shapes).
int norm_groups(const std::vector<int64_t>& channels) {
  int g = 32;
  for (int64_t ch : channels)
    while (g > 1 && ch % g) g /= 2;
  return g;
}

// What a UNet and a ControlNet show alike in their down path's shapes: blocks, widths, attention.
std::vector<int64_t> down_path(const Shapes& s, json& c) {
  int blocks = s.count("down_blocks.", ".resnets.0.conv1.weight");
  if (blocks == 0) fail(BIOESP_ERR_UNSUPPORTED, s.component + ": no down blocks found");
  std::vector<int64_t> channels;
  json down = json::array();
  int64_t cross = 0;
  bool linear = false;
  for (int i = 0; i < blocks; ++i) {
    std::string b = "down_blocks." + std::to_string(i);
    channels.push_back(s.shape(b + ".resnets.0.conv1.weight", 4)[0]);
    bool attn = s.has(b + ".attentions.0.proj_in.weight");
    down.push_back(attn ? "CrossAttnDownBlock2D" : "DownBlock2D");
    if (attn) {
      cross = s.shape(b + ".attentions.0.transformer_blocks.0.attn2.to_k.weight", 2)[1];
      // A linear projection (SD 2.x) or a 1×1 convolution (SD 1.x).
      linear = s.find(b + ".attentions.0.proj_in.weight")->shape.size() == 2;
    }
  }
  c["block_out_channels"] = channels;
  c["norm_num_groups"] = norm_groups(channels);
  c["down_block_types"] = down;
  c["layers_per_block"] = s.count("down_blocks.0.resnets.", ".conv1.weight");
  c["in_channels"] = s.shape("conv_in.weight", 4)[1];
  c["cross_attention_dim"] = cross;
  c["use_linear_projection"] = linear;
  // SD 1.x (CLIP-L, 768) has 8 heads per block; SD 2.x has 64-dimensional heads.
  if (cross == 768) {
    c["attention_head_dim"] = 8;
  } else {
    json heads = json::array();
    for (int64_t ch : channels) heads.push_back(std::max<int64_t>(1, ch / 64));
    c["attention_head_dim"] = heads;
  }
  // Per block (SDXL: [1, 2, 10]); blocks without attention count 1, as diffusers' configs write them.
  std::vector<int> layers;
  for (int i = 0; i < blocks; ++i)
    layers.push_back(std::max(1, s.count("down_blocks." + std::to_string(i) + ".attentions.0.transformer_blocks.", ".norm1.weight")));
  if (std::all_of(layers.begin(), layers.end(), [&](int n) { return n == layers[0]; })) c["transformer_layers_per_block"] = layers[0];
  else c["transformer_layers_per_block"] = layers;
  return channels;
}

// SDXL's added conditioning: add_embedding takes the pooled text embedding (text_encoder_2's
// projection) beside the sinusoidal embeddings of 6 size and crop ids (5 with the refiner's
// aesthetic score), so the width of one id's embedding is what the two leave.
void sdxl_conditioning(const io::WeightSet& set, const Shapes& s, json& c) {
  const int64_t in = s.shape("add_embedding.linear_1.weight", 2)[1];
  const Shapes te2{set, "text_encoder_2"};
  if (!te2.has("text_projection.weight"))
    fail(BIOESP_ERR_UNSUPPORTED, "unet: an SDXL UNet without its second text encoder; the width of its size "
                                 "embeddings cannot be inferred: give a config folder (--config)");
  const int64_t pooled = te2.shape("text_projection.weight", 2)[0], ids = in - pooled;
  const int n = ids > 0 && ids % 6 == 0 ? 6 : ids > 0 && ids % 5 == 0 ? 5 : 0;
  if (n == 0)
    fail(BIOESP_ERR_FORMAT, "unet: add_embedding.linear_1.weight takes " + std::to_string(in) + " features, which is not " +
                                std::to_string(pooled) + " pooled ones and 5 or 6 equal size embeddings");
  c["addition_embed_type"] = "text_time";
  c["addition_time_embed_dim"] = ids / n;
  c["projection_class_embeddings_input_dim"] = in;
  c["sample_size"] = 128;
}

}  // namespace

std::string infer_config(const io::WeightSet& set, const std::string& component) {
  Shapes s{set, component};
  json c;
  if (component == "unet") {
    std::vector<int64_t> channels = down_path(s, c);
    json up = json::array();
    for (size_t i = 0; i < channels.size(); ++i)
      up.push_back(s.has("up_blocks." + std::to_string(i) + ".attentions.0.proj_in.weight") ? "CrossAttnUpBlock2D" : "UpBlock2D");
    c["up_block_types"] = up;
    c["out_channels"] = s.shape("conv_out.weight", 4)[0];
    c["sample_size"] = c["cross_attention_dim"] == 768 ? 64 : 96;
    if (s.has("add_embedding.linear_1.weight")) sdxl_conditioning(set, s, c);
  } else if (component == "controlnet") {
    down_path(s, c);
    const std::string e = "controlnet_cond_embedding.";
    auto conv_in = s.shape(e + "conv_in.weight", 4);
    c["conditioning_channels"] = conv_in[1];
    std::vector<int64_t> widths{conv_in[0]};
    for (int k = 1; s.has(e + "blocks." + std::to_string(k) + ".weight"); k += 2)
      widths.push_back(s.shape(e + "blocks." + std::to_string(k) + ".weight", 4)[0]);
    c["conditioning_embedding_out_channels"] = widths;
  } else if (component == "vae") {
    int blocks = s.count("encoder.down_blocks.", ".resnets.0.conv1.weight");
    if (blocks == 0) fail(BIOESP_ERR_UNSUPPORTED, "vae: no encoder blocks found");
    std::vector<int64_t> channels;
    for (int i = 0; i < blocks; ++i)
      channels.push_back(s.shape("encoder.down_blocks." + std::to_string(i) + ".resnets.0.conv1.weight", 4)[0]);
    c["block_out_channels"] = channels;
    c["norm_num_groups"] = norm_groups(channels);
    c["down_block_types"] = json(std::vector<std::string>(blocks, "DownEncoderBlock2D"));
    c["up_block_types"] = json(std::vector<std::string>(blocks, "UpDecoderBlock2D"));
    c["layers_per_block"] = s.count("encoder.down_blocks.0.resnets.", ".conv1.weight");
    c["latent_channels"] = s.shape("decoder.conv_in.weight", 4)[1];
    c["in_channels"] = s.shape("encoder.conv_in.weight", 4)[1];
    c["out_channels"] = s.shape("decoder.conv_out.weight", 4)[0];
    c["sample_size"] = 512;
  } else if (component == "text_encoder" || component == "text_encoder_2") {
    auto tok = s.shape("text_model.embeddings.token_embedding.weight", 2);
    c["vocab_size"] = tok[0];
    c["hidden_size"] = tok[1];
    c["max_position_embeddings"] = s.shape("text_model.embeddings.position_embedding.weight", 2)[0];
    c["num_hidden_layers"] = s.count("text_model.encoder.layers.", ".layer_norm1.weight");
    c["intermediate_size"] = s.shape("text_model.encoder.layers.0.mlp.fc1.weight", 2)[0];
    c["num_attention_heads"] = std::max<int64_t>(1, tok[1] / 64);
    // CLIP-L (SD 1.x) uses quick_gelu; OpenCLIP-H (SD 2.x) uses gelu.
    c["hidden_act"] = tok[1] == 768 ? "quick_gelu" : "gelu";
    if (s.has("text_projection.weight")) {  // SDXL's OpenCLIP bigG
      c["architectures"] = {"CLIPTextModelWithProjection"};
      c["projection_dim"] = s.shape("text_projection.weight", 2)[0];
    }
  } else {
    fail(BIOESP_ERR_UNSUPPORTED, "cannot infer a config for component " + component);
  }
  return c.dump();
}

}  // namespace bioesp::config
