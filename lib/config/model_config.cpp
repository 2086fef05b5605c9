#include "config/model_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace bioesp::config {
namespace {

using nlohmann::json;

json parse(const std::string& text, const std::string& what) {
  json j;
  try {
    j = json::parse(from_python_json(text));
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, what + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) fail(BIOESP_ERR_FORMAT, what + ": not a JSON object");
  return j;
}

// Reads typed values; a present null counts as absent, as in diffusers.
struct Reader {
  const json& j;
  const std::string& what;

  const json* get(const char* key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  [[noreturn]] void bad(const char* key, const char* want) const {
    fail(BIOESP_ERR_FORMAT, what + ": '" + key + "' must be " + want);
  }
  int integer(const char* key, int def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_number_integer() || v->get<int64_t>() < -(1 << 30) || v->get<int64_t>() > (1 << 30))
      bad(key, "an integer");
    return v->get<int>();
  }
  int bounded(const char* key, int def, int lo, int hi) const {
    int v = integer(key, def);
    if (v < lo || v > hi) bad(key, ("an integer from " + std::to_string(lo) + " to " + std::to_string(hi)).c_str());
    return v;
  }
  // A width: channels, a hidden size, a vocabulary.
  int positive(const char* key, int def) const { return bounded(key, def, 1, kMaxWidth); }
  int layers(const char* key, int def) const { return bounded(key, def, 1, kMaxLayers); }
  double number(const char* key, double def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_number() || !std::isfinite(v->get<double>())) bad(key, "a finite number");
    return v->get<double>();
  }
  // Epsilons and scales: finite and above zero.
  double positive_number(const char* key, double def) const {
    double v = number(key, def);
    if (!(v > 0)) bad(key, "a number above 0");
    return v;
  }
  bool boolean(const char* key, bool def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_boolean()) bad(key, "true or false");
    return v->get<bool>();
  }
  std::string string(const char* key, const std::string& def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_string()) bad(key, "a string");
    return v->get<std::string>();
  }
  std::vector<std::string> strings(const char* key, std::vector<std::string> def) const {
    const json* v = get(key);
    if (!v) return def;
    if (!v->is_array() || v->empty() || v->size() > kMaxBlocks)
      bad(key, ("a list of 1 to " + std::to_string(kMaxBlocks) + " strings").c_str());
    std::vector<std::string> out;
    for (const auto& e : *v) {
      if (!e.is_string()) bad(key, "a non-empty list of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  // An int from 1 to `hi` for every block, or one for all of them.
  std::vector<int> per_block(const char* key, int def, size_t blocks, int hi = kMaxWidth) const {
    const json* v = get(key);
    if (!v) return std::vector<int>(blocks, def);
    auto in_range = [&](const json& e) { return e.is_number_integer() && e.get<int64_t>() >= 1 && e.get<int64_t>() <= hi; };
    const std::string range = "from 1 to " + std::to_string(hi);
    if (v->is_number_integer()) {
      if (!in_range(*v)) bad(key, ("an integer " + range).c_str());
      return std::vector<int>(blocks, v->get<int>());
    }
    if (!v->is_array() || v->size() != blocks)
      fail(BIOESP_ERR_FORMAT, what + ": '" + key + "' must be an integer or a list of " +
                                  std::to_string(blocks) + " (one per block)");
    std::vector<int> out;
    for (const auto& e : *v) {
      if (!in_range(e)) bad(key, ("a list of integers " + range).c_str());
      out.push_back(e.get<int>());
    }
    return out;
  }
  // Keys that must keep their default for bioesp to build the model.
  void unsupported_unless(const char* key, const json& def) const {
    const json* v = get(key);
    if (v && *v != def)
      fail(BIOESP_ERR_UNSUPPORTED, what + ": '" + key + "' = " + v->dump() + " is not supported");
  }
  void must_be_null(const char* key) const {
    if (get(key)) fail(BIOESP_ERR_UNSUPPORTED, what + ": '" + key + "' = " + get(key)->dump() + " is not supported");
  }
};

}  // namespace

std::string from_python_json(const std::string& text) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (in_string) {
      out += ch;
      if (ch == '\\' && i + 1 < text.size()) out += text[++i];
      else if (ch == '"') in_string = false;
      continue;
    }
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      size_t n = std::char_traits<char>::length(word);
      if (text.compare(i, n, word) == 0) {
        out += "null";
        i += n - 1;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    if (ch == '"') in_string = true;
    out += ch;
  }
  return out;
}

CLIPTextConfig parse_clip_text(const std::string& text, const std::string& what) {
  json j = parse(text, what);
  Reader r{j, what};
  CLIPTextConfig c;
  c.vocab_size = r.positive("vocab_size", c.vocab_size);
  c.hidden_size = r.positive("hidden_size", c.hidden_size);
  c.intermediate_size = r.positive("intermediate_size", c.intermediate_size);
  c.projection_dim = r.positive("projection_dim", c.projection_dim);
  c.num_hidden_layers = r.layers("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = r.positive("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings = r.positive("max_position_embeddings", c.max_position_embeddings);
  c.hidden_act = r.string("hidden_act", c.hidden_act);
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    fail(BIOESP_ERR_UNSUPPORTED, what + ": hidden_act '" + c.hidden_act + "' is not supported");
  c.layer_norm_eps = r.positive_number("layer_norm_eps", c.layer_norm_eps);
  // Token ids index the embedding table.
  c.pad_token_id = r.bounded("pad_token_id", c.pad_token_id, 0, c.vocab_size - 1);
  c.bos_token_id = r.bounded("bos_token_id", c.bos_token_id, 0, c.vocab_size - 1);
  c.eos_token_id = r.bounded("eos_token_id", c.eos_token_id, 0, c.vocab_size - 1);
  if (c.hidden_size % c.num_attention_heads)
    fail(BIOESP_ERR_FORMAT, what + ": hidden_size is not divisible by num_attention_heads");
  auto archs = r.strings("architectures", {"CLIPTextModel"});
  c.with_projection = archs.front() == "CLIPTextModelWithProjection";
  return c;
}

namespace {

// What the UNet and the ControlNet share: the input, the time embedding, the down blocks, the
// mid block and their attention; `n` blocks of `down_block_types`.
void read_down_path(const Reader& r, UNetConfig& c) {
  const std::string& what = r.what;
  c.in_channels = r.positive("in_channels", c.in_channels);
  c.flip_sin_to_cos = r.boolean("flip_sin_to_cos", true);
  c.freq_shift = r.number("freq_shift", 0);
  if (c.freq_shift < 0 || c.freq_shift > 1) r.bad("freq_shift", "a number from 0 to 1");
  c.down_block_types = r.strings("down_block_types", {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                      "CrossAttnDownBlock2D", "DownBlock2D"});
  c.mid_block_type = r.string("mid_block_type", c.mid_block_type);
  size_t n = c.down_block_types.size();
  c.block_out_channels = r.per_block("block_out_channels", 0, n);
  if (!r.get("block_out_channels")) {
    if (n != 4) fail(BIOESP_ERR_FORMAT, what + ": 'block_out_channels' is needed for " + std::to_string(n) + " blocks");
    c.block_out_channels = {320, 640, 1280, 1280};
  }
  for (const auto& t : c.down_block_types)
    if (t != "CrossAttnDownBlock2D" && t != "DownBlock2D")
      fail(BIOESP_ERR_UNSUPPORTED, what + ": down block type '" + t + "' is not supported");
  if (c.mid_block_type != "UNetMidBlock2DCrossAttn")
    fail(BIOESP_ERR_UNSUPPORTED, what + ": mid_block_type '" + c.mid_block_type + "' is not supported");
  c.layers_per_block = r.per_block("layers_per_block", 2, n, kMaxLayers);
  c.transformer_layers_per_block = r.per_block("transformer_layers_per_block", 1, n, kMaxLayers);
  // diffusers' historical naming: attention_head_dim is the number of heads unless
  // num_attention_heads is given.
  if (r.get("num_attention_heads")) c.num_attention_heads = r.per_block("num_attention_heads", 8, n);
  else c.num_attention_heads = r.per_block("attention_head_dim", 8, n);
  c.cross_attention_dim = r.per_block("cross_attention_dim", 1280, n);
  if (const json* oca = r.get("only_cross_attention")) {
    if (oca->is_boolean()) c.only_cross_attention.assign(n, oca->get<bool>());
    else if (oca->is_array() && oca->size() == n)
      for (const auto& e : *oca) {
        if (!e.is_boolean()) r.bad("only_cross_attention", "a boolean or one per block");
        c.only_cross_attention.push_back(e.get<bool>());
      }
    else r.bad("only_cross_attention", "a boolean or one per block");
  } else {
    c.only_cross_attention.assign(n, false);
  }
  c.downsample_padding = r.bounded("downsample_padding", 1, 0, 64);
  c.mid_block_scale_factor = r.positive_number("mid_block_scale_factor", 1);
  c.norm_num_groups = r.positive("norm_num_groups", 32);
  c.norm_eps = r.positive_number("norm_eps", 1e-5);
  c.use_linear_projection = r.boolean("use_linear_projection", false);
  c.upcast_attention = r.boolean("upcast_attention", false);
  for (int ch : c.block_out_channels)
    if (ch % c.norm_num_groups) fail(BIOESP_ERR_FORMAT, what + ": block_out_channels must divide into norm_num_groups");
  for (size_t i = 0; i < n; ++i)
    if (c.block_out_channels[i] % c.num_attention_heads[i])
      fail(BIOESP_ERR_FORMAT, what + ": block " + std::to_string(i) + "'s channels are not divisible by its heads");
  r.unsupported_unless("act_fn", "silu");
  r.unsupported_unless("resnet_time_scale_shift", "default");
  for (const char* k : {"class_embed_type", "num_class_embeds", "encoder_hid_dim", "encoder_hid_dim_type"})
    r.must_be_null(k);
}

}  // namespace

UNetConfig parse_unet(const std::string& text, const std::string& what) {
  json j = parse(text, what);
  Reader r{j, what};
  UNetConfig c;
  read_down_path(r, c);
  const size_t n = c.down_block_types.size();
  c.sample_size = r.positive("sample_size", c.sample_size);
  c.out_channels = r.positive("out_channels", c.out_channels);
  c.center_input_sample = r.boolean("center_input_sample", false);
  c.up_block_types = r.strings("up_block_types", {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                                  "CrossAttnUpBlock2D"});
  if (c.up_block_types.size() != n)
    fail(BIOESP_ERR_FORMAT, what + ": down_block_types and up_block_types differ in length");
  for (const auto& t : c.up_block_types)
    if (t != "CrossAttnUpBlock2D" && t != "UpBlock2D")
      fail(BIOESP_ERR_UNSUPPORTED, what + ": up block type '" + t + "' is not supported");
  if (const json* rev = r.get("reverse_transformer_layers_per_block")) {
    // A list per up block of per-layer counts; bioesp takes one count per block.
    if (!rev->is_array() || rev->size() != n) r.bad("reverse_transformer_layers_per_block", "a list per up block");
    for (const auto& b : *rev) {
      int v = b.is_array() && !b.empty() && b[0].is_number_integer() ? b[0].get<int>()
              : b.is_number_integer() ? b.get<int>() : 0;
      if (v <= 0 || v > kMaxLayers) r.bad("reverse_transformer_layers_per_block", "integers from 1 to 256");
      c.reverse_transformer_layers_per_block.push_back(v);
    }
  }
  c.addition_embed_type = r.string("addition_embed_type", "");
  if (!c.addition_embed_type.empty() && c.addition_embed_type != "text_time")
    fail(BIOESP_ERR_UNSUPPORTED, what + ": addition_embed_type '" + c.addition_embed_type + "' is not supported");
  if (c.addition_embed_type == "text_time") {
    c.addition_time_embed_dim = r.positive("addition_time_embed_dim", 256);
    c.projection_class_embeddings_input_dim = r.positive("projection_class_embeddings_input_dim", 2816);
  }
  c.time_cond_proj_dim = r.get("time_cond_proj_dim") ? r.positive("time_cond_proj_dim", 0) : 0;
  r.unsupported_unless("time_embedding_type", "positional");
  r.unsupported_unless("attention_type", "default");
  r.unsupported_unless("conv_in_kernel", 3);
  r.unsupported_unless("conv_out_kernel", 3);
  r.unsupported_unless("dual_cross_attention", false);
  r.unsupported_unless("resnet_skip_time_act", false);
  r.unsupported_unless("resnet_out_scale_factor", 1.0);
  r.unsupported_unless("class_embeddings_concat", false);
  for (const char* k : {"time_embedding_dim", "time_embedding_act_fn", "timestep_post_act",
                        "cross_attention_norm", "mid_block_only_cross_attention"})
    r.must_be_null(k);
  return c;
}

ControlNetConfig parse_controlnet(const std::string& text, const std::string& what) {
  json j = parse(text, what);
  Reader r{j, what};
  ControlNetConfig c;
  read_down_path(r, c.unet);
  c.unet.up_block_types.clear();
  c.conditioning_channels = r.positive("conditioning_channels", c.conditioning_channels);
  if (r.get("conditioning_embedding_out_channels")) {
    const size_t n = r.get("conditioning_embedding_out_channels")->is_array()
                         ? r.get("conditioning_embedding_out_channels")->size() : 0;
    if (n < 1 || n > kMaxBlocks) r.bad("conditioning_embedding_out_channels", "a list of 1 to 16 widths");
    c.conditioning_embedding_out_channels = r.per_block("conditioning_embedding_out_channels", 0, n);
  }
  const std::string order = r.string("controlnet_conditioning_channel_order", "rgb");
  if (order != "rgb" && order != "bgr") r.bad("controlnet_conditioning_channel_order", "\"rgb\" or \"bgr\"");
  c.bgr = order == "bgr";
  c.global_pool_conditions = r.boolean("global_pool_conditions", false);
  // SDXL's ControlNets add text and time embeddings; bioesp's are for SD 1.x and 2.x.
  r.must_be_null("addition_embed_type");
  return c;
}

VAEConfig parse_vae(const std::string& text, const std::string& what) {
  json j = parse(text, what);
  Reader r{j, what};
  VAEConfig c;
  c.in_channels = r.positive("in_channels", 3);
  c.out_channels = r.positive("out_channels", 3);
  c.latent_channels = r.positive("latent_channels", 4);
  c.down_block_types = r.strings("down_block_types", c.down_block_types);
  c.up_block_types = r.strings("up_block_types", c.up_block_types);
  size_t n = c.down_block_types.size();
  if (c.up_block_types.size() != n)
    fail(BIOESP_ERR_FORMAT, what + ": down_block_types and up_block_types differ in length");
  for (const auto& t : c.down_block_types)
    if (t != "DownEncoderBlock2D") fail(BIOESP_ERR_UNSUPPORTED, what + ": down block type '" + t + "' is not supported");
  for (const auto& t : c.up_block_types)
    if (t != "UpDecoderBlock2D") fail(BIOESP_ERR_UNSUPPORTED, what + ": up block type '" + t + "' is not supported");
  if (r.get("block_out_channels")) c.block_out_channels = r.per_block("block_out_channels", 64, n);
  else if (n != 1) fail(BIOESP_ERR_FORMAT, what + ": 'block_out_channels' is needed for " + std::to_string(n) + " blocks");
  c.layers_per_block = r.layers("layers_per_block", 1);
  c.norm_num_groups = r.positive("norm_num_groups", 32);
  c.sample_size = r.positive("sample_size", 32);
  c.scaling_factor = r.positive_number("scaling_factor", 0.18215);
  // SD 3 and FLUX shift their latents (diffusers subtracts it before scaling); SD 1.x and 2.x do not.
  r.unsupported_unless("shift_factor", 0.0);
  c.force_upcast = r.boolean("force_upcast", true);
  c.use_quant_conv = r.boolean("use_quant_conv", true);
  c.use_post_quant_conv = r.boolean("use_post_quant_conv", true);
  c.mid_block_add_attention = r.boolean("mid_block_add_attention", true);
  for (int ch : c.block_out_channels)
    if (ch % c.norm_num_groups) fail(BIOESP_ERR_FORMAT, what + ": block_out_channels must divide into norm_num_groups");
  r.unsupported_unless("act_fn", "silu");
  r.must_be_null("latents_mean");
  r.must_be_null("latents_std");
  return c;
}

int TinyVAEConfig::latent_factor() const {
  int f = 1;
  for (size_t i = 1; i < num_decoder_blocks.size(); ++i) f *= upsampling_scaling_factor;
  return f;
}

TinyVAEConfig parse_tiny_vae(const std::string& text, const std::string& what) {
  json j = parse(text, what);
  Reader r{j, what};
  TinyVAEConfig c;
  c.in_channels = r.positive("in_channels", c.in_channels);
  c.out_channels = r.positive("out_channels", c.out_channels);
  c.latent_channels = r.positive("latent_channels", c.latent_channels);
  auto list = [&](const char* key, const std::vector<int>& def) {
    const json* v = r.get(key);
    if (!v) return def;
    return r.per_block(key, 0, v->is_array() ? v->size() : def.size());
  };
  c.encoder_block_out_channels = list("encoder_block_out_channels", c.encoder_block_out_channels);
  c.decoder_block_out_channels = list("decoder_block_out_channels", c.decoder_block_out_channels);
  c.num_encoder_blocks = list("num_encoder_blocks", c.num_encoder_blocks);
  c.num_decoder_blocks = list("num_decoder_blocks", c.num_decoder_blocks);
  if (c.encoder_block_out_channels.size() != c.num_encoder_blocks.size())
    fail(BIOESP_ERR_FORMAT, what + ": encoder_block_out_channels and num_encoder_blocks differ in length");
  if (c.decoder_block_out_channels.size() != c.num_decoder_blocks.size())
    fail(BIOESP_ERR_FORMAT, what + ": decoder_block_out_channels and num_decoder_blocks differ in length");
  c.upsampling_scaling_factor = r.positive("upsampling_scaling_factor", c.upsampling_scaling_factor);
  c.scaling_factor = r.number("scaling_factor", c.scaling_factor);
  if (!(c.scaling_factor > 0)) r.bad("scaling_factor", "positive");
  r.unsupported_unless("act_fn", "relu");
  r.unsupported_unless("upsample_fn", "nearest");
  return c;
}

}  // namespace bioesp::config
