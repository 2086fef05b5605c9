// ControlNetModel, built from its config with diffusers' module names: a copy of the UNet's
// down path and mid block that also sees a control image, and gives residuals for the UNet's
// skips and mid block (UNetExtra's down_block_additional_residuals / mid_block_additional_residual).
#pragma once

#include <torch/torch.h>

#include "config/model_config.h"
#include "models/unet.h"

namespace bioesp::models {

// The control image [B, C, H, W] in [0, 1] to the first block's width at latent size: a 3×3
// conv, then pairs of 3×3 convs (the second of each with stride 2), SiLU after each, and a
// final 3×3 conv (zero-initialised when trained).
class ControlNetConditioningEmbeddingImpl : public torch::nn::Module {
 public:
  ControlNetConditioningEmbeddingImpl(int64_t embedding_channels, int64_t conditioning_channels,
                                      const std::vector<int>& block_out_channels);
  torch::Tensor forward(const torch::Tensor& conditioning);
  Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList blocks;
};
TORCH_MODULE(ControlNetConditioningEmbedding);

struct ControlResiduals {
  std::vector<torch::Tensor> down;  // one per UNet skip
  torch::Tensor mid;
};

class ControlNetModelImpl : public torch::nn::Module {
 public:
  explicit ControlNetModelImpl(const config::ControlNetConfig& c);
  // sample [B, 4, h, w]; timestep a scalar or [B]; context [B, S, D]; cond [B, C, 8h, 8w] in
  // [0, 1]. Residuals × `scale`; guess mode scales residual i by logspace(-1, 0, n + 1)[i]·scale
  // (the mid one by scale), as ControlNetModel.forward does.
  ControlResiduals forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& context,
                           const torch::Tensor& cond, double scale, bool guess_mode);
  const config::ControlNetConfig& config() const { return c_; }

  Conv2d conv_in{nullptr}, controlnet_mid_block{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  ControlNetConditioningEmbedding controlnet_cond_embedding{nullptr};
  torch::nn::ModuleList down_blocks, controlnet_down_blocks;
  MidBlock mid_block{nullptr};

 private:
  config::ControlNetConfig c_;
};
TORCH_MODULE(ControlNetModel);

// Refuses a ControlNet whose down path does not fit `unet` (another base model: SD 2.x's for an
// SD 1.x UNet), naming the config key that differs and, where it tells, both bases.
void check_fits(const config::ControlNetConfig& controlnet, const config::UNetConfig& unet, int latent_channels);

}  // namespace bioesp::models
