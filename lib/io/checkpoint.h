// PyTorch checkpoints (torch.save zip archives: .ckpt, .pt, .bin) through the restricted
// unpickler; the zip container is read by LibTorch's own PyTorchStreamReader.
#pragma once

#include <functional>
#include <string>

#include "io/pickle.h"
#include "io/tensor.h"

namespace bioesp::io {

struct StorageBytes {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;
};
using StorageGetter = std::function<StorageBytes(const std::string& key)>;

// Turns an unpickled checkpoint into tensors. A Lightning-style {"state_dict": {...}} is
// unwrapped; nested dicts of tensors flatten to dotted names; top-level scalars become metadata.
WeightSet tensors_from_pickle(const pickle::Result& r, const StorageGetter& storage,
                              const std::string& what);

bool has_zip_magic(const std::string& path);
WeightSet read_torch_zip(const std::string& path);

}  // namespace bioesp::io
