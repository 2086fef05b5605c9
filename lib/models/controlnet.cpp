#include "models/controlnet.h"

#include "core/error.h"
#include "models/token_merge.h"

namespace bioesp::models {

namespace F = torch::nn::functional;

ControlNetConditioningEmbeddingImpl::ControlNetConditioningEmbeddingImpl(int64_t embedding_channels,
                                                                         int64_t conditioning_channels,
                                                                         const std::vector<int>& ch) {
  conv_in = register_module("conv_in", Conv2d(conditioning_channels, ch[0], 3, 1, 1));
  for (size_t i = 0; i + 1 < ch.size(); ++i) {
    blocks->push_back(Conv2d(ch[i], ch[i], 3, 1, 1));
    blocks->push_back(Conv2d(ch[i], ch[i + 1], 3, 2, 1));
  }
  register_module("blocks", blocks);
  conv_out = register_module("conv_out", Conv2d(ch.back(), embedding_channels, 3, 1, 1));
}

torch::Tensor ControlNetConditioningEmbeddingImpl::forward(const torch::Tensor& conditioning) {
  auto x = F::silu(conv_in(conditioning));
  for (const auto& b : *blocks) x = F::silu(b->as<Conv2d>()->forward(x));
  return conv_out(x);
}

ControlNetModelImpl::ControlNetModelImpl(const config::ControlNetConfig& c) : c_(c) {
  const auto& u = c.unet;
  const auto& ch = u.block_out_channels;
  conv_in = register_module("conv_in", Conv2d(u.in_channels, ch[0], 3, 1, 1));
  time_embedding = register_module("time_embedding", TimestepEmbedding(ch[0], u.time_embedding_dim()));
  controlnet_cond_embedding = register_module(
      "controlnet_cond_embedding",
      ControlNetConditioningEmbedding(ch[0], c.conditioning_channels, c.conditioning_embedding_out_channels));
  down_blocks = register_module("down_blocks", make_down_blocks(u));
  // A 1×1 conv per skip the down path makes: conv_in's, each layer's, each downsampler's.
  controlnet_down_blocks->push_back(Conv2d(ch[0], ch[0], 1));
  for (size_t i = 0; i < ch.size(); ++i)
    for (int64_t k = 0; k < u.layers_per_block[i] + (i + 1 < ch.size() ? 1 : 0); ++k)
      controlnet_down_blocks->push_back(Conv2d(ch[i], ch[i], 1));
  register_module("controlnet_down_blocks", controlnet_down_blocks);
  mid_block = register_module("mid_block", make_mid_block(u));
  controlnet_mid_block = register_module("controlnet_mid_block", Conv2d(ch.back(), ch.back(), 1));
}

ControlResiduals ControlNetModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                                              const torch::Tensor& context, const torch::Tensor& cond, double scale,
                                              bool guess_mode) {
  TokenMergeScope exact({});  // a ControlNet's blocks never merge: its residuals stay exact
  auto emb = embed_time(time_embedding, c_.unet, timestep, sample);
  auto x = conv_in(sample) + controlnet_cond_embedding(c_.bgr ? cond.flip({1}) : cond);
  std::vector<torch::Tensor> skips{x};
  x = run_down_blocks(*down_blocks, x, emb, context, skips);
  x = mid_block(x, emb, context);

  ControlResiduals r;
  for (size_t i = 0; i < skips.size(); ++i) r.down.push_back(controlnet_down_blocks[i]->as<Conv2d>()->forward(skips[i]));
  r.mid = controlnet_mid_block(x);
  if (guess_mode && !c_.global_pool_conditions) {
    // float32 scales, as torch.logspace makes them: 0.1 for conv_in's skip up to 1 for the mid block.
    auto scales = torch::logspace(-1, 0, static_cast<int64_t>(r.down.size()) + 1,
                                  10.0, torch::TensorOptions().dtype(torch::kFloat32).device(sample.device())) * scale;
    for (size_t i = 0; i < r.down.size(); ++i) r.down[i] = r.down[i] * scales[static_cast<int64_t>(i)];
    r.mid = r.mid * scales[-1];
  } else {
    for (auto& d : r.down) d = d * scale;
    r.mid = r.mid * scale;
  }
  if (c_.global_pool_conditions) {
    for (auto& d : r.down) d = d.mean({2, 3}, true);
    r.mid = r.mid.mean({2, 3}, true);
  }
  return r;
}

namespace {

// SD's bases by their text encoder's width.
std::string base_name(int cross_attention_dim) {
  switch (cross_attention_dim) {
    case 768: return " (SD 1.x)";
    case 1024: return " (SD 2.x)";
    case 2048: return " (SDXL)";
    default: return "";
  }
}

template <class T>
std::string listed(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

void check_fits(const config::ControlNetConfig& controlnet, const config::UNetConfig& unet, int latent_channels) {
  const auto& c = controlnet.unet;
  auto refuse = [&](const std::string& key, const std::string& theirs, const std::string& ours) {
    fail(BIOESP_ERR_MISMATCH, "this ControlNet was made for another base model: its " + key + " is " + theirs +
                                  base_name(c.cross_attention_dim.front()) + ", the model's " + ours +
                                  base_name(unet.cross_attention_dim.front()));
  };
  if (c.cross_attention_dim != unet.cross_attention_dim)
    refuse("cross_attention_dim", listed(c.cross_attention_dim), listed(unet.cross_attention_dim));
  if (c.block_out_channels != unet.block_out_channels)
    refuse("block_out_channels", listed(c.block_out_channels), listed(unet.block_out_channels));
  if (c.layers_per_block != unet.layers_per_block)
    refuse("layers_per_block", listed(c.layers_per_block), listed(unet.layers_per_block));
  if (c.in_channels != latent_channels)
    refuse("in_channels", std::to_string(c.in_channels), "latents have " + std::to_string(latent_channels) + " channels");
}

}  // namespace bioesp::models
