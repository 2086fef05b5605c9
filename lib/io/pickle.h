// A restricted unpickler for what torch.save writes: containers, numbers, strings and tensors.
// Globals outside a fixed allow-list are refused with a format error naming them; nothing is
// ever called or imported. Objects live in an arena and refer to each other by index, so
// hostile nesting or cycles cannot overflow the stack.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/tensor.h"

namespace bioesp::io::pickle {

enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Global, Storage, Tensor };

struct StorageRef {
  DType dtype = DType::F32;
  std::string key;   // the record name under data/
  int64_t numel = 0;
};

struct TensorRef {
  size_t storage = 0;  // index of a Storage object
  int64_t offset = 0;  // in elements
  std::vector<int64_t> shape, stride;
};

struct Object {
  Kind kind = Kind::None;
  int64_t i = 0;        // Bool, Int
  double f = 0;         // Float
  std::string s;        // Str, Bytes; Global as "module.name"
  std::vector<size_t> items;                          // List, Tuple
  std::vector<std::pair<size_t, size_t>> entries;     // Dict, in insertion order
  StorageRef storage;
  TensorRef tensor;
};

struct Result {
  std::vector<Object> objects;
  size_t root = 0;
};

// What one pickle may build: objects, and references to them (stack and memo slots, marks,
// container entries). torch.save's pickles hold tens of thousands of each per checkpoint; the
// limits keep a hostile one (a megabyte of MARK opcodes) within about a gigabyte.
constexpr size_t kMaxObjects = 2'000'000;
constexpr size_t kMaxReferences = 16'000'000;

// Throws a format error for malformed input, refused globals or a pickle beyond the limits;
// `what` names the source.
Result load(const uint8_t* data, size_t size, const std::string& what);

}  // namespace bioesp::io::pickle
