// safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
#pragma once

#include <string>
#include <vector>

#include "io/tensor.h"

namespace bioesp::io {

// Largest header accepted (the reference implementation's limit).
constexpr size_t kMaxSafetensorsHeader = 100u << 20;

// Validates and indexes a safetensors image in memory; tensors point into `data`, kept alive by
// `owner`. `what` names the source in errors.
WeightSet parse_safetensors(const uint8_t* data, size_t size, std::shared_ptr<const void> owner,
                            const std::string& what);

// Maps the file and parses it (zero-copy).
WeightSet read_safetensors(const std::string& path);

// Writes atomically; tensors in the order given.
void write_safetensors(const std::string& path, const std::vector<const Tensor*>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);
void write_safetensors(const std::string& path, const std::vector<Tensor>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace bioesp::io
