// The bioesp_weights handle, shared by the C entry points that create it.
#pragma once

#include "bioesp.h"
#include "io/weights.h"
#include "lora/detect.h"

struct bioesp_weights {
  bioesp::io::WeightSet set;
  bioesp::lora::Description lora;
};

namespace bioesp {
// Reads a caller's options struct (any size) into the loader's options.
io::OpenOptions open_options(const bioesp_weights_options* options);
}  // namespace bioesp
