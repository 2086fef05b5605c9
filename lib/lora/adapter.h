// Attaching LoRA files to loaded models as runtime adapters, in any of the common layouts:
// diffusers, PEFT, kohya/A1111 and the workshop's legacy checkpoint. Every key of the file must
// land on a layer of the model; any that does not is an error that names it.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "io/tensor.h"

namespace bioesp::lora {

struct Pair {
  io::Tensor down, up;
  double alpha = 0;  // 0: the rank (no rescaling)
};

// Module (diffusers name) → matrices, per component ("unet", "text_encoder", ...). kohya's
// underscored names are resolved against `modules` (component → its module names).
using Parsed = std::map<std::string, std::map<std::string, Pair>>;
// kohya/A1111's key stem of a module: lora_unet_<module with _>, lora_te_…, lora_te2_….
std::string kohya_name(const std::string& component, const std::string& module);
Parsed parse(const io::WeightSet& set, const std::map<std::string, std::vector<std::string>>& modules);

// Attaches (or replaces) adapter `name` on `root`'s layers for one component.
void attach(torch::nn::Module& root, const std::map<std::string, Pair>& pairs, const std::string& name,
            double scale, torch::Device device, torch::ScalarType dtype, const std::string& what);
// Changes the user scale of adapter `name`; false if no layer carries it.
bool set_scale(torch::nn::Module& root, const std::string& name, double scale);
bool detach(torch::nn::Module& root, const std::string& name);

}  // namespace bioesp::lora
