// Component configs inferred from tensor shapes, for single-file checkpoints that come without
// a diffusers folder: SD 1.x and 2.x UNets and ControlNets, VAEs and CLIP / OpenCLIP text encoders.
#pragma once

#include <string>

#include "io/tensor.h"

namespace bioesp::config {

// config.json text for `component` ("unet", "controlnet", "vae", "text_encoder") of a set already renamed to
// diffusers names; throws UNSUPPORTED naming what could not be recognised.
std::string infer_config(const io::WeightSet& set, const std::string& component);

}  // namespace bioesp::config
