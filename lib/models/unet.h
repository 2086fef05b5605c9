// UNet2DConditionModel, built from its config with diffusers' module names.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "config/model_config.h"
#include "models/unet_blocks.h"

namespace bioesp::models {

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  // cond > 0: a bias-free cond_proj adds a condition of that width to the input (LCM).
  TimestepEmbeddingImpl(int64_t in, int64_t out, int64_t cond = 0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& condition = {});
  Linear linear_1{nullptr}, linear_2{nullptr}, cond_proj{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// diffusers' get_timestep_embedding: sinusoidal, float32.
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double freq_shift);

// LatentConsistencyModelPipeline.get_guidance_scale_embedding: w [B] (guidance scale − 1) →
// [B, dim], computed in float32 in diffusers' order of operations.
torch::Tensor guidance_embedding(const torch::Tensor& w, int64_t dim);

struct UNetExtra {
  torch::Tensor text_embeds;  // SDXL: pooled text embedding [B, 1280]
  torch::Tensor time_ids;     // SDXL: [B, 6]
  torch::Tensor timestep_cond;  // LCM (time_cond_proj_dim): guidance_embedding [B, dim]; optional
  // A ControlNet's residuals, added to the skips (conv_in's and each down layer's) and to the
  // mid block's output, as diffusers' down_block_additional_residuals and
  // mid_block_additional_residual.
  std::vector<torch::Tensor> down_block_additional_residuals;
  torch::Tensor mid_block_additional_residual;
};

// Step caching (DeepCache, Ma et al. 2023): the UNet's deep features change little from one
// denoising step to the next. A full pass keeps the input of the up layer that joins skip
// `branch` (skips counted from conv_in's, 0); a step that reuses it runs only the shallow
// branch — conv_in, the down layers that make skips 1 … branch, and the up layers from that one
// on — and leaves out the rest of the down path, the mid block and the deep up layers.
struct StepCache {
  int64_t branch = 0;
  bool reuse = false;     // this step takes `feature` (without one yet, it makes a full pass)
  torch::Tensor feature;  // written by full passes
};

// What the UNet and the ControlNet build alike from a UNet config: what block i shares (time
// embedding, norms, attention), the down blocks, the mid block, and the time embedding of
// `timestep` for `sample`'s batch (`condition`: LCM's timestep_cond, optional).
void set_shared(BlockOptions& b, const config::UNetConfig& c, size_t i, bool cross);
torch::nn::ModuleList make_down_blocks(const config::UNetConfig& c);
MidBlock make_mid_block(const config::UNetConfig& c);
torch::Tensor embed_time(TimestepEmbedding& embedding, const config::UNetConfig& c, const torch::Tensor& timestep,
                         const torch::Tensor& sample, const torch::Tensor& condition = {});
// Runs the down blocks layer by layer, each layer's output a skip, until `skips` holds `kept`.
torch::Tensor run_down_blocks(const torch::nn::ModuleListImpl& blocks, torch::Tensor x, const torch::Tensor& emb,
                              const torch::Tensor& context, std::vector<torch::Tensor>& skips,
                              size_t kept = SIZE_MAX);

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const config::UNetConfig& c);
  // sample [B, C, H, W]; timestep a scalar or [B]; context [B, S, D].
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timestep, const torch::Tensor& context,
                        const UNetExtra& extra = {}, StepCache* cache = nullptr);
  const config::UNetConfig& config() const { return c_; }
  // Skips the down path makes (conv_in's and each down layer's): step caching's branches.
  int64_t skip_count() const;

  Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr}, add_embedding{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  MidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};

 private:
  torch::Tensor time_features(const torch::Tensor& sample, const torch::Tensor& timestep, const UNetExtra& extra);
  // Adds a ControlNet's down residuals to the skips made; false when `extra` has none.
  bool add_residuals(const UNetExtra& extra, std::vector<torch::Tensor>& skips) const;
  config::UNetConfig c_;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace bioesp::models
