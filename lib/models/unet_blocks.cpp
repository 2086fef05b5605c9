#include "models/unet_blocks.h"

#include "models/checkpoint.h"

namespace bioesp::models {

// A resnet or transformer block, checkpointed when a CheckpointScope asks for it.
static torch::Tensor run(std::shared_ptr<ResnetBlock2DImpl> r, const torch::Tensor& x, const torch::Tensor& temb) {
  if (!checkpointing()) return r->forward(x, temb);
  return checkpoint([r](const std::vector<torch::Tensor>& in) { return r->forward(in[0], in[1]); }, {x, temb});
}
static torch::Tensor run(std::shared_ptr<Transformer2DModelImpl> t, const torch::Tensor& x, const torch::Tensor& context) {
  if (!checkpointing()) return t->forward(x, context);
  return checkpoint([t](const std::vector<torch::Tensor>& in) { return t->forward(in[0], in[1]); }, {x, context});
}

static ResnetOptions resnet(const BlockOptions& o, int64_t in, int64_t out) {
  ResnetOptions r;
  r.in_channels = in;
  r.out_channels = out;
  r.temb_channels = o.temb_channels;
  r.groups = o.groups;
  r.eps = o.eps;
  r.output_scale_factor = o.output_scale_factor;
  return r;
}

static Transformer2DModel transformer(const BlockOptions& o, int64_t channels) {
  TransformerOptions t = o.transformer;
  t.channels = channels;
  t.norm_groups = o.groups;
  return Transformer2DModel(t);
}

DownBlockImpl::DownBlockImpl(const DownBlockOptions& o) {
  for (int64_t i = 0; i < o.resnets; ++i) {
    resnets->push_back(ResnetBlock2D(resnet(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels)));
    if (o.cross_attention) attentions->push_back(transformer(o, o.out_channels));
  }
  register_module("resnets", resnets);
  if (o.cross_attention) register_module("attentions", attentions);
  if (o.downsample) {
    downsamplers->push_back(Downsample2D(o.out_channels, o.downsample_padding));
    register_module("downsamplers", downsamplers);
  }
}

torch::Tensor DownBlockImpl::layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context) {
  if (i == resnets->size()) return downsamplers[0]->as<Downsample2D>()->forward(x);
  auto h = run(resnets->ptr<ResnetBlock2DImpl>(i), x, temb);
  return attentions->is_empty() ? h : run(attentions->ptr<Transformer2DModelImpl>(i), h, context);
}

MidBlockImpl::MidBlockImpl(const MidBlockOptions& o) {
  resnets->push_back(ResnetBlock2D(resnet(o, o.channels, o.channels)));
  for (int64_t i = 0; i < o.attention_layers; ++i) {
    attentions->push_back(transformer(o, o.channels));
    resnets->push_back(ResnetBlock2D(resnet(o, o.channels, o.channels)));
  }
  register_module("attentions", attentions);
  register_module("resnets", resnets);
}

torch::Tensor MidBlockImpl::forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context) {
  x = run(resnets->ptr<ResnetBlock2DImpl>(0), x, temb);
  for (size_t i = 0; i < attentions->size(); ++i) {
    x = run(attentions->ptr<Transformer2DModelImpl>(i), x, context);
    x = run(resnets->ptr<ResnetBlock2DImpl>(i + 1), x, temb);
  }
  return x;
}

UpBlockImpl::UpBlockImpl(const UpBlockOptions& o) {
  for (int64_t i = 0; i < o.resnets; ++i) {
    int64_t skip = i == o.resnets - 1 ? o.last_skip_channels : o.out_channels;
    int64_t in = i == 0 ? o.prev_output_channels : o.out_channels;
    resnets->push_back(ResnetBlock2D(resnet(o, in + skip, o.out_channels)));
    if (o.cross_attention) attentions->push_back(transformer(o, o.out_channels));
  }
  register_module("resnets", resnets);
  if (o.cross_attention) register_module("attentions", attentions);
  if (o.upsample) {
    upsamplers->push_back(Upsample2D(o.out_channels));
    register_module("upsamplers", upsamplers);
  }
}

torch::Tensor UpBlockImpl::layer(size_t i, const torch::Tensor& x, const torch::Tensor& temb, const torch::Tensor& context,
                                 std::vector<torch::Tensor>& skips) {
  auto h = torch::cat({x, skips.back()}, 1);
  skips.pop_back();
  h = run(resnets->ptr<ResnetBlock2DImpl>(i), h, temb);
  return attentions->is_empty() ? h : run(attentions->ptr<Transformer2DModelImpl>(i), h, context);
}

torch::Tensor UpBlockImpl::upsample(const torch::Tensor& x, const std::vector<torch::Tensor>& skips) {
  if (upsamplers->is_empty()) return x;
  c10::optional<std::vector<int64_t>> size;
  if (!skips.empty()) size = std::vector<int64_t>{skips.back().size(2), skips.back().size(3)};
  return upsamplers[0]->as<Upsample2D>()->forward(x, size);
}

}  // namespace bioesp::models
