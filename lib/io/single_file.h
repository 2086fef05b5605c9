// Original single-file checkpoints (CompVis/LDM layout: model.diffusion_model.*,
// first_stage_model.*, cond_stage_model.*) renamed to diffusers components and names.
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
};

// One destination of a source tensor.
struct LdmTarget {
  std::string component, name;
  int chunk = -1;          // >= 0: this third of dim 0 (OpenCLIP's fused in_proj)
  bool squeeze_1x1 = false;  // [C, C, 1, 1] conv → [C, C] linear (VAE attention)
};

bool looks_like_ldm(const WeightSet& set);
LdmLayout infer_ldm_layout(const WeightSet& set);
// Destinations of one key; empty for keys that are not weights (EMA, schedule buffers, ...).
std::vector<LdmTarget> map_ldm_key(const std::string& key, const LdmLayout& layout);
// Renames a whole set; `ignored` receives the keys that map nowhere.
WeightSet ldm_to_diffusers(const WeightSet& set, const LdmLayout& layout,
                           std::vector<std::string>* ignored);

}  // namespace bioesp::io
