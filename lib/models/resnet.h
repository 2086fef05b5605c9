// ResnetBlock2D, Downsample2D and Upsample2D, named as in diffusers.
#pragma once

#include <torch/torch.h>

#include "models/layers.h"

namespace bioesp::models {

struct ResnetOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t temb_channels = 0;  // 0: no time embedding (the VAE)
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
};

class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});
  double output_scale_factor() const { return scale_; }

  GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};

 private:
  double scale_;
};
TORCH_MODULE(ResnetBlock2D);

// A stride-2 3×3 conv ("conv"); padding 0 pads right and bottom first, as the VAE does.
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv{nullptr};

 private:
  int64_t padding_;
};
TORCH_MODULE(Downsample2D);

// Nearest ×2 (or to `size`), then a 3×3 conv ("conv").
class Upsample2DImpl : public torch::nn::Module {
 public:
  explicit Upsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x, c10::optional<std::vector<int64_t>> size = c10::nullopt);
  Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace bioesp::models
