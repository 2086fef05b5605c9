#include "models/layers.h"

namespace bioesp::models {

namespace {
thread_local torch::TensorOptions current = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCPU);

torch::Tensor param(torch::nn::Module& m, const char* name, at::IntArrayRef shape) {
  return m.register_parameter(name, torch::empty(shape, current), /*requires_grad=*/false);
}
}  // namespace

BuildScope::BuildScope(torch::TensorOptions options) : previous_(current) { current = options; }
BuildScope::~BuildScope() { current = previous_; }
torch::TensorOptions build_options() { return current; }

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias) {
  weight = param(*this, "weight", {out, in});
  if (has_bias) bias = param(*this, "bias", {out});
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto out = torch::linear(x, weight, bias);
  for (const auto& a : adapters)
    if (a.weight() != 0) out = out + a.weight() * torch::linear(torch::linear(x, a.down), a.up);
  return out;
}

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding)
    : stride_(stride), padding_(padding) {
  weight = param(*this, "weight", {out, in, k, k});
  bias = param(*this, "bias", {out});
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  auto out = torch::conv2d(x, weight, bias, {stride_, stride_}, {padding_, padding_});
  for (const auto& a : adapters) {
    if (a.weight() == 0) continue;
    auto down = a.down.dim() == 2 ? a.down.unsqueeze(-1).unsqueeze(-1) : a.down;
    auto up = a.up.dim() == 2 ? a.up.unsqueeze(-1).unsqueeze(-1) : a.up;
    out = out + a.weight() * torch::conv2d(torch::conv2d(x, down, {}, {stride_, stride_}, {padding_, padding_}), up);
  }
  return out;
}

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double eps) : groups_(groups), eps_(eps) {
  weight = param(*this, "weight", {channels});
  bias = param(*this, "bias", {channels});
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) { return torch::group_norm(x, groups_, weight, bias, eps_); }

LayerNormImpl::LayerNormImpl(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  weight = param(*this, "weight", {dim});
  bias = param(*this, "bias", {dim});
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) { return torch::layer_norm(x, {dim_}, weight, bias, eps_); }

EmbeddingImpl::EmbeddingImpl(int64_t count, int64_t dim) { weight = param(*this, "weight", {count, dim}); }

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

void initialise_random(torch::nn::Module& m, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor& t = p.value();
    bool norm = name.find("norm") != std::string::npos;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      t.zero_();
    } else if (norm && t.dim() == 1) {
      t.fill_(1.0);
    } else {
      auto cpu = at::normal(0.0, 0.02, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      t.copy_(cpu);
    }
  }
}

}  // namespace bioesp::models
