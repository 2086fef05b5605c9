#include "models/resnet.h"

namespace bioesp::models {

namespace F = torch::nn::functional;

static Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1, int64_t padding = 1) {
  return Conv2d(in, out, 3, stride, padding);
}

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetOptions& o) : scale_(o.output_scale_factor) {
  norm1 = register_module("norm1", GroupNorm(o.groups, o.in_channels, o.eps));
  conv1 = register_module("conv1", conv3x3(o.in_channels, o.out_channels));
  if (o.temb_channels > 0) time_emb_proj = register_module("time_emb_proj", Linear(o.temb_channels, o.out_channels));
  norm2 = register_module("norm2", GroupNorm(o.groups, o.out_channels, o.eps));
  conv2 = register_module("conv2", conv3x3(o.out_channels, o.out_channels));
  if (o.in_channels != o.out_channels)
    conv_shortcut = register_module("conv_shortcut", Conv2d(o.in_channels, o.out_channels, 1));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1(F::silu(norm1(x)));
  if (time_emb_proj && temb.defined()) h = h + time_emb_proj(F::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(F::silu(norm2(h)));
  auto skip = conv_shortcut ? conv_shortcut(x) : x;
  auto out = skip + h;
  return scale_ == 1.0 ? out : out / scale_;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t padding) : padding_(padding) {
  conv = register_module("conv", conv3x3(channels, channels, 2, padding));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding_ == 0) return conv(pad2d(x, 0, 1, 0, 1, conv->wrap));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) { conv = register_module("conv", conv3x3(channels, channels)); }

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, c10::optional<std::vector<int64_t>> size) {
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) opts.size(*size);
  else opts.scale_factor(std::vector<double>{2.0, 2.0});
  // Nearest upsampling is done in float32 for bf16 inputs, which the kernel lacks on some builds.
  auto in = x.scalar_type() == torch::kBFloat16 ? x.to(torch::kFloat32) : x;
  return conv(F::interpolate(in, opts).to(x.scalar_type()));
}

}  // namespace bioesp::models
