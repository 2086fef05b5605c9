// UNet2DConditionModel, built from its config with diffusers' module names.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "config/model_config.h"
#include "models/unet_blocks.h"

namespace bioesp::models {

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// diffusers' get_timestep_embedding: sinusoidal, float32.
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double freq_shift);

struct UNetExtra {
  torch::Tensor text_embeds;  // SDXL: pooled text embedding [B, 1280]
  torch::Tensor time_ids;     // SDXL: [B, 6]
};

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const config::UNetConfig& c);
  // sample [B, C, H, W]; timestep a scalar or [B]; context [B, S, D].
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& context,
                        const UNetExtra& extra = {});
  const config::UNetConfig& config() const { return c_; }

  Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr}, add_embedding{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  MidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};

 private:
  config::UNetConfig c_;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace bioesp::models
