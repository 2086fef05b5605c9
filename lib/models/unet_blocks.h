// The UNet's down, mid and up blocks: CrossAttnDownBlock2D / DownBlock2D,
// UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D (attentions empty for the plain ones).
#pragma once

#include <torch/torch.h>

#include "models/resnet.h"
#include "models/transformer.h"

namespace bioesp::models {

struct BlockOptions {
  int64_t in_channels = 0, out_channels = 0, prev_output_channels = 0, temb_channels = 0;
  int64_t layers = 2;
  bool cross_attention = true;
  bool add_sample = true;  // downsampler or upsampler
  int64_t downsample_padding = 1;
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
  TransformerOptions transformer;  // channels are filled in by the block
};

// Driven layer by layer (the UNet keeps each layer's output as a skip, and step caching stops
// part-way): layers 0 … resnets − 1 are a resnet (and its transformer), the last one the
// downsampler when there is one.
class DownBlockImpl : public torch::nn::Module {
 public:
  explicit DownBlockImpl(const BlockOptions& o);
  size_t size() const { return resnets->size() + downsamplers->size(); }
  torch::Tensor layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context);
  torch::nn::ModuleList resnets, attentions, downsamplers;
};
TORCH_MODULE(DownBlock);

class MidBlockImpl : public torch::nn::Module {
 public:
  explicit MidBlockImpl(const BlockOptions& o);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context);
  torch::nn::ModuleList resnets, attentions;
};
TORCH_MODULE(MidBlock);

// Layer by layer too: layer i joins x with the last skip (taken off `skips`); then the
// upsampler, to the size of the next skip when there is one.
class UpBlockImpl : public torch::nn::Module {
 public:
  explicit UpBlockImpl(const BlockOptions& o);
  size_t size() const { return resnets->size(); }
  torch::Tensor layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context,
                      std::vector<torch::Tensor>& skips);
  torch::Tensor upsample(const torch::Tensor& x, const std::vector<torch::Tensor>& skips);
  torch::nn::ModuleList resnets, attentions, upsamplers;
};
TORCH_MODULE(UpBlock);

}  // namespace bioesp::models
