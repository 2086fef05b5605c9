// AutoencoderKL: encoder to a diagonal Gaussian posterior, decoder, and tiled decode/encode for
// images larger than memory allows, equal to the untiled results (no seams).
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "config/model_config.h"
#include "models/attention.h"
#include "models/resnet.h"

namespace bioesp::models {

// UNetMidBlock2D without time embedding: resnet, attention, resnet.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  VaeMidBlockImpl(int64_t channels, int64_t groups, bool attention);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList resnets, attentions;
};
TORCH_MODULE(VaeMidBlock);

// DownEncoderBlock2D / UpDecoderBlock2D.
class VaeBlockImpl : public torch::nn::Module {
 public:
  VaeBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool down, bool resample);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList resnets, downsamplers, upsamplers;
};
TORCH_MODULE(VaeBlock);

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const config::VAEConfig& c);
  torch::Tensor forward(torch::Tensor x);
  Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;
  VaeMidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Encoder);

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const config::VAEConfig& c);
  torch::Tensor forward(torch::Tensor z);
  Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks;
  VaeMidBlock mid_block{nullptr};
  GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Decoder);

struct Posterior {
  torch::Tensor mean, std;
  torch::Tensor sample(const torch::Tensor& eps) const { return mean + std * eps; }
};

// Tiled decode/encode runs the full-resolution layers tile by tile, each tile with a margin that
// covers the layer's reach, and normalises every tile with the GroupNorm statistics of the whole
// feature map (gathered as tiles finish); the latent-resolution middle (with its attention) runs
// whole. The result is the untiled one up to float rounding — unlike diffusers' tiling, whose
// per-tile statistics shift colours between tiles that it then cross-fades. Peak memory is the
// whole feature maps a layer reads and writes, but not its temporaries; with `offload` on an
// accelerator those maps live in host memory and only tiles visit the device.
struct TileOptions {
  int64_t tile_sample_size = 0;  // pixels per tile side (multiple of 8); 0: the config's sample_size
  bool offload = true;
};

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const config::VAEConfig& c);
  Posterior encode(const torch::Tensor& image);   // image in [-1, 1]
  torch::Tensor decode(const torch::Tensor& z);   // z unscaled (divide by scaling_factor first)
  Posterior encode_tiled(const torch::Tensor& image, const TileOptions& t = {});
  torch::Tensor decode_tiled(const torch::Tensor& z, const TileOptions& t = {});
  const config::VAEConfig& config() const { return c_; }

  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

 private:
  int64_t tile_pixels(const TileOptions& t) const;
  torch::Tensor quantized(const torch::Tensor& h);         // quant_conv, when the model has one
  static Posterior split_moments(const torch::Tensor& m);  // mean and std from the moments
  config::VAEConfig c_;
};
TORCH_MODULE(AutoencoderKL);

// The dtype the VAE computes in: its norms' (its Linear and Conv2d weights may be held narrower).
torch::ScalarType compute_dtype(AutoencoderKLImpl& vae);

// Holds a VAE in float32 for a scope.
class VaeInFloat32 {
 public:
  explicit VaeInFloat32(AutoencoderKLImpl& vae) : vae_(vae), dtype_(compute_dtype(vae)) {
    vae_.to(torch::kFloat32);
  }
  ~VaeInFloat32() {
    try {
      vae_.to(dtype_);
    } catch (...) {  // out of memory: it stays in float32, which still decodes float32 inputs
    }
  }
  VaeInFloat32(const VaeInFloat32&) = delete;
  VaeInFloat32& operator=(const VaeInFloat32&) = delete;

 private:
  AutoencoderKLImpl& vae_;
  torch::ScalarType dtype_;
};

// run(dtype) — a decode or encode with inputs cast to dtype — under SD's upcasting rule. SD's VAE
// can overflow in fp16 (SDXL's does): where the config asks for upcasting fp16 (`force_upcast`),
// accelerators run it in fp16 first, as diffusers' SD pipeline and DreamBooth script do, and
// again in float32 if `finite(result)` says it overflowed; the CPU, without fast fp16 kernels,
// runs it in float32 at once.
template <class Run, class Finite>
auto with_upcasting(AutoencoderKLImpl& vae, const torch::Device& device, Run run, Finite finite)
    -> decltype(run(torch::kFloat32)) {
  const auto dtype = compute_dtype(vae);
  if (!vae.config().force_upcast || dtype != torch::kFloat16) return run(dtype);
  if (!device.is_cpu()) {
    auto r = run(dtype);
    if (finite(r)) return r;
  }
  VaeInFloat32 f32(vae);
  return run(torch::kFloat32);
}

}  // namespace bioesp::models
