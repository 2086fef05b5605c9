// Any bytes: parse_safetensors either indexes tensors that lie inside the buffer or throws.
#include <cstdlib>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto set = bioesp::io::parse_safetensors(data, size, nullptr, "fuzz");
    for (const auto& t : set.tensors) {
      if (t.data < data || t.data + t.nbytes > data + size) std::abort();
      volatile uint8_t sink = t.nbytes ? t.data[t.nbytes - 1] : 0;
      (void)sink;
    }
  } catch (const bioesp::Error&) {
  }
  return 0;
}
