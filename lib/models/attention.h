// Multi-head attention as diffusers' Attention names it (to_q, to_k, to_v, to_out.0), used by
// the UNet's transformer blocks and the VAE's mid block; and the attention kernel itself.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

namespace bioesp::models {

// softmax(q kᵀ / sqrt(d)) v for [B, heads, L, d] tensors. Fused scaled_dot_product_attention on
// LibTorch 2.x, the explicit product on 1.13. `upcast` computes in float32.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     bool causal = false, bool upcast = false);

struct AttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: self-attention
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool bias = false;                // q/k/v projections
  int64_t norm_groups = 0;          // > 0: a GroupNorm before, as in the VAE
  bool residual_connection = false;
  bool upcast = false;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& o);
  // x: [B, L, C] or [B, C, H, W]; context: [B, S, Cc] or undefined for self-attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});

  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;
  GroupNorm group_norm{nullptr};

 private:
  AttentionOptions o_;
};
TORCH_MODULE(Attention);

}  // namespace bioesp::models
