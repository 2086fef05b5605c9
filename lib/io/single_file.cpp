#include "io/single_file.h"

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

std::string unet_resnet(std::string rest) {
  static const std::pair<const char*, const char*> kRen[] = {
      {"in_layers.0.", "norm1."}, {"in_layers.2.", "conv1."}, {"out_layers.0.", "norm2."},
      {"out_layers.3.", "conv2."}, {"emb_layers.1.", "time_emb_proj."},
      {"skip_connection.", "conv_shortcut."}};
  for (const auto& [a, b] : kRen)
    if (take_prefix(rest, a)) return b + rest;
  return "";
}

std::string map_unet(std::string k, int L) {
  if (take_prefix(k, "time_embed.0.")) return "time_embedding.linear_1." + k;
  if (take_prefix(k, "time_embed.2.")) return "time_embedding.linear_2." + k;
  if (take_prefix(k, "label_emb.0.0.")) return "add_embedding.linear_1." + k;
  if (take_prefix(k, "label_emb.0.2.")) return "add_embedding.linear_2." + k;
  if (take_prefix(k, "input_blocks.0.0.")) return "conv_in." + k;
  if (take_prefix(k, "out.0.")) return "conv_norm_out." + k;
  if (take_prefix(k, "out.2.")) return "conv_out." + k;
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

std::vector<LdmTarget> map_open_clip(std::string k, int max_layers) {
  const std::string te = "text_model.";
  auto one = [](std::string n) {
    LdmTarget t;
    t.component = "text_encoder";
    t.name = std::move(n);
    return std::vector<LdmTarget>{t};
  };
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
      t.component = "text_encoder";
      t.name = l + "self_attn." + proj[c] + leaf;
      t.chunk = c;
      out.push_back(t);
    }
    return out;
  }
  return {};
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
        starts_with(t.name, "cond_stage_model."))
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
    if (k.find("position_ids") != std::string::npos) return {};
    t.component = "text_encoder";
    t.name = starts_with(k, "text_model.") ? k : "text_model." + k;
  } else if (take_prefix(k, "cond_stage_model.model.")) {
    return map_open_clip(k, layout.text_encoder_layers);
  }
  if (t.name.empty()) return {};
  return {t};
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
      out.tensors.push_back(std::move(t));
    }
  }
  out.sort();
  return out;
}

}  // namespace bioesp::io
