// The README.md model card a pushed LoRA or model carries: the Hub's YAML front matter, how to
// use it, how it was trained, and the credits of every training image.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bioesp::hub {

struct CardInput {
  std::string repo;                             // org/name being published
  std::string base_model;                       // a Hub id when known
  bool lora = true;                             // false: a full fine-tuned pipeline
  bool sdxl = false;                            // the base is Stable Diffusion XL
  std::map<std::string, std::string> metadata;  // the weights file's bioesp.* metadata
  std::vector<nlohmann::json> manifest;         // dataset manifest lines (title, author, license, …)
  std::vector<std::string> samples;             // repo paths of sample images
};

std::string model_card(const CardInput& in);
// The Hub license id for a base model: SD 1.x creativeml-openrail-m, SD 2.x / XL openrail++,
// "other" when unknown.
std::string base_license(const std::string& base_model);
// Whether a Hub id names an SDXL model (stable-diffusion-xl-…, …sdxl…).
bool names_sdxl(const std::string& base_model);

}  // namespace bioesp::hub
