#include "models/attention.h"

#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace bioesp::models {

#if TORCH_VERSION_MAJOR < 2
namespace {

// Bytes of scores one task holds at a time: within a core's L2 cache, so that the product, the
// softmax and the product with v read them from there (tuned by measurement, bench --profile).
constexpr int64_t kScoreTileBytes = int64_t{1} << 18;

// softmax(q kᵀ / sqrt(d)) v for [B, heads, L, d] tensors of any strides, as the explicit product
// on LibTorch 1.13 (no fused kernel there): the queries in tiles of rows, spread over the
// intra-op threads; each tile's scores go into that thread's buffer, are normalised in place and
// multiplied by v straight into the output, which is [B, L, heads, d] underneath (the caller's
// transpose back is then a view).
torch::Tensor attend_tiled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  const int64_t B = q.size(0), H = q.size(1), lq = q.size(2), lk = k.size(2), d = q.size(3);
  const auto qs = q * (1.0 / std::sqrt(static_cast<double>(d)));  // the scale on q: L·d products, not L²
  auto out = torch::empty({B, lq, H, v.size(3)}, q.options());
  const auto elem = static_cast<int64_t>(q.element_size());
  const int64_t rows = std::clamp<int64_t>(kScoreTileBytes / (lk * elem), 1, lq);
  const int64_t tiles = (lq + rows - 1) / rows, tasks = B * H * tiles;
  torch::Tensor mask;  // true above the diagonal
  if (causal) mask = torch::ones({lq, lk}, q.options().dtype(torch::kBool)).triu(1);
  // Off the CPU the tiles run one after another, on the caller's thread.
  const bool cpu = q.device().is_cpu();
  auto buffers = torch::empty({cpu ? at::get_num_threads() : 1, rows, lk}, q.options());
  at::parallel_for(0, tasks, cpu ? 1 : tasks, [&](int64_t begin, int64_t end) {
    auto scores = buffers[cpu ? at::get_thread_num() : 0];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / (H * tiles), h = t / tiles % H, s = t % tiles * rows, e = std::min(lq, s + rows);
      auto sc = scores.narrow(0, 0, e - s);
      at::mm_out(sc, qs.select(0, b).select(0, h).slice(0, s, e), k.select(0, b).select(0, h).t());
      if (causal) sc.masked_fill_(mask.slice(0, s, e), -std::numeric_limits<float>::infinity());
      at::_softmax_out(sc, sc, -1, false);
      auto o = out.select(0, b).select(1, h).slice(0, s, e);
      at::mm_out(o, sc, v.select(0, b).select(0, h));
    }
  });
  return out.transpose(1, 2);
}

// The same for training (autograd): a slice of queries at a time so that the score matrix stays
// within about 64M elements (a 512 px image has 4096 tokens: 2 × 8 heads × 4096² scores at once).
torch::Tensor attend_sliced(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  const int64_t lq = q.size(-2), lk = k.size(-2), rows = q.numel() / (lq * q.size(-1));
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(lq, (int64_t{1} << 26) / std::max<int64_t>(1, rows * lk)));
  auto kt = k.transpose(-1, -2);
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < lq; s += chunk) {
    auto scores = torch::matmul(q.slice(-2, s, s + chunk), kt) * scale;
    if (causal) {
      auto row = torch::arange(s, std::min(lq, s + chunk), torch::TensorOptions().dtype(torch::kLong).device(q.device()));
      auto col = torch::arange(lk, torch::TensorOptions().dtype(torch::kLong).device(q.device()));
      scores = scores.masked_fill(col.unsqueeze(0) > row.unsqueeze(1), -std::numeric_limits<float>::infinity());
    }
    parts.push_back(torch::matmul(scores.softmax(-1), v));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, -2);
}

}  // namespace
#endif

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
  // The tiled product writes through out= arguments, which autograd does not follow.
  const bool grad = at::GradMode::is_enabled() && (qq.requires_grad() || kk.requires_grad() || vv.requires_grad());
  auto out = grad ? attend_sliced(qq, kk, vv, causal) : attend_tiled(qq, kk, vv, causal);
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
