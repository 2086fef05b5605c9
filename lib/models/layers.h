// The leaf layers, with parameters named as in PyTorch (weight, bias). Unlike torch::nn's, they
// allocate their parameters uninitialised with the dtype and device of the enclosing BuildScope:
// a full-size model costs no resident memory until its weights are loaded into it.
#pragma once

#include <torch/torch.h>

namespace bioesp::models {

// Dtype and device for parameters created on this thread while the scope lives.
class BuildScope {
 public:
  explicit BuildScope(torch::TensorOptions options);
  ~BuildScope();
  BuildScope(const BuildScope&) = delete;
  BuildScope& operator=(const BuildScope&) = delete;

 private:
  torch::TensorOptions previous_;
};
torch::TensorOptions build_options();

// The type in which Linear and Conv2d weights created on this thread are held while the scope
// lives, where it is not the BuildScope's (nullopt: the BuildScope's). Float16 or bfloat16 halve
// the resident memory of float32 weights; each call widens them to its input's type
// (compute_weight), so the arithmetic stays in float32 where LibTorch's CPU kernels have no fp16.
// kInt8 builds them in float16, for quantize_linears to take the Linear ones to int8 once loaded.
// `as_file` (with no storage type): load_state keeps the weights a file holds in float16 or
// bfloat16 in that type. Widening them per call gives the very numbers converting them at load
// would, in half the memory.
class WeightScope {
 public:
  explicit WeightScope(c10::optional<torch::ScalarType> storage, bool as_file = false);
  ~WeightScope();
  WeightScope(const WeightScope&) = delete;
  WeightScope& operator=(const WeightScope&) = delete;

 private:
  c10::optional<torch::ScalarType> previous_;
  bool previous_as_file_;
};
// Whether the innermost WeightScope on this thread keeps 16-bit file weights as they are.
bool weights_as_file();
// Whether `m` is a Linear or Conv2d layer, whose `weight` WeightScope's storage applies to.
bool stores_weight(const torch::nn::Module& m);

// The weight `w` in the dtype of the input `x`: itself, or a widened copy for this one call.
torch::Tensor compute_weight(const torch::Tensor& w, const torch::Tensor& x);

// The most parameters one component may hold (SDXL's UNet has 2.6 billion).
constexpr int64_t kMaxParameters = int64_t{1} << 32;
// Refuses a model of more than kMaxParameters, naming `what`.
void check_parameter_count(torch::nn::Module& m, const std::string& what);

// Builds a component from its config once the same build on the meta device (which allocates
// nothing) has shown it within kMaxParameters.
template <class Model, class Config>
Model build_checked(const Config& config, const std::string& what) {
  {
    BuildScope meta(build_options().device(torch::kMeta));
    check_parameter_count(*Model(config), what);
  }
  return Model(config);
}

// A low-rank adapter on a layer: out += scale · up(down(x)), kept apart from the weights so
// that scales change and adapters come and go without reloading or drifting the base model.
struct Adapter {
  std::string name;
  torch::Tensor down, up;  // Linear: [r, in], [out, r]; Conv2d: [r, in, k, k], [out, r, 1, 1]
  double factor = 1.0;     // alpha / rank
  double scale = 1.0;      // the user's
  double dropout = 0.0;    // on the adapter's input, only while a DropoutScope is active
  double weight() const { return factor * scale; }
  // scale · up(down(dropout(x))) in the adapter's dtype (float32 adapters train on fp16 layers).
  torch::Tensor delta(const torch::Tensor& x, bool conv, int64_t stride, int64_t padding) const;
};

// While alive on this thread, adapters apply their dropout with draws from `gen` (training).
class DropoutScope {
 public:
  explicit DropoutScope(at::Generator gen);
  ~DropoutScope();
  DropoutScope(const DropoutScope&) = delete;
  DropoutScope& operator=(const DropoutScope&) = delete;

 private:
  c10::optional<at::Generator> previous_;
};
// The generator of the innermost DropoutScope on this thread, if any.
c10::optional<at::Generator> dropout_generator();

// Layers that carry adapters.
class Adaptable {
 public:
  virtual ~Adaptable() = default;
  std::vector<Adapter> adapters;
  virtual at::IntArrayRef weight_shape() const = 0;
};

class LinearImpl : public torch::nn::Module, public Adaptable {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  at::IntArrayRef weight_shape() const override { return weight.sizes(); }
  // The weight as int8 with a scale per output row, |w| ≤ 127 · scale: a quarter of float32's
  // memory, widened and rescaled per call.
  void quantize_int8();
  torch::Tensor weight, bias;
  torch::Tensor weight_scale;  // [out] float32, set by quantize_int8
};
TORCH_MODULE(Linear);

// Every Linear under `root` quantized (LinearImpl::quantize_int8).
void quantize_linears(torch::nn::Module& root);

// The axes along which convolutions pad with the feature map's opposite edge (circular padding,
// as A1111's "tiling" sets padding_mode="circular") instead of zeros: images then repeat
// without seams along them.
struct Wrap {
  bool x = false, y = false;
  bool any() const { return x || y; }
};

// x padded by left, right, top and bottom positions: the opposite edge's content along the
// wrapped axes, zeros along the others.
torch::Tensor pad2d(const torch::Tensor& x, int64_t left, int64_t right, int64_t top, int64_t bottom, Wrap wrap);

class Conv2dImpl : public torch::nn::Module, public Adaptable {
 public:
  Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  at::IntArrayRef weight_shape() const override { return weight.sizes(); }
  torch::Tensor weight, bias;
  Wrap wrap;  // how the padding is filled; set per generation through WrapScope

 private:
  int64_t stride_, padding_;
};
TORCH_MODULE(Conv2d);

// Sets `wrap` on every Conv2d under the given modules while alive, then restores what each had.
class WrapScope {
 public:
  WrapScope(const std::vector<torch::nn::Module*>& roots, Wrap wrap);
  ~WrapScope();
  WrapScope(const WrapScope&) = delete;
  WrapScope& operator=(const WrapScope&) = delete;

 private:
  std::vector<std::pair<Conv2dImpl*, Wrap>> saved_;
};

// The layer as one that carries adapters (Linear, Conv2d), or nullptr.
Adaptable* adaptable(const std::shared_ptr<torch::nn::Module>& m);

class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t groups, int64_t channels, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t groups() const { return groups_; }
  double eps() const { return eps_; }
  torch::Tensor weight, bias;

 private:
  int64_t groups_;
  double eps_;
};
TORCH_MODULE(GroupNorm);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  int64_t dim_;
  double eps_;
};
TORCH_MODULE(LayerNorm);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t count, int64_t dim);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

// Fills every parameter as the libraries initialise them (PyTorch's U(±1/√fan_in) for linear and
// convolution weights, CLIP's normal(0, 0.02) for token and position embeddings, ones/zeros for
// norms, zero biases), from a seeded generator: models with random weights for benchmarks and for
// training from scratch.
void initialise_random(torch::nn::Module& m, uint64_t seed);

}  // namespace bioesp::models
