#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/file.h"

namespace bioesp::io {

using nlohmann::json;

namespace {

// The header's JSON; a key given twice in one object (JSON parsers keep the last, silently) is
// refused, as is anything that is not an object.
json parse_header(const uint8_t* text, uint64_t n, const std::string& what) {
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string repeated;
  auto watch = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
             repeated.empty())
      repeated = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + n, watch);
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, what + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!repeated.empty()) fail(BIOESP_ERR_FORMAT, what + ": safetensors header names '" + repeated + "' twice");
  if (!header.is_object()) fail(BIOESP_ERR_FORMAT, what + ": safetensors header is not an object");
  return header;
}

// The header's 8-byte length, checked against the limit and the file's size.
uint64_t header_length(const uint8_t* prefix, uint64_t size, const std::string& what) {
  if (size < 8) fail(BIOESP_ERR_FORMAT, what + ": too short for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kMaxSafetensorsHeader)
    fail(BIOESP_ERR_FORMAT, what + ": safetensors header of " + std::to_string(n) +
                                " bytes exceeds the " + std::to_string(kMaxSafetensorsHeader) +
                                "-byte limit");
  if (n > size - 8)
    fail(BIOESP_ERR_FORMAT, what + ": safetensors header of " + std::to_string(n) +
                                " bytes runs past the end of the file (" + std::to_string(size) +
                                " bytes)");
  return n;
}

// The tensors a header describes, each with `offset` counted from the start of the data section
// of `data_size` bytes.
WeightSet index_header(const json& header, uint64_t data_size, const std::string& what) {
  WeightSet set;
  set.format = BIOESP_FORMAT_SAFETENSORS;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(BIOESP_ERR_FORMAT, what + ": __metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail(BIOESP_ERR_FORMAT, what + ": __metadata__ value of '" + mk + "' is not a string");
        set.metadata.emplace_back(mk, mv.get<std::string>());
      }
      continue;
    }
    if (key.find('\0') != std::string::npos)
      fail(BIOESP_ERR_FORMAT, what + ": a tensor name holds a NUL byte ('" + key.substr(0, key.find('\0')) + "\\0...')");
    const std::string where = what + ": tensor '" + key + "'";
    if (!value.is_object()) fail(BIOESP_ERR_FORMAT, where + " is not an object");
    auto dt = value.find("dtype");
    auto sh = value.find("shape");
    auto of = value.find("data_offsets");
    if (dt == value.end() || !dt->is_string() || sh == value.end() || !sh->is_array() ||
        of == value.end() || !of->is_array() || of->size() != 2)
      fail(BIOESP_ERR_FORMAT, where + " needs dtype, shape and two data_offsets");
    Tensor t;
    t.name = key;
    if (!dtype_from_name(dt->get<std::string>(), &t.dtype))
      fail(BIOESP_ERR_UNSUPPORTED, where + " has unsupported dtype " + dt->get<std::string>());
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        fail(BIOESP_ERR_FORMAT, where + " has a dimension that is not a size");
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    if (!(*of)[0].is_number_unsigned() || !(*of)[1].is_number_unsigned())
      fail(BIOESP_ERR_FORMAT, where + " has non-integer data_offsets");
    uint64_t b = (*of)[0].get<uint64_t>(), e = (*of)[1].get<uint64_t>();
    if (b > e || e > data_size)
      fail(BIOESP_ERR_FORMAT, where + " has data_offsets [" + std::to_string(b) + ", " +
                                  std::to_string(e) + "] outside the " + std::to_string(data_size) +
                                  "-byte data section");
    int64_t numel = checked_numel(t.shape, where);
    uint64_t esize = dtype_size(t.dtype);
    if (static_cast<uint64_t>(numel) > UINT64_MAX / esize || numel * esize != e - b)
      fail(BIOESP_ERR_FORMAT, where + ": shape × dtype size is not its byte length " +
                                  std::to_string(e - b));
    t.offset = b;
    t.nbytes = static_cast<size_t>(e - b);
    ranges.emplace_back(b, e);
    set.tensors.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second && ranges[i].first != ranges[i].second)
      fail(BIOESP_ERR_FORMAT, what + ": tensors overlap at byte " + std::to_string(ranges[i].first));
  set.sort();
  return set;
}

// A tensor's bytes into an open file, a chunk at a time when they are still in their own file.
void write_tensor(std::FILE* f, const Tensor& t, const std::string& path) {
  if (t.data || !t.file) return write_bytes(f, t.data, t.nbytes, path);
  std::vector<uint8_t> buf(std::min<size_t>(t.nbytes, 4u << 20));
  for (size_t at = 0; at < t.nbytes; at += buf.size()) {
    size_t n = std::min(buf.size(), t.nbytes - at);
    t.file->read(t.offset + at, buf.data(), n);
    write_bytes(f, buf.data(), n, path);
  }
}

}  // namespace

WeightSet parse_safetensors(const uint8_t* data, size_t size, std::shared_ptr<const void> owner,
                            const std::string& what) {
  const uint64_t n = header_length(data, size, what);
  WeightSet set = index_header(parse_header(data + 8, n, what), size - 8 - n, what);
  for (auto& t : set.tensors) {
    t.data = data + 8 + n + t.offset;
    t.offset = 0;
    t.owner = owner;
  }
  return set;
}

WeightSet read_safetensors(const std::string& path) {
  auto f = open_file(path);
  uint8_t prefix[8] = {};
  f->read(0, prefix, std::min<uint64_t>(8, f->size()));
  const uint64_t n = header_length(prefix, f->size(), path);
  std::vector<uint8_t> text(n);
  f->read(8, text.data(), n);
  WeightSet set = index_header(parse_header(text.data(), n, path), f->size() - 8 - n, path);
  for (auto& t : set.tensors) {
    t.file = f;
    t.offset += 8 + n;
  }
  return set;
}

void write_safetensors(const std::string& path, const std::vector<const Tensor*>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const Tensor* t : tensors) {
    if (header.contains(t->name)) fail(BIOESP_ERR_INVALID_ARGUMENT, "duplicate tensor " + t->name);
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->nbytes}}};
    offset += t->nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps tensor data 8-byte aligned
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  write_file_atomically(path, [&](std::FILE* f) {
    write_bytes(f, len, 8, path);
    write_bytes(f, text.data(), text.size(), path);
    for (const Tensor* t : tensors) write_tensor(f, *t, path);
  });
}

void write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<const Tensor*> ptrs;
  for (const auto& t : tensors) ptrs.push_back(&t);
  write_safetensors(path, ptrs, metadata);
}

}  // namespace bioesp::io
