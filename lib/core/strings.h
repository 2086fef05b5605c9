// String helpers shared by the key-renaming and file-layout code.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

namespace bioesp {

// ASCII lower case (file extensions, license codes, keywords).
inline std::string to_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// FNV-1a, 64-bit: a short fingerprint of text (datasets, base models), not a security hash.
constexpr uint64_t kFnv1aSeed = 1469598103934665603ull;
inline uint64_t fnv1a(const std::string& s, uint64_t h = kFnv1aSeed) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

inline bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Removes `prefix` from the front of `s` when it is there.
inline bool take_prefix(std::string& s, const std::string& prefix) {
  if (!starts_with(s, prefix)) return false;
  s.erase(0, prefix.size());
  return true;
}

// Removes `suffix` from the end of `s` when it is there.
inline bool take_suffix(std::string& s, const std::string& suffix) {
  if (!ends_with(s, suffix)) return false;
  s.erase(s.size() - suffix.size());
  return true;
}

}  // namespace bioesp
