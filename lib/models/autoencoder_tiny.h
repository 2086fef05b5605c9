// AutoencoderTiny (TAESD, Ollin Boer Bohan's tiny autoencoder) as diffusers builds it: stacks of
// 3×3 convolutions without normalisation or attention, named encoder.layers.K / decoder.layers.K
// as diffusers' checkpoints are. It decodes the UNet's latents (no 0.18215 division) into [-1, 1].
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

#include "config/model_config.h"

namespace bioesp::models {

// conv (3×3, relu, 3×3, relu, 3×3) plus skip (a bias-free 1×1 where the widths differ), then relu.
class AutoencoderTinyBlockImpl : public torch::nn::Module {
 public:
  AutoencoderTinyBlockImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential conv;
  Conv2d skip{nullptr};
};
TORCH_MODULE(AutoencoderTinyBlock);

class EncoderTinyImpl : public torch::nn::Module {
 public:
  explicit EncoderTinyImpl(const config::TinyVAEConfig& c);
  torch::Tensor forward(const torch::Tensor& image);  // [-1, 1] → latents
  torch::nn::Sequential layers;
};
TORCH_MODULE(EncoderTiny);

class DecoderTinyImpl : public torch::nn::Module {
 public:
  explicit DecoderTinyImpl(const config::TinyVAEConfig& c);
  torch::Tensor forward(const torch::Tensor& latents);  // → [-1, 1]
  torch::nn::Sequential layers;
};
TORCH_MODULE(DecoderTiny);

class AutoencoderTinyImpl : public torch::nn::Module {
 public:
  // Without `with_encoder` it only decodes (TAESD's decoder file alone, for previews).
  explicit AutoencoderTinyImpl(const config::TinyVAEConfig& c, bool with_encoder = true);
  torch::Tensor encode(const torch::Tensor& image);    // [-1, 1] → latents (× scaling_factor follows)
  torch::Tensor decode(const torch::Tensor& latents);  // latents (÷ scaling_factor first) → [-1, 1]
  bool can_encode() const { return !encoder.is_empty(); }
  const config::TinyVAEConfig& config() const { return c_; }

  EncoderTiny encoder{nullptr};
  DecoderTiny decoder{nullptr};

 private:
  config::TinyVAEConfig c_;
};
TORCH_MODULE(AutoencoderTiny);

}  // namespace bioesp::models
