// Opening any weight source: a safetensors file, a torch.save checkpoint, a sharded index, or a
// diffusers folder (a whole pipeline or one component).
#pragma once

#include <functional>
#include <string>

#include "io/single_file.h"
#include "io/tensor.h"

namespace bioesp::io {

using Logger = std::function<void(bioesp_log_level, const std::string&)>;

struct OpenOptions {
  std::string variant;     // "fp16": prefer name.fp16.safetensors in folders
  bool to_diffusers = false;
  std::string config_dir;  // diffusers folder describing a single file's architecture
  Logger log;
};

WeightSet open_weights(const std::string& path, const OpenOptions& options);

// The weights file a diffusers component folder uses: safetensors over .bin, the variant when
// asked and present, sharded indexes. Throws NOT_FOUND naming the folder when there is none.
std::string component_weights_file(const std::string& dir, const std::string& variant);

// Reads one component folder ("unet", "vae", ...) into `set` under `component`.
void read_component(const std::string& dir, const std::string& component, const OpenOptions& o,
                    WeightSet& set);

// Layout of a single file from a diffusers folder's configs.
LdmLayout layout_from_configs(const std::string& dir);

}  // namespace bioesp::io
