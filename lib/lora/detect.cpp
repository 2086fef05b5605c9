#include "lora/detect.h"

#include <algorithm>

#include "core/strings.h"

namespace bioesp::lora {
namespace {

struct Pattern {
  const char* down;  // suffix of the down (A) matrix
  const char* up;
  bioesp_lora_flavour flavour;
};
constexpr Pattern kPatterns[] = {
    {".lora.down.weight", ".lora.up.weight", BIOESP_LORA_DIFFUSERS},
    {".lora_A.weight", ".lora_B.weight", BIOESP_LORA_PEFT},
    {".lora_down.weight", ".lora_up.weight", BIOESP_LORA_KOHYA},
};

}  // namespace

Description describe(const io::WeightSet& set) {
  Description d;
  for (const auto& t : set.tensors) {
    for (const auto& p : kPatterns) {
      bool down = ends_with(t.name, p.down);
      if (!down && !ends_with(t.name, p.up)) continue;
      std::string module = t.name.substr(0, t.name.size() - std::string(down ? p.down : p.up).size());
      bioesp_lora_flavour f = p.flavour;
      const std::string legacy = "model.diffusion_model.";
      if (f == BIOESP_LORA_DIFFUSERS && module.rfind(legacy, 0) == 0) {
        f = BIOESP_LORA_LEGACY_CKPT;
        module.erase(0, legacy.size());  // leaves "unet.<module>"
      }
      if (f == BIOESP_LORA_PEFT && module.rfind("base_model.model.", 0) == 0) module.erase(0, 17);
      if (d.flavour == BIOESP_LORA_NONE) d.flavour = f;
      if (down && !t.shape.empty()) d.rank = std::max(d.rank, t.shape[0]);
      d.targets.push_back(module);
    }
  }
  std::sort(d.targets.begin(), d.targets.end());
  d.targets.erase(std::unique(d.targets.begin(), d.targets.end()), d.targets.end());
  return d;
}

}  // namespace bioesp::lora
