// PyTorch checkpoints (torch.save zip archives: .ckpt, .pt, .bin) through the restricted
// unpickler; the zip container is read by LibTorch's own PyTorchStreamReader.
#pragma once

#include <functional>
#include <string>

#include "io/pickle.h"
#include "io/tensor.h"

namespace bioesp::io {

// A storage record's bytes (in memory or in the file), as a tensor with only nbytes and its data.
using StorageGetter = std::function<Tensor(const std::string& key)>;

// The largest data.pkl read (real ones are kilobytes to a few megabytes).
constexpr uint64_t kMaxPickleBytes = 64u << 20;

// Turns an unpickled checkpoint into tensors. A Lightning-style {"state_dict": {...}} is
// unwrapped; nested dicts of tensors flatten to dotted names; top-level scalars become metadata.
// Every view must lie inside its storage; contiguous views keep pointing at the storage's bytes,
// others are copied out, and what is copied out of one storage may not exceed its size (so a
// stride-0 view cannot turn a few bytes into gigabytes).
WeightSet tensors_from_pickle(const pickle::Result& r, const StorageGetter& storage,
                              const std::string& what);

bool has_zip_magic(const std::string& path);
WeightSet read_torch_zip(const std::string& path);

}  // namespace bioesp::io
