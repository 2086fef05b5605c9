#include "models/attention.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace bioesp::models {

torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal,
                     bool upcast) {
  auto dtype = q.scalar_type();
  torch::Tensor qq = q, kk = k, vv = v;
  if (upcast && dtype != torch::kFloat32) {
    qq = q.to(torch::kFloat32);
    kk = k.to(torch::kFloat32);
    vv = v.to(torch::kFloat32);
  }
#if TORCH_VERSION_MAJOR >= 2
  auto out = at::scaled_dot_product_attention(qq, kk, vv, {}, 0.0, causal);
#else
  // The explicit product, a slice of queries at a time so that the score matrix stays within
  // about 64M elements (a 512 px image has 4096 tokens: 2 × 8 heads × 4096² scores at once).
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t lq = q.size(-2), lk = k.size(-2), rows = qq.numel() / (lq * q.size(-1));
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(lq, (int64_t{1} << 26) / std::max<int64_t>(1, rows * lk)));
  auto kt = kk.transpose(-1, -2);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < lq; s += chunk) {
    auto scores = torch::matmul(qq.slice(-2, s, s + chunk), kt) * scale;
    if (causal) {
      auto row = torch::arange(s, std::min(lq, s + chunk), torch::TensorOptions().dtype(torch::kLong).device(q.device()));
      auto col = torch::arange(lk, torch::TensorOptions().dtype(torch::kLong).device(q.device()));
      scores = scores.masked_fill(col.unsqueeze(0) > row.unsqueeze(1), -std::numeric_limits<float>::infinity());
    }
    parts.push_back(torch::matmul(scores.softmax(-1), vv));
  }
  auto out = parts.size() == 1 ? parts[0] : torch::cat(parts, -2);
#endif
  return out.to(dtype);
}

AttentionImpl::AttentionImpl(const AttentionOptions& o) : o_(o) {
  int64_t inner = o.heads * o.dim_head;
  int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.norm_groups > 0)
    group_norm = register_module(
        "group_norm", GroupNorm(o.norm_groups, o.query_dim, 1e-6));
  to_q = register_module("to_q", Linear(o.query_dim, inner, o.bias));
  to_k = register_module("to_k", Linear(kv_dim, inner, o.bias));
  to_v = register_module("to_v", Linear(kv_dim, inner, o.bias));
  to_out->push_back(Linear(inner, o.query_dim));
  register_module("to_out", to_out);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& input, const torch::Tensor& context) {
  torch::Tensor x = input;
  const bool spatial = input.dim() == 4;
  int64_t B = input.size(0), C = 0, H = 0, W = 0;
  if (spatial) {
    C = input.size(1), H = input.size(2), W = input.size(3);
    x = input.view({B, C, H * W}).transpose(1, 2);
  }
  if (group_norm) x = group_norm(x.transpose(1, 2)).transpose(1, 2);
  const torch::Tensor& ctx = context.defined() ? context : x;
  auto split = [&](const torch::Tensor& t) { return t.view({B, -1, o_.heads, o_.dim_head}).transpose(1, 2); };
  auto q = split(to_q(x)), k = split(to_k(ctx)), v = split(to_v(ctx));
  auto out = attend(q, k, v, false, o_.upcast).transpose(1, 2).reshape({B, -1, o_.heads * o_.dim_head});
  out = to_out[0]->as<Linear>()->forward(out);
  if (spatial) out = out.transpose(-1, -2).reshape({B, C, H, W});
  if (o_.residual_connection) out = out + input;
  return out;
}

}  // namespace bioesp::models
