// Tensors as weight files hold them, before any LibTorch is involved: a name, a dtype, a shape
// and contiguous bytes, either in memory kept alive by an owner or left in their file and read
// when needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bioesp.h"
#include "io/file.h"

namespace bioesp::io {

enum class DType : int {
  F32 = BIOESP_DTYPE_F32, F16 = BIOESP_DTYPE_F16, BF16 = BIOESP_DTYPE_BF16,
  F64 = BIOESP_DTYPE_F64, I64 = BIOESP_DTYPE_I64, I32 = BIOESP_DTYPE_I32,
  I16 = BIOESP_DTYPE_I16, I8 = BIOESP_DTYPE_I8, U8 = BIOESP_DTYPE_U8, Bool = BIOESP_DTYPE_BOOL
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);             // safetensors spelling: "F32", "BF16", ...
bool dtype_from_name(const std::string& s, DType* out);
bool dtype_is_float(DType t);

struct Tensor {
  std::string name;
  std::string component;  // "" for plain files; "unet", "vae", ... for pipelines
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Contiguous, row-major, little-endian bytes: in memory at `data`, or in `file` at `offset`.
  const uint8_t* data = nullptr;
  std::shared_ptr<const void> owner;
  std::shared_ptr<const ReadFile> file;
  uint64_t offset = 0;
  size_t nbytes = 0;

  int64_t numel() const;
  bool has_data() const { return data || file; }
};

// n bytes from `begin` of a tensor's bytes, as a tensor of the same name and dtype (shape is the
// caller's to set).
Tensor byte_range(const Tensor& t, size_t begin, size_t n);
// Copies the tensor's nbytes bytes to dst, from memory or from its file.
void read_bytes(const Tensor& t, void* dst);
// Copies its elements to dst converted to `to` (float ↔ float, or identical dtypes).
void read_elements(const Tensor& t, DType to, void* dst);

// Checked product of dimensions; throws a format error on negative dims or overflow.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what);
// a × b, or a format error naming `what` when it overflows (both non-negative).
int64_t checked_mul(int64_t a, int64_t b, const std::string& what);

// Converts `n` elements between dtypes (float ↔ float, or identical dtypes).
void convert_elements(const uint8_t* src, DType from, void* dst, DType to, size_t n);

// A set of tensors with metadata, as read from one source.
struct WeightSet {
  bioesp_weights_format format = BIOESP_FORMAT_SAFETENSORS;
  std::vector<Tensor> tensors;                   // sorted by (component, name)
  std::vector<std::pair<std::string, std::string>> metadata;

  void sort();
  // nullptr when absent. component "" matches any component.
  const Tensor* find(const std::string& component, const std::string& name) const;
};

}  // namespace bioesp::io
