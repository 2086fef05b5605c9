#include "models/vae.h"

#include <ATen/record_function.h>

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
  {
    RECORD_USER_SCOPE("mid_block");  // ranges for bench --profile
    x = mid_block(x);
  }
  for (size_t n = 0; n < up_blocks->size(); ++n) {
    RECORD_USER_SCOPE("up_blocks." + std::to_string(n));
    x = up_blocks[n]->as<VaeBlock>()->forward(x);
  }
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

// Per-group mean and variance of a feature map, gathered tile by tile (Chan et al.'s parallel
// update, in double precision, on the tiles' device: no host synchronisation).
class GroupStats {
 public:
  explicit GroupStats(int64_t groups) : groups_(groups) {}
  int64_t groups() const { return groups_; }

  void add(const torch::Tensor& x) {
    auto v = x.to(torch::kFloat32).reshape({x.size(0), groups_, -1});
    auto mean = v.mean(2, true);
    auto var = (v - mean).pow(2).mean(2).to(torch::kFloat64);
    mean = mean.squeeze(2).to(torch::kFloat64);
    const double nb = static_cast<double>(v.size(2));
    if (!mean_.defined()) {
      mean_ = mean;
      m2_ = var * nb;
      n_ = nb;
      return;
    }
    const double n = n_ + nb;
    auto delta = mean - mean_;
    mean_ = mean_ + delta * (nb / n);
    m2_ = m2_ + var * nb + delta * delta * (n_ * nb / n);
    n_ = n;
  }

  // `norm` applied to x with these statistics instead of x's own.
  torch::Tensor apply(const torch::Tensor& x, const GroupNorm& norm) const {
    const int64_t n = x.size(0), c = x.size(1);
    auto mean = mean_.to(x.device(), torch::kFloat32).unsqueeze(2);
    auto rstd = (m2_ / n_ + norm->eps()).rsqrt().to(x.device(), torch::kFloat32).unsqueeze(2);
    auto scale = rstd * norm->weight.to(torch::kFloat32).reshape({1, groups_, c / groups_});
    auto shift = norm->bias.to(torch::kFloat32).reshape({1, groups_, c / groups_}) - mean * scale;
    return (x.to(torch::kFloat32) * scale.reshape({n, c, 1, 1}) + shift.reshape({n, c, 1, 1})).to(x.scalar_type());
  }

 private:
  int64_t groups_;
  torch::Tensor mean_, m2_;  // [N, groups]
  double n_ = 0;
};

using TileFn = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

struct Tiler {
  torch::Device device;  // where tiles run
  torch::Device store;   // where whole feature maps live
  // Margin around a tile wherever it has a neighbour: covers one 3×3 convolution at the output
  // resolution, or a stride-2 one (even, so strided tiles stay on the stride grid).
  static constexpr int64_t halo = 2;

  // fn over the whole maps `in` (one height and width), run on tiles of `core` positions a side:
  // fn scales height and width by num/den. The tiles' cores form one whole map; `stats`, if
  // given, gathers its group statistics.
  torch::Tensor run(const std::vector<torch::Tensor>& in, int64_t core, int64_t num, int64_t den, const TileFn& fn,
                    GroupStats* stats) const {
    const int64_t H = in[0].size(2), W = in[0].size(3);
    torch::Tensor out;
    std::vector<torch::Tensor> tiles(in.size());
    for (int64_t y0 = 0; y0 < H; y0 += core) {
      const int64_t y1 = std::min(y0 + core, H), ya = std::max<int64_t>(0, y0 - halo), yb = std::min(H, y1 + halo);
      for (int64_t x0 = 0; x0 < W; x0 += core) {
        const int64_t x1 = std::min(x0 + core, W), xa = std::max<int64_t>(0, x0 - halo), xb = std::min(W, x1 + halo);
        for (size_t i = 0; i < in.size(); ++i) tiles[i] = in[i].slice(2, ya, yb).slice(3, xa, xb).to(device);
        auto r = fn(tiles).slice(2, (y0 - ya) * num / den, (y1 - ya) * num / den)
                     .slice(3, (x0 - xa) * num / den, (x1 - xa) * num / den);
        if (!out.defined())
          out = torch::empty({r.size(0), r.size(1), H * num / den, W * num / den}, r.options().device(store));
        out.slice(2, y0 * num / den, y1 * num / den).slice(3, x0 * num / den, x1 * num / den).copy_(r);
        if (stats) stats->add(r);
      }
    }
    return out;
  }

  // A ResnetBlock2D (no time embedding) in two tiled passes, one per GroupNorm; `s` holds x's
  // statistics on entry and the output's on return.
  torch::Tensor resnet(ResnetBlock2DImpl& r, const torch::Tensor& x, GroupStats& s, int64_t core) const {
    GroupStats sh(s.groups()), so(s.groups());
    auto h = run({x}, core, 1, 1, [&](const auto& t) { return r.conv1(F::silu(s.apply(t[0], r.norm1))); }, &sh);
    auto out = run(
        {x, h}, core, 1, 1,
        [&](const auto& t) {
          auto y = r.conv2(F::silu(sh.apply(t[1], r.norm2)));
          auto sum = (r.conv_shortcut ? r.conv_shortcut(t[0]) : t[0]) + y;
          return r.output_scale_factor() == 1.0 ? sum : sum / r.output_scale_factor();
        },
        &so);
    s = so;
    return out;
  }

  // A DownEncoderBlock2D or UpDecoderBlock2D: its resnets, then its resampler (`core` follows the
  // resolution).
  torch::Tensor block(VaeBlockImpl& b, torch::Tensor x, GroupStats& s, int64_t& core) const {
    for (const auto& r : *b.resnets) x = resnet(*r->as<ResnetBlock2D>(), x, s, core);
    const bool up = !b.upsamplers->is_empty();
    if (!up && b.downsamplers->is_empty()) return x;
    GroupStats next(s.groups());
    if (up) {
      x = run({x}, core, 2, 1, [&](const auto& in) { return b.upsamplers[0]->as<Upsample2D>()->forward(in[0]); }, &next);
      core *= 2;
    } else {
      x = run({x}, core, 1, 2, [&](const auto& in) { return b.downsamplers[0]->as<Downsample2D>()->forward(in[0]); }, &next);
      core /= 2;
    }
    s = next;
    return x;
  }
};

Tiler tiler(const torch::Tensor& x, const TileOptions& o) {
  return {x.device(), o.offload && !x.device().is_cpu() ? torch::Device(torch::kCPU) : x.device()};
}

}  // namespace

int64_t AutoencoderKLImpl::tile_pixels(const TileOptions& t) const {
  const int64_t factor = int64_t{1} << (c_.block_out_channels.size() - 1);
  const int64_t px = t.tile_sample_size > 0 ? t.tile_sample_size : c_.sample_size;
  return std::max(4 * factor, px / factor * factor);  // strided layers need whole latents per tile
}

torch::Tensor AutoencoderKLImpl::decode_tiled(const torch::Tensor& z, const TileOptions& o) {
  const int64_t factor = int64_t{1} << (c_.block_out_channels.size() - 1), px = tile_pixels(o);
  if (z.size(2) * factor <= px && z.size(3) * factor <= px) return decode(z);
  const Tiler t = tiler(z, o);
  auto& d = *decoder;
  GroupStats s(c_.norm_num_groups);
  // The latent-resolution middle runs whole: its attention sees every position.
  auto x = d.mid_block(d.conv_in(post_quant_conv ? post_quant_conv(z) : z));
  s.add(x);
  x = x.to(t.store);
  int64_t core = px / factor;
  for (const auto& b : *d.up_blocks) x = t.block(*b->as<VaeBlock>(), x, s, core);
  auto image = t.run({x}, core, 1, 1, [&](const auto& in) { return d.conv_out(F::silu(s.apply(in[0], d.conv_norm_out))); },
                     nullptr);
  return image.to(z.device());
}

Posterior AutoencoderKLImpl::encode_tiled(const torch::Tensor& image, const TileOptions& o) {
  const int64_t px = tile_pixels(o);
  if (image.size(2) <= px && image.size(3) <= px) return encode(image);
  const Tiler t = tiler(image, o);
  auto& e = *encoder;
  GroupStats s(c_.norm_num_groups);
  auto x = t.run({image.to(t.store)}, px, 1, 1, [&](const auto& in) { return e.conv_in(in[0]); }, &s);
  int64_t core = px;
  for (const auto& b : *e.down_blocks) x = t.block(*b->as<VaeBlock>(), x, s, core);
  x = e.mid_block(x.to(t.device));  // latent resolution: whole
  return split_moments(quantized(e.conv_out(F::silu(e.conv_norm_out(x)))));
}

torch::ScalarType compute_dtype(AutoencoderKLImpl& vae) {
  for (const auto& l : vae.modules())
    if (auto* g = dynamic_cast<GroupNormImpl*>(l.get())) return g->weight.scalar_type();
  return vae.parameters().front().scalar_type();
}

}  // namespace bioesp::models
