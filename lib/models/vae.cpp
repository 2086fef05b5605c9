#include "models/vae.h"

namespace bioesp::models {

namespace F = torch::nn::functional;

static ResnetOptions vae_resnet(int64_t in, int64_t out, int64_t groups) {
  ResnetOptions r;
  r.in_channels = in;
  r.out_channels = out;
  r.groups = groups;
  r.eps = 1e-6;
  return r;
}

VaeMidBlockImpl::VaeMidBlockImpl(int64_t ch, int64_t groups, bool attention) {
  resnets->push_back(ResnetBlock2D(vae_resnet(ch, ch, groups)));
  if (attention) {
    AttentionOptions a;
    a.query_dim = ch;
    a.heads = 1;
    a.dim_head = ch;
    a.bias = true;
    a.norm_groups = groups;
    a.residual_connection = true;
    a.upcast = true;
    attentions->push_back(Attention(a));
    register_module("attentions", attentions);
  }
  resnets->push_back(ResnetBlock2D(vae_resnet(ch, ch, groups)));
  register_module("resnets", resnets);
}

torch::Tensor VaeMidBlockImpl::forward(torch::Tensor x) {
  x = resnets[0]->as<ResnetBlock2D>()->forward(x);
  if (!attentions->is_empty()) x = attentions[0]->as<Attention>()->forward(x);
  return resnets[1]->as<ResnetBlock2D>()->forward(x);
}

VaeBlockImpl::VaeBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool down, bool resample) {
  for (int64_t i = 0; i < layers; ++i) resnets->push_back(ResnetBlock2D(vae_resnet(i == 0 ? in : out, out, groups)));
  register_module("resnets", resnets);
  if (resample && down) {
    downsamplers->push_back(Downsample2D(out, 0));
    register_module("downsamplers", downsamplers);
  } else if (resample) {
    upsamplers->push_back(Upsample2D(out));
    register_module("upsamplers", upsamplers);
  }
}

torch::Tensor VaeBlockImpl::forward(torch::Tensor x) {
  for (const auto& r : *resnets) x = r->as<ResnetBlock2D>()->forward(x);
  if (!downsamplers->is_empty()) x = downsamplers[0]->as<Downsample2D>()->forward(x);
  if (!upsamplers->is_empty()) x = upsamplers[0]->as<Upsample2D>()->forward(x);
  return x;
}

static GroupNorm norm_out(int64_t groups, int64_t ch) {
  return GroupNorm(groups, ch, 1e-6);
}

EncoderImpl::EncoderImpl(const config::VAEConfig& c) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", Conv2d(c.in_channels, ch[0], 3, 1, 1));
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    int64_t in = out;
    out = ch[i];
    down_blocks->push_back(VaeBlock(in, out, c.layers_per_block, c.norm_num_groups, true, i + 1 < ch.size()));
  }
  register_module("down_blocks", down_blocks);
  mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, c.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out", norm_out(c.norm_num_groups, ch.back()));
  conv_out = register_module(
      "conv_out", Conv2d(ch.back(), 2 * c.latent_channels, 3, 1, 1));
}

torch::Tensor EncoderImpl::forward(torch::Tensor x) {
  x = conv_in(x);
  for (const auto& b : *down_blocks) x = b->as<VaeBlock>()->forward(x);
  x = mid_block(x);
  return conv_out(F::silu(conv_norm_out(x)));
}

DecoderImpl::DecoderImpl(const config::VAEConfig& c) {
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  conv_in = register_module("conv_in", Conv2d(c.latent_channels, ch.back(), 3, 1, 1));
  mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, c.mid_block_add_attention));
  int64_t out = ch.back();
  for (size_t i = 0; i < n; ++i) {
    int64_t prev = out;
    out = ch[n - 1 - i];
    up_blocks->push_back(VaeBlock(prev, out, c.layers_per_block + 1, c.norm_num_groups, false, i + 1 < n));
  }
  register_module("up_blocks", up_blocks);
  conv_norm_out = register_module("conv_norm_out", norm_out(c.norm_num_groups, ch[0]));
  conv_out = register_module("conv_out", Conv2d(ch[0], c.out_channels, 3, 1, 1));
}

torch::Tensor DecoderImpl::forward(torch::Tensor z) {
  auto x = conv_in(z);
  x = mid_block(x);
  for (const auto& b : *up_blocks) x = b->as<VaeBlock>()->forward(x);
  return conv_out(F::silu(conv_norm_out(x)));
}

AutoencoderKLImpl::AutoencoderKLImpl(const config::VAEConfig& c) : c_(c) {
  encoder = register_module("encoder", Encoder(c));
  decoder = register_module("decoder", Decoder(c));
  const int64_t l = c.latent_channels;
  if (c.use_quant_conv) quant_conv = register_module("quant_conv", Conv2d(2 * l, 2 * l, 1));
  if (c.use_post_quant_conv) post_quant_conv = register_module("post_quant_conv", Conv2d(l, l, 1));
}

torch::Tensor AutoencoderKLImpl::quantized(const torch::Tensor& h) { return quant_conv ? quant_conv(h) : h; }

Posterior AutoencoderKLImpl::split_moments(const torch::Tensor& m) {
  auto parts = m.chunk(2, 1);
  return {parts[0], (0.5 * parts[1].clamp(-30.0, 20.0)).exp()};
}

Posterior AutoencoderKLImpl::encode(const torch::Tensor& image) { return split_moments(quantized(encoder(image))); }

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) {
  return decoder(post_quant_conv ? post_quant_conv(z) : z);
}

namespace {

// diffusers' blend_v / blend_h: a linear cross-fade over `extent` rows or columns.
void blend(const torch::Tensor& prev, torch::Tensor& cur, int64_t extent, int64_t dim) {
  extent = std::min({extent, prev.size(dim), cur.size(dim)});
  for (int64_t i = 0; i < extent; ++i) {
    double w = static_cast<double>(i) / extent;
    auto a = prev.select(dim, prev.size(dim) - extent + i);
    auto b = cur.select(dim, i);
    b.copy_(a * (1 - w) + b * w);
  }
}

// Runs `fn` over overlapping tiles of `x` (stride `step`, tile `tile`, in x's units), blends the
// outputs over `blend_extent` and crops each to `keep` (outputs scaled by `scale`).
torch::Tensor tiled(const torch::Tensor& x, int64_t tile, int64_t step, int64_t blend_extent, int64_t keep,
                    const std::function<torch::Tensor(const torch::Tensor&)>& fn) {
  std::vector<std::vector<torch::Tensor>> rows;
  for (int64_t i = 0; i < x.size(2); i += step) {
    std::vector<torch::Tensor> row;
    for (int64_t j = 0; j < x.size(3); j += step)
      row.push_back(fn(x.slice(2, i, i + tile).slice(3, j, j + tile)).clone());
    rows.push_back(std::move(row));
  }
  std::vector<torch::Tensor> out_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<torch::Tensor> row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      auto& t = rows[i][j];
      if (i > 0) blend(rows[i - 1][j], t, blend_extent, 2);
      if (j > 0) blend(rows[i][j - 1], t, blend_extent, 3);
      row.push_back(t.slice(2, 0, keep).slice(3, 0, keep));
    }
    out_rows.push_back(torch::cat(row, 3));
  }
  return torch::cat(out_rows, 2);
}

}  // namespace

// diffusers' tiling: tiles of tile_sample_size pixels (its latent size on the latent side), a
// stride that leaves `overlap` of a tile shared, blended over that many output rows.
AutoencoderKLImpl::Tiling AutoencoderKLImpl::tiling(const TileOptions& t) const {
  Tiling g;
  const int64_t factor = int64_t{1} << (c_.block_out_channels.size() - 1);
  g.sample = t.tile_sample_size > 0 ? t.tile_sample_size : c_.sample_size;
  g.latent = std::max<int64_t>(1, g.sample / factor);
  g.overlap = t.overlap;
  return g;
}

torch::Tensor AutoencoderKLImpl::decode_tiled(const torch::Tensor& z, const TileOptions& t) {
  const Tiling g = tiling(t);
  if (z.size(2) <= g.latent && z.size(3) <= g.latent) return decode(z);  // one tile: no seams
  const int64_t blend_extent = static_cast<int64_t>(g.sample * g.overlap);
  return tiled(z, g.latent, std::max<int64_t>(1, static_cast<int64_t>(g.latent * (1 - g.overlap))), blend_extent,
               g.sample - blend_extent, [&](const torch::Tensor& tile) { return decode(tile); });
}

Posterior AutoencoderKLImpl::encode_tiled(const torch::Tensor& image, const TileOptions& t) {
  const Tiling g = tiling(t);
  if (image.size(2) <= g.sample && image.size(3) <= g.sample) return encode(image);
  // diffusers blends the moments before splitting them into mean and std.
  const int64_t blend_extent = static_cast<int64_t>(g.latent * g.overlap);
  auto m = tiled(image, g.sample, std::max<int64_t>(1, static_cast<int64_t>(g.sample * (1 - g.overlap))), blend_extent,
                 g.latent - blend_extent, [&](const torch::Tensor& tile) { return quantized(encoder(tile)); });
  return split_moments(m);
}

}  // namespace bioesp::models
