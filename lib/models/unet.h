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
  // A ControlNet's residuals, added to the skips (conv_in's and each down layer's) and to the
  // mid block's output, as diffusers' down_block_additional_residuals and
  // mid_block_additional_residual.
  std::vector<torch::Tensor> down_block_additional_residuals;
  torch::Tensor mid_block_additional_residual;
};

// What the UNet and the ControlNet build alike from a UNet config: what block i shares (time
// embedding, norms, attention), the down blocks, the mid block, and the time embedding of
// `timestep` for `sample`'s batch.
void set_shared(BlockOptions& b, const config::UNetConfig& c, size_t i, bool cross);
torch::nn::ModuleList make_down_blocks(const config::UNetConfig& c);
MidBlock make_mid_block(const config::UNetConfig& c);
torch::Tensor embed_time(TimestepEmbedding& embedding, const config::UNetConfig& c, const torch::Tensor& timestep,
                         const torch::Tensor& sample);

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
