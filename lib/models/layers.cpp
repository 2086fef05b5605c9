#include "models/layers.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace bioesp::models {

namespace {
thread_local torch::TensorOptions current = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCPU);
thread_local c10::optional<torch::ScalarType> weight_storage;
thread_local bool as_file = false;

torch::Tensor param(torch::nn::Module& m, const char* name, at::IntArrayRef shape) {
  return m.register_parameter(name, torch::empty(shape, current), /*requires_grad=*/false);
}

// A Linear or Conv2d weight, in the WeightScope's type where one is set (int8's in float16 until quantized).
torch::Tensor weight_param(torch::nn::Module& m, at::IntArrayRef shape) {
  auto options = !weight_storage ? current : current.dtype(*weight_storage == torch::kInt8 ? torch::kFloat16 : *weight_storage);
  return m.register_parameter("weight", torch::empty(shape, options), /*requires_grad=*/false);
}
}  // namespace

BuildScope::BuildScope(torch::TensorOptions options) : previous_(current) { current = options; }
BuildScope::~BuildScope() { current = previous_; }
torch::TensorOptions build_options() { return current; }

WeightScope::WeightScope(c10::optional<torch::ScalarType> storage, bool keep_file_types)
    : previous_(weight_storage), previous_as_file_(as_file) {
  weight_storage = storage;
  as_file = keep_file_types && !storage;
}
WeightScope::~WeightScope() {
  weight_storage = previous_;
  as_file = previous_as_file_;
}
bool weights_as_file() { return as_file; }

torch::Tensor compute_weight(const torch::Tensor& w, const torch::Tensor& x) {
  return w.scalar_type() == x.scalar_type() ? w : w.to(x.scalar_type());
}

void check_parameter_count(torch::nn::Module& m, const std::string& what) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  if (n > kMaxParameters)
    fail(BIOESP_ERR_UNSUPPORTED, what + ": the config asks for " + std::to_string(n) + " parameters, more than the " +
                                     std::to_string(kMaxParameters) + " a component may hold");
}

namespace {
thread_local c10::optional<at::Generator> dropout_gen;
}

DropoutScope::DropoutScope(at::Generator gen) : previous_(dropout_gen) { dropout_gen = std::move(gen); }
DropoutScope::~DropoutScope() { dropout_gen = previous_; }
c10::optional<at::Generator> dropout_generator() { return dropout_gen; }

torch::Tensor Adapter::delta(const torch::Tensor& x, bool conv, int64_t stride, int64_t padding) const {
  auto h = x.scalar_type() == down.scalar_type() ? x : x.to(down.scalar_type());
  if (dropout > 0 && dropout_gen) {
    // The training generator lives on the CPU (reproducible everywhere); masks move to the device.
    auto keep = at::empty(h.sizes(), h.options().device(torch::kCPU)).bernoulli_(1.0 - dropout, *dropout_gen).to(h.device());
    h = h * keep / (1.0 - dropout);
  }
  torch::Tensor y;
  if (conv) {
    auto d = down.dim() == 2 ? down.unsqueeze(-1).unsqueeze(-1) : down;
    auto u = up.dim() == 2 ? up.unsqueeze(-1).unsqueeze(-1) : up;
    y = torch::conv2d(torch::conv2d(h, d, {}, {stride, stride}, {padding, padding}), u);
  } else {
    y = torch::linear(torch::linear(h, down), up);
  }
  y = y * weight();
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias) {
  weight = weight_param(*this, {out, in});
  if (has_bias) bias = param(*this, "bias", {out});
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  const auto w = weight_scale.defined() ? weight.to(x.scalar_type()).mul_(weight_scale.to(x.scalar_type()).unsqueeze(1))
                                        : compute_weight(weight, x);
  auto out = torch::linear(x, w, bias);
  for (const auto& a : adapters)
    if (a.weight() != 0) out = out + a.delta(x, false, 1, 0);
  return out;
}

void LinearImpl::quantize_int8() {
  torch::NoGradGuard no_grad;
  const auto w = weight.to(torch::kFloat32);
  const auto scale = w.abs().amax(1).clamp_min(1e-30) / 127;
  weight.set_data(torch::round(w / scale.unsqueeze(1)).clamp_(-127, 127).to(torch::kInt8));
  weight_scale = scale;
}

void quantize_linears(torch::nn::Module& root) {
  for (const auto& m : root.modules())
    if (auto* l = dynamic_cast<LinearImpl*>(m.get())) l->quantize_int8();
}

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool has_bias)
    : stride_(stride), padding_(padding) {
  weight = weight_param(*this, {out, in, k, k});
  if (has_bias) bias = param(*this, "bias", {out});
}

torch::Tensor pad2d(const torch::Tensor& x, int64_t left, int64_t right, int64_t top, int64_t bottom, Wrap wrap) {
  auto out = x;
  if (wrap.x && (left || right))
    out = torch::cat({out.slice(3, out.size(3) - left), out, out.slice(3, 0, right)}, 3);
  if (wrap.y && (top || bottom))
    out = torch::cat({out.slice(2, out.size(2) - top), out, out.slice(2, 0, bottom)}, 2);
  const std::vector<int64_t> zeros{wrap.x ? 0 : left, wrap.x ? 0 : right, wrap.y ? 0 : top, wrap.y ? 0 : bottom};
  if (std::any_of(zeros.begin(), zeros.end(), [](int64_t p) { return p != 0; })) out = torch::constant_pad_nd(out, zeros);
  return out;
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) {
  // Wrapping pads here; otherwise conv2d pads with zeros itself (the untiled path is unchanged).
  const auto in = wrap.any() ? pad2d(x, padding_, padding_, padding_, padding_, wrap) : x;
  const int64_t p = wrap.any() ? 0 : padding_;
  auto out = torch::conv2d(in, compute_weight(weight, in), bias, {stride_, stride_}, {p, p});
  for (const auto& a : adapters)
    if (a.weight() != 0) out = out + a.delta(in, true, stride_, p);
  return out;
}

WrapScope::WrapScope(const std::vector<torch::nn::Module*>& roots, Wrap wrap) {
  for (auto* root : roots)
    for (const auto& m : root->modules())
      if (auto* c = dynamic_cast<Conv2dImpl*>(m.get())) {
        saved_.emplace_back(c, c->wrap);
        c->wrap = wrap;
      }
}

WrapScope::~WrapScope() {
  for (auto& [conv, wrap] : saved_) conv->wrap = wrap;
}

bool stores_weight(const torch::nn::Module& m) {
  return dynamic_cast<const LinearImpl*>(&m) || dynamic_cast<const Conv2dImpl*>(&m);
}

Adaptable* adaptable(const std::shared_ptr<torch::nn::Module>& m) {
  if (auto* l = dynamic_cast<LinearImpl*>(m.get())) return l;
  if (auto* c = dynamic_cast<Conv2dImpl*>(m.get())) return c;
  return nullptr;
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
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto ends_with = [](const std::string& s, const char* tail) {
    const size_t n = std::strlen(tail);
    return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
  };
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor& t = p.value();
    if (ends_with(name, "bias")) {
      t.zero_();
    } else if (t.dim() == 1) {  // norm scales
      t.fill_(1.0);
    } else if (ends_with(name, "token_embedding.weight") || ends_with(name, "position_embedding.weight")) {
      t.copy_(at::normal(0.0, 0.02, t.sizes(), gen, f32));
    } else {
      // PyTorch's default for Linear and Conv2d (Kaiming uniform with a = √5): U(±1/√fan_in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(t.numel() / t.size(0)));
      t.copy_(at::rand(t.sizes(), gen, f32).mul_(2 * bound).sub_(bound));
    }
  }
}

}  // namespace bioesp::models
