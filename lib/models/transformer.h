// Transformer2DModel (norm, proj_in, transformer_blocks, proj_out) and its
// BasicTransformerBlock (self-attention, cross-attention, GEGLU feed-forward), as in diffusers.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "models/attention.h"

namespace bioesp::models {

class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);
  Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

// "net.0" is the GEGLU, "net.1" a dropout without weights, "net.2" the output projection.
class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList net;
};
TORCH_MODULE(FeedForward);

struct TransformerOptions {
  int64_t channels = 0;
  int64_t heads = 8;
  int64_t layers = 1;
  int64_t cross_attention_dim = 768;
  int64_t norm_groups = 32;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const TransformerOptions& o);
  // x [B, h·w, C]: the tokens of an h × w picture (token merging needs the layout).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, int64_t h, int64_t w);

  LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};

 private:
  bool only_cross_;
};
TORCH_MODULE(BasicTransformerBlock);

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const TransformerOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

  GroupNorm norm{nullptr};
  torch::nn::AnyModule proj_in, proj_out;  // 1×1 convs, or linears with use_linear_projection
  torch::nn::ModuleList transformer_blocks;

 private:
  bool linear_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace bioesp::models
