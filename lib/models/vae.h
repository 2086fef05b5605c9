// AutoencoderKL: encoder to a diagonal Gaussian posterior, decoder, and tiled decode/encode for
// images larger than memory allows, blended across overlaps as diffusers does.
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

struct TileOptions {
  int64_t tile_sample_size = 0;  // pixels; 0: the config's sample_size
  double overlap = 0.25;         // fraction of a tile shared with its neighbour
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
  struct Tiling {
    int64_t sample, latent;  // tile sizes in pixels and latents
    double overlap;
  };
  Tiling tiling(const TileOptions& t) const;
  torch::Tensor quantized(const torch::Tensor& h);         // quant_conv, when the model has one
  static Posterior split_moments(const torch::Tensor& m);  // mean and std from the moments
  config::VAEConfig c_;
};
TORCH_MODULE(AutoencoderKL);

}  // namespace bioesp::models
