// The checkpoint walker's shape, stride and offset handling, fed directly: any bytes become
// tensors (dtype, storage, storage size, offset, shape, strides) over small storages. Every
// tensor either comes out with bytes inside what its storage holds or is refused with an Error.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "io/checkpoint.h"

namespace {

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t byte() { return n ? (--n, *p++) : 0; }
  // Mostly small values, sometimes the edges where products overflow.
  int64_t number() {
    switch (byte() % 8) {
      case 0: case 1: case 2: return byte() % 8;
      case 3: return byte();
      case 4: return int64_t{1} << (byte() % 63);
      case 5: return -static_cast<int64_t>(byte());
      case 6: return INT64_MAX - byte();
      default: {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return static_cast<int64_t>(v);
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bioesp::io;
  Bytes in{data, size};
  std::vector<std::vector<uint8_t>> storages(3);
  for (auto& s : storages) s.assign(in.byte() * 8u, 0x5a);
  pickle::Result r;
  pickle::Object root;
  root.kind = pickle::Kind::Dict;
  r.objects.push_back(root);
  for (int t = 0; t < 4 && in.n > 0; ++t) {
    pickle::Object st;
    st.kind = pickle::Kind::Storage;
    st.storage.dtype = static_cast<DType>(in.byte() % 10);
    st.storage.key = std::to_string(in.byte() % storages.size());
    st.storage.numel = in.number();
    if (st.storage.numel < 0) st.storage.numel = 0;  // the unpickler refuses negative sizes
    r.objects.push_back(st);
    pickle::Object tensor;
    tensor.kind = pickle::Kind::Tensor;
    tensor.tensor.storage = r.objects.size() - 1;
    tensor.tensor.offset = in.number();
    for (int d = in.byte() % 5; d > 0; --d) {
      tensor.tensor.shape.push_back(in.number());
      tensor.tensor.stride.push_back(in.number());
    }
    r.objects.push_back(tensor);
    pickle::Object key;
    key.kind = pickle::Kind::Str;
    key.s = "t" + std::to_string(t);
    r.objects.push_back(key);
    r.objects[0].entries.emplace_back(r.objects.size() - 1, r.objects.size() - 2);
  }
  auto get = [&](const std::string& key) {
    const auto& s = storages.at(std::stoul(key));
    Tensor b;
    b.dtype = DType::U8;
    b.data = s.data();
    b.nbytes = s.size();
    return b;
  };
  try {
    WeightSet set = tensors_from_pickle(r, get, "fuzz");
    for (const auto& t : set.tensors) {
      if (static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) != t.nbytes) __builtin_trap();
      std::vector<uint8_t> out(t.nbytes);
      read_bytes(t, out.data());
    }
  } catch (const bioesp::Error&) {
  }
  return 0;
}
