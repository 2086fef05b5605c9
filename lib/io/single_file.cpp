#include "io/single_file.h"

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/strings.h"

namespace bioesp::io {
namespace {

// Splits "12.rest" into 12 and "rest"; an index of more than six digits is no block's.
bool take_index(std::string& s, int* out) {
  size_t dot = s.find('.');
  if (dot == 0 || dot == std::string::npos || dot > 6) return false;
  int v = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  s.erase(0, dot + 1);
  return true;
}

// (original, diffusers) prefixes: a resnet's layers, and the UNet's layers outside its blocks.
constexpr std::pair<const char*, const char*> kUnetResnet[] = {
    {"in_layers.0.", "norm1."}, {"in_layers.2.", "conv1."}, {"out_layers.0.", "norm2."},
    {"out_layers.3.", "conv2."}, {"emb_layers.1.", "time_emb_proj."}, {"skip_connection.", "conv_shortcut."}};
constexpr std::pair<const char*, const char*> kUnetTop[] = {
    {"time_embed.0.", "time_embedding.linear_1."}, {"time_embed.2.", "time_embedding.linear_2."},
    {"label_emb.0.0.", "add_embedding.linear_1."}, {"label_emb.0.2.", "add_embedding.linear_2."},
    {"input_blocks.0.0.", "conv_in."}, {"out.0.", "conv_norm_out."}, {"out.2.", "conv_out."}};

// `rest` with its first prefix renamed from one side of `table` to the other; "" when none fits.
template <size_t N>
std::string rename(std::string rest, const std::pair<const char*, const char*> (&table)[N], bool to_diffusers) {
  for (const auto& [ldm, diffusers] : table)
    if (take_prefix(rest, to_diffusers ? ldm : diffusers)) return (to_diffusers ? diffusers : ldm) + rest;
  return "";
}

std::string unet_resnet(const std::string& rest) { return rename(rest, kUnetResnet, true); }

std::string map_unet(std::string k, int L) {
  std::string top = rename(k, kUnetTop, true);
  if (!top.empty()) return top;
  int i, j;
  if (take_prefix(k, "input_blocks.") && take_index(k, &i) && take_index(k, &j) && i > 0) {
    int block = (i - 1) / (L + 1), layer = (i - 1) % (L + 1);
    std::string b = "down_blocks." + std::to_string(block) + ".";
    if (j == 0 && take_prefix(k, "op.")) return b + "downsamplers.0.conv." + k;
    if (j == 0) {
      std::string r = unet_resnet(k);
      return r.empty() ? "" : b + "resnets." + std::to_string(layer) + "." + r;
    }
    if (j == 1) return b + "attentions." + std::to_string(layer) + "." + k;
    return "";
  }
  if (take_prefix(k, "middle_block.") && take_index(k, &j)) {
    if (j == 1) return "mid_block.attentions.0." + k;
    std::string r = unet_resnet(k);
    return r.empty() || j > 2 ? "" : "mid_block.resnets." + std::to_string(j / 2) + "." + r;
  }
  if (take_prefix(k, "output_blocks.") && take_index(k, &i) && take_index(k, &j)) {
    int block = i / (L + 1), layer = i % (L + 1);
    std::string b = "up_blocks." + std::to_string(block) + ".";
    if (j == 0) {
      std::string r = unet_resnet(k);
      return r.empty() ? "" : b + "resnets." + std::to_string(layer) + "." + r;
    }
    if (take_prefix(k, "conv.")) return b + "upsamplers.0.conv." + k;
    return b + "attentions." + std::to_string(layer) + "." + k;
  }
  return "";
}

std::string vae_resnet(std::string rest) {
  if (take_prefix(rest, "nin_shortcut.")) return "conv_shortcut." + rest;
  return rest;
}

std::string vae_attention(std::string rest) {
  static const std::pair<const char*, const char*> kRen[] = {
      {"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."}, {"v.", "to_v."},
      {"proj_out.", "to_out.0."}};
  for (const auto& [a, b] : kRen)
    if (take_prefix(rest, a)) return b + rest;
  return "";
}

// Returns the diffusers name; sets *squeeze for attention projections stored as 1x1 convs.
std::string map_vae(std::string k, int num_up, bool* squeeze) {
  for (const char* top : {"quant_conv.", "post_quant_conv."})
    if (starts_with(k, top)) return k;
  std::string side;
  if (take_prefix(k, "encoder.")) side = "encoder.";
  else if (take_prefix(k, "decoder.")) side = "decoder.";
  else return "";
  for (const char* same : {"conv_in.", "conv_out."})
    if (starts_with(k, same)) return side + k;
  if (take_prefix(k, "norm_out.")) return side + "conv_norm_out." + k;
  if (take_prefix(k, "mid.block_1.")) return side + "mid_block.resnets.0." + vae_resnet(k);
  if (take_prefix(k, "mid.block_2.")) return side + "mid_block.resnets.1." + vae_resnet(k);
  if (take_prefix(k, "mid.attn_1.")) {
    std::string a = vae_attention(k);
    *squeeze = !starts_with(a, "group_norm.");
    return a.empty() ? "" : side + "mid_block.attentions.0." + a;
  }
  int i, j;
  bool down = side == "encoder.";
  if (take_prefix(k, down ? "down." : "up.") && take_index(k, &i)) {
    int block = down ? i : num_up - 1 - i;
    if (block < 0) return "";
    std::string b = side + (down ? "down_blocks." : "up_blocks.") + std::to_string(block) + ".";
    if (take_prefix(k, "block.") && take_index(k, &j)) return b + "resnets." + std::to_string(j) + "." + vae_resnet(k);
    if (take_prefix(k, down ? "downsample.conv." : "upsample.conv."))
      return b + (down ? "downsamplers.0.conv." : "upsamplers.0.conv.") + k;
  }
  return "";
}

// A transformers CLIP text model's key, as single files keep it (with or without "text_model.").
std::vector<LdmTarget> map_clip(const std::string& k) {
  if (k.find("position_ids") != std::string::npos) return {};
  LdmTarget t;
  t.component = "text_encoder";
  t.name = starts_with(k, "text_model.") ? k : "text_model." + k;
  return {t};
}

// OpenCLIP's text tower as transformers' CLIP text model in `component`: SD 2.x's encoder has no
// projection (CLIPTextModel), SDXL's second keeps it (CLIPTextModelWithProjection).
std::vector<LdmTarget> map_open_clip(std::string k, const std::string& component, int max_layers, bool projection) {
  const std::string te = "text_model.";
  auto one = [&](std::string n) {
    LdmTarget t;
    t.component = component;
    t.name = std::move(n);
    return std::vector<LdmTarget>{t};
  };
  if (k == "text_projection") {
    if (!projection) return {};
    auto t = one("text_projection.weight");
    t[0].transpose = true;
    return t;
  }
  if (k == "positional_embedding") return one(te + "embeddings.position_embedding.weight");
  if (k == "token_embedding.weight") return one(te + "embeddings.token_embedding.weight");
  if (take_prefix(k, "ln_final.")) return one(te + "final_layer_norm." + k);
  int i;
  if (!(take_prefix(k, "transformer.resblocks.") && take_index(k, &i))) return {};
  if (max_layers >= 0 && i >= max_layers) return {};
  std::string l = te + "encoder.layers." + std::to_string(i) + ".";
  if (take_prefix(k, "ln_1.")) return one(l + "layer_norm1." + k);
  if (take_prefix(k, "ln_2.")) return one(l + "layer_norm2." + k);
  if (take_prefix(k, "mlp.c_fc.")) return one(l + "mlp.fc1." + k);
  if (take_prefix(k, "mlp.c_proj.")) return one(l + "mlp.fc2." + k);
  if (take_prefix(k, "attn.out_proj.")) return one(l + "self_attn.out_proj." + k);
  if (k == "attn.in_proj_weight" || k == "attn.in_proj_bias") {
    std::string leaf = k == "attn.in_proj_weight" ? "weight" : "bias";
    std::vector<LdmTarget> out;
    const char* proj[] = {"q_proj.", "k_proj.", "v_proj."};
    for (int c = 0; c < 3; ++c) {
      LdmTarget t;
      t.component = component;
      t.name = l + "self_attn." + proj[c] + leaf;
      t.chunk = c;
      out.push_back(t);
    }
    return out;
  }
  return {};
}

// A matrix [r, c] as [c, r], its bytes read and rearranged in memory.
Tensor transposed(const Tensor& t) {
  const size_t es = dtype_size(t.dtype), rows = static_cast<size_t>(t.shape[0]), cols = static_cast<size_t>(t.shape[1]);
  if (static_cast<size_t>(t.numel()) * es != t.nbytes) fail(BIOESP_ERR_INTERNAL, t.name + ": not a matrix to transpose");
  std::vector<uint8_t> src(t.nbytes);
  read_bytes(t, src.data());
  auto dst = std::make_shared<std::vector<uint8_t>>(t.nbytes);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) std::memcpy(dst->data() + (c * rows + r) * es, src.data() + (r * cols + c) * es, es);
  Tensor out = t;
  out.shape = {t.shape[1], t.shape[0]};
  out.file.reset();
  out.offset = 0;
  out.data = dst->data();
  out.owner = dst;
  return out;
}

int max_index_after(const WeightSet& set, const std::string& prefix) {
  int best = -1;
  for (const auto& t : set.tensors) {
    std::string k = t.name;
    int i;
    if (take_prefix(k, prefix) && take_index(k, &i)) best = std::max(best, i);
  }
  return best;
}

}  // namespace

bool looks_like_ldm(const WeightSet& set) {
  for (const auto& t : set.tensors)
    if (starts_with(t.name, "model.diffusion_model.") || starts_with(t.name, "first_stage_model.") ||
        starts_with(t.name, "cond_stage_model.") || starts_with(t.name, "conditioner.embedders."))
      return true;
  return false;
}

LdmLayout infer_ldm_layout(const WeightSet& set) {
  LdmLayout l;
  // The first downsampler sits at input_blocks.(L+1).0.op.
  for (const auto& t : set.tensors) {
    std::string k = t.name;
    int i, j;
    if (take_prefix(k, "model.diffusion_model.input_blocks.") && take_index(k, &i) &&
        take_index(k, &j) && j == 0 && starts_with(k, "op.") && (l.unet_layers_per_block < 0 || i - 1 < l.unet_layers_per_block))
      l.unet_layers_per_block = i - 1;
  }
  if (l.unet_layers_per_block < 0) l.unet_layers_per_block = 2;
  l.vae_num_up_blocks = max_index_after(set, "first_stage_model.decoder.up.") + 1;
  // diffusers' SD 2.x conversion drops OpenCLIP's last resblock (it uses the penultimate layer).
  int resblocks = max_index_after(set, "cond_stage_model.model.transformer.resblocks.") + 1;
  l.text_encoder_layers = resblocks > 0 ? resblocks - 1 : -1;
  return l;
}

std::vector<LdmTarget> map_ldm_key(const std::string& key, const LdmLayout& layout) {
  std::string k = key;
  LdmTarget t;
  if (take_prefix(k, "model.diffusion_model.")) {
    t.component = "unet";
    t.name = map_unet(k, layout.unet_layers_per_block < 0 ? 2 : layout.unet_layers_per_block);
  } else if (take_prefix(k, "first_stage_model.")) {
    t.component = "vae";
    t.name = map_vae(k, layout.vae_num_up_blocks < 0 ? 4 : layout.vae_num_up_blocks, &t.squeeze_1x1);
  } else if (take_prefix(k, "cond_stage_model.transformer.")) {
    return map_clip(k);
  } else if (take_prefix(k, "cond_stage_model.model.")) {
    return map_open_clip(k, "text_encoder", layout.text_encoder_layers, false);
  } else if (int i; take_prefix(k, "conditioner.embedders.") && take_index(k, &i)) {
    // SGM (SDXL): each embedder by its kind, so that the refiner's lone OpenCLIP (embedders.0)
    // is text_encoder_2 as in its diffusers folder.
    if (take_prefix(k, "transformer.")) return map_clip(k);
    if (take_prefix(k, "model.")) return map_open_clip(k, "text_encoder_2", layout.text_encoder_2_layers, true);
    return {};
  }
  if (t.name.empty()) return {};
  return {t};
}

bool looks_like_ldm_controlnet(const WeightSet& set) {
  for (const auto& t : set.tensors)
    if (starts_with(t.name, "control_model.") || starts_with(t.name, "input_hint_block.")) return true;
  return false;
}

std::string map_controlnet_key(const std::string& key, int L, int hint_last) {
  std::string k = key;
  int i;
  if (take_prefix(k, "zero_convs.") && take_index(k, &i) && take_prefix(k, "0."))
    return "controlnet_down_blocks." + std::to_string(i) + "." + k;
  if (take_prefix(k, "middle_block_out.0.")) return "controlnet_mid_block." + k;
  if (take_prefix(k, "input_hint_block.") && take_index(k, &i)) {
    // Convolutions at even indices (SiLUs between them): conv_in, the blocks, conv_out.
    if (i == 0) return "controlnet_cond_embedding.conv_in." + k;
    if (i == hint_last) return "controlnet_cond_embedding.conv_out." + k;
    if (i % 2 || i > hint_last) return "";
    return "controlnet_cond_embedding.blocks." + std::to_string(i / 2 - 1) + "." + k;
  }
  // The copied encoder keeps the UNet's names.
  for (const char* p : {"time_embed.", "input_blocks.", "middle_block."})
    if (starts_with(k, p)) return map_unet(k, L);
  return "";
}

WeightSet ldm_controlnet_to_diffusers(const WeightSet& set, std::vector<std::string>* ignored) {
  // diffusers takes control_model.* when the file has them, else every key.
  bool prefixed = false;
  for (const auto& t : set.tensors) prefixed = prefixed || starts_with(t.name, "control_model.");
  auto own = [&](const std::string& name) {
    std::string k = name;
    return !prefixed || take_prefix(k, "control_model.") ? k : std::string();
  };
  int layers = -1, hint_last = -1;
  for (const auto& t : set.tensors) {
    std::string k = own(t.name);
    int i, j;
    if (take_prefix(k, "input_hint_block.") && take_index(k, &i)) hint_last = std::max(hint_last, i);
    else if (take_prefix(k, "input_blocks.") && take_index(k, &i) && take_index(k, &j) && j == 0 &&
             starts_with(k, "op.") && (layers < 0 || i - 1 < layers))
      layers = i - 1;
  }
  if (hint_last < 0) fail(BIOESP_ERR_FORMAT, "not a ControlNet: no input_hint_block (the control image's encoder)");
  WeightSet out;
  out.format = set.format;
  out.metadata = set.metadata;
  std::set<std::string> seen;
  for (const auto& src : set.tensors) {
    const std::string k = own(src.name);
    const std::string name = k.empty() ? "" : map_controlnet_key(k, layers < 0 ? 2 : layers, hint_last);
    if (name.empty()) {
      if (ignored) ignored->push_back(src.name);
      continue;
    }
    if (!seen.insert(name).second)
      fail(BIOESP_ERR_FORMAT, "two tensors of the ControlNet map to " + name + " (the second is " + src.name + ")");
    Tensor t = src;
    t.component = "controlnet";
    t.name = name;
    out.tensors.push_back(std::move(t));
  }
  out.sort();
  return out;
}

WeightSet ldm_to_diffusers(const WeightSet& set, const LdmLayout& layout,
                           std::vector<std::string>* ignored) {
  WeightSet out;
  out.format = set.format;
  out.metadata = set.metadata;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& src : set.tensors) {
    auto targets = map_ldm_key(src.name, layout);
    if (targets.empty()) {
      if (ignored) ignored->push_back(src.name);
      continue;
    }
    for (const auto& tg : targets) {
      Tensor t = src;
      t.component = tg.component;
      t.name = tg.name;
      if (!seen.insert({t.component, t.name}).second)
        fail(BIOESP_ERR_FORMAT, "two tensors of the checkpoint map to " + t.component + "/" + t.name +
                                    " (the second is " + src.name + ")");
      if (tg.chunk >= 0) {
        if (t.shape.empty() || t.shape[0] % 3)
          fail(BIOESP_ERR_FORMAT, src.name + ": fused in_proj whose first dimension is not divisible by 3");
        const size_t third = src.nbytes / 3;
        t = byte_range(t, third * tg.chunk, third);
        t.shape[0] /= 3;
      }
      if (tg.squeeze_1x1 && t.shape.size() == 4 && t.shape[2] == 1 && t.shape[3] == 1) t.shape.resize(2);
      if (tg.transpose) {
        if (t.shape.size() != 2)
          fail(BIOESP_ERR_FORMAT, src.name + ": a projection of " + std::to_string(t.shape.size()) +
                                      " dimensions (a [hidden, projection] matrix was expected)");
        t = transposed(t);
      }
      out.tensors.push_back(std::move(t));
    }
  }
  out.sort();
  return out;
}

std::vector<std::pair<std::string, std::string>> ldm_unet_names(const std::vector<std::string>& names) {
  // What the names show of the layout: resnets per down block, the up blocks with attentions
  // (their upsampler comes after the attention: output_blocks.N.2.conv, else .1.conv).
  int L = 0;
  std::set<int> up_attention;
  for (const auto& n : names) {
    std::string k = n + ".";
    int b, l;
    if (take_prefix(k, "down_blocks.0.resnets.") && take_index(k, &l)) L = std::max(L, l + 1);
    k = n + ".";
    if (take_prefix(k, "up_blocks.") && take_index(k, &b) && starts_with(k, "attentions.")) up_attention.insert(b);
  }
  auto original = [&](std::string k) -> std::string {
    std::string top = rename(k, kUnetTop, false);
    if (!top.empty()) return top;
    auto resnet = [](const std::string& at, const std::string& rest) {
      std::string r = rename(rest, kUnetResnet, false);
      return r.empty() ? r : at + r;
    };
    const int per = L + 1;
    int b, l;
    if (take_prefix(k, "down_blocks.") && take_index(k, &b)) {
      if (take_prefix(k, "resnets.") && take_index(k, &l)) return resnet("input_blocks." + std::to_string(1 + b * per + l) + ".0.", k);
      if (take_prefix(k, "attentions.") && take_index(k, &l)) return "input_blocks." + std::to_string(1 + b * per + l) + ".1." + k;
      if (take_prefix(k, "downsamplers.0.conv.")) return "input_blocks." + std::to_string((b + 1) * per) + ".0.op." + k;
    } else if (take_prefix(k, "mid_block.")) {
      if (take_prefix(k, "attentions.0.")) return "middle_block.1." + k;
      if (take_prefix(k, "resnets.") && take_index(k, &l)) return resnet("middle_block." + std::to_string(2 * l) + ".", k);
    } else if (take_prefix(k, "up_blocks.") && take_index(k, &b)) {
      if (take_prefix(k, "resnets.") && take_index(k, &l)) return resnet("output_blocks." + std::to_string(b * per + l) + ".0.", k);
      if (take_prefix(k, "attentions.") && take_index(k, &l)) return "output_blocks." + std::to_string(b * per + l) + ".1." + k;
      if (take_prefix(k, "upsamplers.0.conv."))
        return "output_blocks." + std::to_string(b * per + L) + (up_attention.count(b) ? ".2.conv." : ".1.conv.") + k;
    }
    return "";
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& n : names) {
    std::string o = original(n + ".");  // every prefix ends in a dot, so a whole name does too
    if (!o.empty()) out.emplace_back(n, o.substr(0, o.size() - 1));
  }
  return out;
}

}  // namespace bioesp::io
