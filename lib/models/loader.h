// Loading weights into models: a walk over the module's parameter names, strict by default,
// with every missing, unexpected and mismatched key reported in one error.
#pragma once

#include <torch/torch.h>

#include "io/tensor.h"

namespace bioesp::models {

// The tensor's values: a read-only view of bytes in memory (no copy; clone it before writing),
// or a tensor of its own read from the file.
torch::Tensor to_torch(const io::Tensor& t);
// A file tensor holding a contiguous CPU copy of `t` (for writers).
io::Tensor from_torch(const std::string& name, const torch::Tensor& t);

// "[a, b, c]", as errors show shapes.
std::string shape_text(at::IntArrayRef shape);

struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched;
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string describe(const std::string& what) const;
};

// Copies the tensors of `component` in `set` into `m`'s parameters and buffers, converting
// dtype and device. Keys that are not weights (position_ids) are skipped, and text-encoder keys
// written without transformers 4's "text_model." prefix are accepted. With `strict`, any
// mismatch throws BIOESP_ERR_MISMATCH naming every key; otherwise the report says what was left.
LoadReport load_state(torch::nn::Module& m, const io::WeightSet& set, const std::string& component,
                      const std::string& what, bool strict = true);

// Names and shapes a module expects, for comparing a folder with its configs.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(torch::nn::Module& m);

}  // namespace bioesp::models
