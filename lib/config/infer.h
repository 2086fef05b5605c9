// Component configs inferred from tensor shapes, for single-file checkpoints that come without
// a diffusers folder: SD 1.x, 2.x and XL UNets, SD 1.x and 2.x ControlNets, VAEs, and CLIP and OpenCLIP
// text encoders (SDXL's second with its projection).
#pragma once

#include <string>

#include "io/tensor.h"

namespace bioesp::config {

// config.json text for `component` ("unet", "controlnet", "vae", "text_encoder", "text_encoder_2") of a set renamed to
// diffusers names; throws UNSUPPORTED naming what could not be recognised.
std::string infer_config(const io::WeightSet& set, const std::string& component);

}  // namespace bioesp::config
