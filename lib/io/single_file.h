// Original single-file checkpoints renamed to diffusers components and names: CompVis/LDM's
// (SD 1.x, 2.x: model.diffusion_model.*, first_stage_model.*, cond_stage_model.*) and SGM's
// (SDXL: the same with conditioner.embedders.N.transformer.* for CLIP and
// conditioner.embedders.N.model.* for OpenCLIP).
#pragma once

#include <string>
#include <vector>

#include "io/tensor.h"

namespace bioesp::io {

// What the renaming needs to know of the architecture; -1 = infer from the keys.
struct LdmLayout {
  int unet_layers_per_block = -1;
  int vae_num_up_blocks = -1;
  int text_encoder_layers = -1;  // OpenCLIP: diffusers keeps this many resblocks (SD 2.x: 23)
  int text_encoder_2_layers = -1;  // SDXL's OpenCLIP: all of them unless a config says otherwise
};

// One destination of a source tensor.
struct LdmTarget {
  std::string component, name;
  int chunk = -1;          // >= 0: this third of dim 0 (OpenCLIP's fused in_proj)
  bool squeeze_1x1 = false;  // [C, C, 1, 1] conv → [C, C] linear (VAE attention)
  bool transpose = false;    // OpenCLIP's text_projection, used as x @ P: the Linear weight is Pᵀ
};

bool looks_like_ldm(const WeightSet& set);
LdmLayout infer_ldm_layout(const WeightSet& set);
// Destinations of one key; empty for keys that are not weights (EMA, schedule buffers, ...).
std::vector<LdmTarget> map_ldm_key(const std::string& key, const LdmLayout& layout);
// Renames a whole set; `ignored` receives the keys that map nowhere.
WeightSet ldm_to_diffusers(const WeightSet& set, const LdmLayout& layout,
                           std::vector<std::string>* ignored);

// The original names of a diffusers UNet's modules or tensors (the inverse of the renaming
// above), as kohya's SDXL LoRAs name their layers (lora_unet_input_blocks_4_1_proj_in, ...).
// Names with no original (containers such as "down_blocks") are left out.
std::vector<std::pair<std::string, std::string>> ldm_unet_names(const std::vector<std::string>& diffusers_names);

// Original ControlNet files as published for SD 1.5 (lllyasviel's: control_model.*, alone or
// beside the base model's keys; the SD 2.1 ones without the prefix): time_embed, input_blocks,
// middle_block, zero_convs, middle_block_out, input_hint_block.
bool looks_like_ldm_controlnet(const WeightSet& set);
// The diffusers ControlNetModel name of one key (control_model. already taken off), as diffusers'
// convert_controlnet_checkpoint renames it; "" for keys that are not the ControlNet's. The first
// downsampler sits at input_blocks.(layers_per_block + 1); `hint_last` is input_hint_block's
// last index (its output conv).
std::string map_controlnet_key(const std::string& key, int layers_per_block, int hint_last);
// The ControlNet's tensors of an original file, renamed, in component "controlnet"; `ignored`
// receives the keys left out (the base model's, EMA copies).
WeightSet ldm_controlnet_to_diffusers(const WeightSet& set, std::vector<std::string>* ignored);

}  // namespace bioesp::io
