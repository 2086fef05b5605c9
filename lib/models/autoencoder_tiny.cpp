#include "models/autoencoder_tiny.h"

#include "core/error.h"

namespace bioesp::models {

namespace {

Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1, bool bias = true) { return Conv2d(in, out, 3, stride, 1, bias); }

torch::nn::Functional nearest(int64_t factor) {
  return torch::nn::Functional([factor](const torch::Tensor& x) {
    auto opts = torch::nn::functional::InterpolateFuncOptions().mode(torch::kNearest).scale_factor(
        std::vector<double>{static_cast<double>(factor), static_cast<double>(factor)});
    // Some builds lack the bf16 kernel; nearest neighbours are exact in float32.
    auto in = x.scalar_type() == torch::kBFloat16 ? x.to(torch::kFloat32) : x;
    return torch::nn::functional::interpolate(in, opts).to(x.scalar_type());
  });
}

}  // namespace

AutoencoderTinyBlockImpl::AutoencoderTinyBlockImpl(int64_t in, int64_t out) {
  conv->push_back(conv3x3(in, out));
  conv->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  conv->push_back(conv3x3(out, out));
  conv->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  conv->push_back(conv3x3(out, out));
  register_module("conv", conv);
  if (in != out) skip = register_module("skip", Conv2d(in, out, 1, 1, 0, false));
}

torch::Tensor AutoencoderTinyBlockImpl::forward(const torch::Tensor& x) {
  // In place: at 512 px each fresh activation is 64 MiB that glibc maps and faults in again.
  return conv->forward(x).add_(skip ? skip(x) : x).relu_();
}

EncoderTinyImpl::EncoderTinyImpl(const config::TinyVAEConfig& c) {
  const auto& ch = c.encoder_block_out_channels;
  for (size_t i = 0; i < c.num_encoder_blocks.size(); ++i) {
    layers->push_back(i == 0 ? conv3x3(c.in_channels, ch[0]) : conv3x3(ch[i], ch[i], 2, false));
    for (int b = 0; b < c.num_encoder_blocks[i]; ++b) layers->push_back(AutoencoderTinyBlock(ch[i], ch[i]));
  }
  layers->push_back(conv3x3(ch.back(), c.latent_channels));
  register_module("layers", layers);
}

torch::Tensor EncoderTinyImpl::forward(const torch::Tensor& image) { return layers->forward(image.add(1).div(2)); }

DecoderTinyImpl::DecoderTinyImpl(const config::TinyVAEConfig& c) {
  const auto& ch = c.decoder_block_out_channels;
  layers->push_back(conv3x3(c.latent_channels, ch[0]));
  layers->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
  const size_t n = c.num_decoder_blocks.size();
  for (size_t i = 0; i < n; ++i) {
    const bool last = i + 1 == n;
    for (int b = 0; b < c.num_decoder_blocks[i]; ++b) layers->push_back(AutoencoderTinyBlock(ch[i], ch[i]));
    if (!last) layers->push_back(nearest(c.upsampling_scaling_factor));
    layers->push_back(conv3x3(ch[i], last ? c.out_channels : ch[i], 1, last));
  }
  register_module("layers", layers);
}

torch::Tensor DecoderTinyImpl::forward(const torch::Tensor& latents) {
  return layers->forward(torch::tanh(latents / 3) * 3).mul(2).sub(1);
}

AutoencoderTinyImpl::AutoencoderTinyImpl(const config::TinyVAEConfig& c, bool with_encoder) : c_(c) {
  if (with_encoder) encoder = register_module("encoder", EncoderTiny(c));
  decoder = register_module("decoder", DecoderTiny(c));
}

torch::Tensor AutoencoderTinyImpl::encode(const torch::Tensor& image) {
  if (!encoder) fail(BIOESP_ERR_UNSUPPORTED, "this tiny autoencoder has only its decoder: encoding (img2img) needs TAESD's encoder "
                                "(its taesd_encoder file beside the decoder)");
  return encoder(image);
}

torch::Tensor AutoencoderTinyImpl::decode(const torch::Tensor& latents) { return decoder(latents); }

}  // namespace bioesp::models
