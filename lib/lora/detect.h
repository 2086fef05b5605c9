// Recognises LoRA files by their key layout: diffusers, PEFT, kohya/A1111, the workshop's
// legacy checkpoint. Targets are named as diffusers modules where the layout says so.
#pragma once

#include <string>
#include <vector>

#include "io/tensor.h"

namespace bioesp::lora {

struct Description {
  bioesp_lora_flavour flavour = BIOESP_LORA_NONE;
  int64_t rank = 0;
  std::vector<std::string> targets;  // sorted, unique
};

Description describe(const io::WeightSet& set);

}  // namespace bioesp::lora
