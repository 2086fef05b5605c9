#include "models/transformer.h"

#include "models/token_merge.h"

namespace bioesp::models {

namespace F = torch::nn::functional;

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", Linear(dim_in, dim_out * 2));
}

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
  auto parts = proj(x).chunk(2, -1);
  return parts[0] * F::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim) {
  net->push_back(GEGLU(dim, dim * 4));
  net->push_back(torch::nn::Dropout(0.0));
  net->push_back(Linear(dim * 4, dim));
  register_module("net", net);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  return net[2]->as<Linear>()->forward(net[0]->as<GEGLU>()->forward(x));
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const TransformerOptions& o) : only_cross_(o.only_cross_attention) {
  const int64_t dim = o.channels, dim_head = o.channels / o.heads;
  auto ln = [&] { return LayerNorm(dim, 1e-5); };
  norm1 = register_module("norm1", ln());
  AttentionOptions a;
  a.query_dim = dim;
  a.heads = o.heads;
  a.dim_head = dim_head;
  a.upcast = o.upcast_attention;
  a.cross_attention_dim = o.only_cross_attention ? o.cross_attention_dim : 0;
  attn1 = register_module("attn1", Attention(a));
  norm2 = register_module("norm2", ln());
  a.cross_attention_dim = o.cross_attention_dim;
  attn2 = register_module("attn2", Attention(a));
  norm3 = register_module("norm3", ln());
  ff = register_module("ff", FeedForward(dim));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context, int64_t h, int64_t w) {
  const auto self_context = only_cross_ ? context : torch::Tensor();
  // Token merging shortens only the self-attention's input, as tomesd's default (merge_attn).
  const auto plan = token_merge_plan(x, h, w);
  auto y = plan ? plan->unmerge(attn1(plan->merge(norm1(x)), self_context)) + x : attn1(norm1(x), self_context) + x;
  y = attn2(norm2(y), context) + y;
  return ff(norm3(y)) + y;
}

Transformer2DModelImpl::Transformer2DModelImpl(const TransformerOptions& o) : linear_(o.use_linear_projection) {
  const int64_t c = o.channels;
  norm = register_module("norm", GroupNorm(o.norm_groups, c, 1e-6));
  if (linear_) {
    proj_in = torch::nn::AnyModule(Linear(c, c));
    proj_out = torch::nn::AnyModule(Linear(c, c));
  } else {
    proj_in = torch::nn::AnyModule(Conv2d(c, c, 1));
    proj_out = torch::nn::AnyModule(Conv2d(c, c, 1));
  }
  register_module("proj_in", proj_in.ptr());
  for (int64_t i = 0; i < o.layers; ++i) transformer_blocks->push_back(BasicTransformerBlock(o));
  register_module("transformer_blocks", transformer_blocks);
  register_module("proj_out", proj_out.ptr());
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto h = norm(x);
  if (linear_) {
    h = proj_in.forward(h.permute({0, 2, 3, 1}).reshape({B, H * W, C}));
  } else {
    h = proj_in.forward(h).permute({0, 2, 3, 1}).reshape({B, H * W, C});
  }
  for (const auto& block : *transformer_blocks) h = block->as<BasicTransformerBlock>()->forward(h, context, H, W);
  if (linear_) {
    h = proj_out.forward(h).reshape({B, H, W, C}).permute({0, 3, 1, 2}).contiguous();
  } else {
    h = proj_out.forward(h.reshape({B, H, W, C}).permute({0, 3, 1, 2}).contiguous());
  }
  return h + x;
}

}  // namespace bioesp::models
