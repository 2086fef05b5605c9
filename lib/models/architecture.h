// The tensors an architecture expects, from a diffusers folder's configs or a single file's
// (given or inferred) configs, without allocating any weights.
#pragma once

#include <string>

#include "io/weights.h"

namespace bioesp::models {

// Tensors with components, names and shapes but no data.
io::WeightSet expected_weights(const std::string& path, const io::OpenOptions& options);

}  // namespace bioesp::models
