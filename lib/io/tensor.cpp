#include "io/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace bioesp::io {
namespace {

struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
  bool is_float;
};
constexpr DTypeInfo kTypes[] = {
    {DType::F32, "F32", 4, true},  {DType::F16, "F16", 2, true},   {DType::BF16, "BF16", 2, true},
    {DType::F64, "F64", 8, true},  {DType::I64, "I64", 8, false},  {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false}, {DType::I8, "I8", 1, false},    {DType::U8, "U8", 1, false},
    {DType::Bool, "BOOL", 1, false},
};

const DTypeInfo& info(DType t) {
  for (const auto& i : kTypes)
    if (i.type == t) return i;
  fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown dtype");
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even, as torch does
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;
  return static_cast<uint16_t>(half);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fffu + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

double load_float(const uint8_t* p, DType t) {
  switch (t) {
    case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::F16: { uint16_t v; std::memcpy(&v, p, 2); return half_to_float(v); }
    case DType::BF16: { uint16_t v; std::memcpy(&v, p, 2); return bf16_to_float(v); }
    default: fail(BIOESP_ERR_INTERNAL, "not a float dtype");
  }
}

void store_float(uint8_t* p, DType t, double v) {
  switch (t) {
    case DType::F32: { float f = static_cast<float>(v); std::memcpy(p, &f, 4); return; }
    case DType::F64: std::memcpy(p, &v, 8); return;
    case DType::F16: { uint16_t h = float_to_half(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
    case DType::BF16: { uint16_t h = float_to_bf16(static_cast<float>(v)); std::memcpy(p, &h, 2); return; }
    default: fail(BIOESP_ERR_INTERNAL, "not a float dtype");
  }
}

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
const char* dtype_name(DType t) { return info(t).name; }
bool dtype_is_float(DType t) { return info(t).is_float; }

bool dtype_from_name(const std::string& s, DType* out) {
  for (const auto& i : kTypes)
    if (s == i.name) { *out = i.type; return true; }
  return false;
}

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  if (b != 0 && a > INT64_MAX / b) fail(BIOESP_ERR_FORMAT, what + ": sizes overflow");
  return a * b;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  // A zero dimension empties the tensor but does not excuse the others from fitting.
  int64_t nonzero = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) fail(BIOESP_ERR_FORMAT, what + ": negative dimension");
    if (d == 0) empty = true;
    else nonzero = checked_mul(nonzero, d, what);
  }
  return empty ? 0 : nonzero;
}

int64_t Tensor::numel() const { return checked_numel(shape, name); }

Tensor byte_range(const Tensor& t, size_t begin, size_t n) {
  if (begin > t.nbytes || n > t.nbytes - begin) fail(BIOESP_ERR_INTERNAL, t.name + ": byte range outside the tensor");
  Tensor out = t;
  if (out.data) out.data += begin;
  out.offset += begin;
  out.nbytes = n;
  return out;
}

void read_bytes(const Tensor& t, void* dst) {
  if (t.nbytes == 0) return;
  if (t.data) std::memcpy(dst, t.data, t.nbytes);
  else if (t.file) t.file->read(t.offset, dst, t.nbytes);
  else fail(BIOESP_ERR_UNSUPPORTED, t.name + " has no data");
}

void read_elements(const Tensor& t, DType to, void* dst) {
  const size_t n = static_cast<size_t>(t.numel());
  if (t.dtype == to) return read_bytes(t, dst);
  if (t.data) return convert_elements(t.data, t.dtype, dst, to, n);
  std::vector<uint8_t> buf(t.nbytes);
  read_bytes(t, buf.data());
  convert_elements(buf.data(), t.dtype, dst, to, n);
}

void convert_elements(const uint8_t* src, DType from, void* dst_v, DType to, size_t n) {
  auto* dst = static_cast<uint8_t*>(dst_v);
  if (from == to) {
    std::memcpy(dst, src, n * dtype_size(from));
    return;
  }
  if (!dtype_is_float(from) || !dtype_is_float(to))
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::string("cannot convert ") + dtype_name(from) + " to " +
                                          dtype_name(to));
  size_t fs = dtype_size(from), ts = dtype_size(to);
  for (size_t i = 0; i < n; ++i) store_float(dst + i * ts, to, load_float(src + i * fs, from));
}

void WeightSet::sort() {
  std::sort(tensors.begin(), tensors.end(), [](const Tensor& a, const Tensor& b) {
    return a.component != b.component ? a.component < b.component : a.name < b.name;
  });
}

const Tensor* WeightSet::find(const std::string& component, const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name && (component.empty() || t.component == component)) return &t;
  return nullptr;
}

}  // namespace bioesp::io
