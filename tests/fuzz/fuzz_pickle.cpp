// Any bytes as data.pkl: the unpickler and the tensor builder either succeed with views inside
// their storages or throw; nothing outside the allow-list is ever reached.
#include <vector>

#include "core/error.h"
#include "io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> storage(256, 7);
  try {
    auto r = bioesp::io::pickle::load(data, size, "fuzz");
    auto get = [](const std::string&) {
      bioesp::io::Tensor b;
      b.dtype = bioesp::io::DType::U8;
      b.data = storage.data();
      b.nbytes = storage.size();
      return b;
    };
    auto set = bioesp::io::tensors_from_pickle(r, get, "fuzz");
    for (const auto& t : set.tensors) {
      volatile uint8_t sink = t.nbytes ? t.data[t.nbytes - 1] : 0;
      (void)sink;
    }
  } catch (const bioesp::Error&) {
  }
  return 0;
}
