// The UNet's down, mid and up blocks: CrossAttnDownBlock2D / DownBlock2D,
// UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D (attentions empty for the plain ones).
#pragma once

#include <torch/torch.h>

#include "models/resnet.h"
#include "models/transformer.h"

namespace bioesp::models {

// What every block of one UNet shares.
struct BlockOptions {
  int64_t temb_channels = 0;
  bool cross_attention = true;  // a transformer after each resnet (the CrossAttn… blocks)
  int64_t groups = 32;
  double eps = 1e-5;
  double output_scale_factor = 1.0;
  TransformerOptions transformer;  // channels are filled in by the block
};

struct DownBlockOptions : BlockOptions {
  int64_t in_channels = 0, out_channels = 0;  // the first resnet maps in to out
  int64_t resnets = 2;                        // diffusers' num_layers
  bool downsample = true;                     // a Downsample2D at the end (all but the last block)
  int64_t downsample_padding = 1;
};

struct MidBlockOptions : BlockOptions {
  int64_t channels = 0;
  int64_t attention_layers = 1;  // transformer + resnet pairs after the first resnet (num_layers)
};

struct UpBlockOptions : BlockOptions {
  int64_t prev_output_channels = 0;  // what the block below hands up (the first resnet's input)
  int64_t out_channels = 0;
  int64_t last_skip_channels = 0;    // the skip its last resnet takes: the matching down block's
                                     // input (diffusers' in_channels); the others take out_channels
  int64_t resnets = 3;               // num_layers: the down block's resnets + 1
  bool upsample = true;              // an Upsample2D at the end (all but the last block)
};

// Driven layer by layer (the UNet keeps each layer's output as a skip, and step caching stops
// part-way): layers 0 … resnets − 1 are a resnet (and its transformer), the last one the
// downsampler when there is one.
class DownBlockImpl : public torch::nn::Module {
 public:
  explicit DownBlockImpl(const DownBlockOptions& o);
  size_t size() const { return resnets->size() + downsamplers->size(); }
  torch::Tensor layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context);
  torch::nn::ModuleList resnets, attentions, downsamplers;
};
TORCH_MODULE(DownBlock);

class MidBlockImpl : public torch::nn::Module {
 public:
  explicit MidBlockImpl(const MidBlockOptions& o);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context);
  torch::nn::ModuleList resnets, attentions;
};
TORCH_MODULE(MidBlock);

// Layer by layer too: layer i joins x with the last skip (taken off `skips`); then the
// upsampler, to the size of the next skip when there is one.
class UpBlockImpl : public torch::nn::Module {
 public:
  explicit UpBlockImpl(const UpBlockOptions& o);
  size_t size() const { return resnets->size(); }
  torch::Tensor layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context,
                      std::vector<torch::Tensor>& skips);
  torch::Tensor upsample(const torch::Tensor& x, const std::vector<torch::Tensor>& skips);
  torch::nn::ModuleList resnets, attentions, upsamplers;
};
TORCH_MODULE(UpBlock);

}  // namespace bioesp::models
