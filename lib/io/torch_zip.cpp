// The zip container of torch.save files, read by LibTorch's PyTorchStreamReader.
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/checkpoint.h"

namespace bioesp::io {

bool has_zip_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char m[4] = {};
  return in.read(m, 4) && std::memcmp(m, "PK\x03\x04", 4) == 0;
}

WeightSet read_torch_zip(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (!reader.hasRecord("data.pkl"))
      fail(BIOESP_ERR_FORMAT, path + ": zip archive has no data.pkl: not a torch.save checkpoint");
    auto [pkl, pkl_size] = reader.getRecord("data.pkl");
    auto result = pickle::load(static_cast<const uint8_t*>(pkl.get()), pkl_size, path);
    StorageGetter get = [&](const std::string& key) {
      std::string record = "data/" + key;
      if (!reader.hasRecord(record))
        fail(BIOESP_ERR_FORMAT, path + ": storage record " + record + " is missing");
      auto [ptr, size] = reader.getRecord(record);
      auto holder = std::make_shared<at::DataPtr>(std::move(ptr));
      StorageBytes b;
      b.data = static_cast<const uint8_t*>(holder->get());
      b.size = size;
      b.owner = holder;
      return b;
    };
    return tensors_from_pickle(result, get, path);
  } catch (const c10::Error& e) {
    fail(BIOESP_ERR_FORMAT, path + ": not a readable PyTorch zip checkpoint: " + e.what_without_backtrace());
  }
}

}  // namespace bioesp::io
