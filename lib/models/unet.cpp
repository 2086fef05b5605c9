#include "models/unet.h"

#include <ATen/record_function.h>

#include <cmath>

#include "core/error.h"
#include "models/token_merge.h"

namespace bioesp::models {

namespace F = torch::nn::functional;

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in, int64_t out, int64_t cond) {
  linear_1 = register_module("linear_1", Linear(in, out));
  linear_2 = register_module("linear_2", Linear(out, out));
  if (cond > 0) cond_proj = register_module("cond_proj", Linear(cond, in, false));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x, const torch::Tensor& condition) {
  auto h = condition.defined() && cond_proj ? x + cond_proj(condition.to(x.scalar_type())) : x;
  return linear_2(F::silu(linear_1(h)));
}

torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim, bool flip_sin_to_cos, double freq_shift) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  auto exponent = -std::log(10000.0) * torch::arange(0, half, opts) / (static_cast<double>(half) - freq_shift);
  auto emb = t.to(torch::kFloat32).unsqueeze(1) * exponent.exp().unsqueeze(0);
  emb = torch::cat({emb.sin(), emb.cos()}, -1);
  if (flip_sin_to_cos) emb = torch::cat({emb.slice(1, half), emb.slice(1, 0, half)}, -1);
  if (dim % 2) emb = F::pad(emb, F::PadFuncOptions({0, 1}));
  return emb;
}

void set_shared(BlockOptions& b, const config::UNetConfig& c, size_t i, bool cross) {
  b.temb_channels = c.time_embedding_dim();
  b.cross_attention = cross;
  b.groups = c.norm_num_groups;
  b.eps = c.norm_eps;
  b.transformer.heads = c.num_attention_heads[i];
  b.transformer.cross_attention_dim = c.cross_attention_dim[i];
  b.transformer.use_linear_projection = c.use_linear_projection;
  b.transformer.only_cross_attention = c.only_cross_attention[i];
  b.transformer.upcast_attention = c.upcast_attention;
  b.transformer.layers = c.transformer_layers_per_block[i];
}

torch::nn::ModuleList make_down_blocks(const config::UNetConfig& c) {
  const auto& ch = c.block_out_channels;
  torch::nn::ModuleList blocks;
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    DownBlockOptions b;
    set_shared(b, c, i, c.down_block_types[i] == "CrossAttnDownBlock2D");
    b.in_channels = out;
    out = ch[i];
    b.out_channels = out;
    b.resnets = c.layers_per_block[i];
    b.downsample = i + 1 < ch.size();
    b.downsample_padding = c.downsample_padding;
    blocks->push_back(DownBlock(b));
  }
  return blocks;
}

MidBlock make_mid_block(const config::UNetConfig& c) {
  MidBlockOptions mid;
  set_shared(mid, c, c.block_out_channels.size() - 1, true);
  mid.channels = c.block_out_channels.back();
  mid.attention_layers = 1;
  mid.output_scale_factor = c.mid_block_scale_factor;
  return MidBlock(mid);
}

torch::Tensor embed_time(TimestepEmbedding& embedding, const config::UNetConfig& c, const torch::Tensor& timestep,
                         const torch::Tensor& sample, const torch::Tensor& condition) {
  auto t = timestep.to(sample.device());
  if (t.dim() == 0) t = t.reshape({1});
  t = t.expand({sample.size(0)});
  return embedding(timestep_embedding(t, c.block_out_channels[0], c.flip_sin_to_cos, c.freq_shift).to(sample.scalar_type()),
                   condition);
}

torch::Tensor run_down_blocks(const torch::nn::ModuleListImpl& blocks, torch::Tensor x, const torch::Tensor& emb,
                              const torch::Tensor& context, std::vector<torch::Tensor>& skips, size_t kept) {
  for (size_t n = 0; n < blocks.size(); ++n) {
    RECORD_USER_SCOPE("down_blocks." + std::to_string(n));  // a range for bench --profile
    auto* block = blocks[n]->as<DownBlock>();
    for (size_t i = 0; i < block->size() && skips.size() < kept; ++i) {
      x = block->layer(i, x, emb, context);
      skips.push_back(x);
    }
  }
  return x;
}

torch::Tensor guidance_embedding(const torch::Tensor& w, int64_t dim) {
  const int64_t half = dim / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(w.device());
  auto step = torch::log(torch::tensor(10000.0f, f32)) / static_cast<double>(half - 1);
  auto freqs = torch::exp(torch::arange(half, f32) * -step);
  auto emb = (w.to(torch::kFloat32) * 1000.0).unsqueeze(1) * freqs.unsqueeze(0);
  emb = torch::cat({emb.sin(), emb.cos()}, 1);
  if (dim % 2) emb = F::pad(emb, F::PadFuncOptions({0, 1}));
  return emb;
}

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const config::UNetConfig& c) : c_(c) {
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  const int64_t temb = c.time_embedding_dim();
  conv_in = register_module("conv_in", Conv2d(c.in_channels, ch[0], 3, 1, 1));
  time_embedding = register_module("time_embedding", TimestepEmbedding(ch[0], temb, c.time_cond_proj_dim));
  if (c.addition_embed_type == "text_time")
    add_embedding = register_module("add_embedding", TimestepEmbedding(c.projection_class_embeddings_input_dim, temb));
  down_blocks = register_module("down_blocks", make_down_blocks(c));
  mid_block = register_module("mid_block", make_mid_block(c));

  int64_t out = ch[n - 1];
  for (size_t i = 0; i < n; ++i) {
    size_t r = n - 1 - i;  // the matching down block
    UpBlockOptions b;
    set_shared(b, c, r, c.up_block_types[i] == "CrossAttnUpBlock2D");
    if (!c.reverse_transformer_layers_per_block.empty())
      b.transformer.layers = c.reverse_transformer_layers_per_block[i];
    b.prev_output_channels = out;
    out = ch[r];
    b.out_channels = out;
    b.last_skip_channels = ch[r == 0 ? 0 : r - 1];
    b.resnets = c.layers_per_block[r] + 1;
    b.upsample = i + 1 < n;
    up_blocks->push_back(UpBlock(b));
  }
  register_module("up_blocks", up_blocks);

  conv_norm_out = register_module(
      "conv_norm_out", GroupNorm(c.norm_num_groups, ch[0], c.norm_eps));
  conv_out = register_module("conv_out", Conv2d(ch[0], c.out_channels, 3, 1, 1));
}

torch::Tensor UNet2DConditionModelImpl::time_features(const torch::Tensor& sample, const torch::Tensor& timestep,
                                                      const UNetExtra& extra) {
  auto emb = embed_time(time_embedding, c_, timestep, sample, extra.timestep_cond);
  if (add_embedding) {
    if (!extra.text_embeds.defined() || !extra.time_ids.defined())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "this UNet (addition_embed_type text_time) needs text_embeds and time_ids");
    auto time = timestep_embedding(extra.time_ids.flatten(), c_.addition_time_embed_dim, c_.flip_sin_to_cos,
                                   c_.freq_shift)
                    .reshape({sample.size(0), -1});
    emb = emb + add_embedding(torch::cat({extra.text_embeds, time}, -1).to(emb.scalar_type()));
  }
  return emb;
}

int64_t UNet2DConditionModelImpl::skip_count() const {
  int64_t n = 1;
  for (const auto& b : *down_blocks) n += static_cast<int64_t>(b->as<DownBlock>()->size());
  return n;
}

bool UNet2DConditionModelImpl::add_residuals(const UNetExtra& extra, std::vector<torch::Tensor>& skips) const {
  const auto& residuals = extra.down_block_additional_residuals;
  if (residuals.empty()) return false;
  if (static_cast<int64_t>(residuals.size()) != skip_count() || !extra.mid_block_additional_residual.defined())
    fail(BIOESP_ERR_MISMATCH, "a ControlNet gives " + std::to_string(residuals.size()) + " down residuals but this UNet makes " +
                                  std::to_string(skip_count()) + " (and a mid residual)");
  // A step reusing the cache made only the shallow skips; they take their residuals all the same.
  for (size_t i = 0; i < skips.size(); ++i) skips[i] = skips[i] + residuals[i];
  return true;
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timestep,
                                                const torch::Tensor& context, const UNetExtra& extra, StepCache* cache) {
  if (cache && (cache->branch < 0 || cache->branch >= skip_count()))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "the step cache's branch must be between 0 and " + std::to_string(skip_count() - 1) +
                                          " for this UNet (got " + std::to_string(cache->branch) + ")");
  const bool reuse = cache && cache->reuse && cache->feature.defined();
  token_merge_new_pass();
  // A reusing step makes skips 0 … branch; the up layers that would join the others are left out.
  const size_t kept = reuse ? static_cast<size_t>(cache->branch + 1) : static_cast<size_t>(skip_count());
  auto emb = time_features(sample, timestep, extra);
  auto x = conv_in(c_.center_input_sample ? 2 * sample - 1.0 : sample);
  std::vector<torch::Tensor> skips{x};
  x = run_down_blocks(*down_blocks, x, emb, context, skips, kept);
  const bool controlled = add_residuals(extra, skips);
  if (reuse) {
    x = cache->feature;  // made with an earlier step's mid residual
  } else {
    RECORD_USER_SCOPE("mid_block");
    x = controlled ? mid_block(x, emb, context) + extra.mid_block_additional_residual : mid_block(x, emb, context);
  }
  size_t remaining = static_cast<size_t>(skip_count());  // up layers still to come, one per skip
  for (size_t n = 0; n < up_blocks->size(); ++n) {
    RECORD_USER_SCOPE("up_blocks." + std::to_string(n));
    auto* block = up_blocks[n]->as<UpBlock>();
    bool ran = false;
    for (size_t i = 0; i < block->size(); ++i, --remaining) {
      if (remaining > skips.size()) continue;  // joins a skip this step did not make
      if (cache && !reuse && skips.size() == static_cast<size_t>(cache->branch + 1)) cache->feature = x;
      x = block->layer(i, x, emb, context, skips);
      ran = true;
    }
    if (ran) x = block->upsample(x, skips);
  }
  return conv_out(F::silu(conv_norm_out(x)));
}

}  // namespace bioesp::models
