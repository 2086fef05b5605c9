// SHA-1, for verifying downloads against the hashes Wikimedia Commons publishes (not for security).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bioesp {

class Sha1 {
 public:
  Sha1();
  void update(const void* data, size_t n);
  std::string hex();  // finishes; 40 lower-case hex digits

 private:
  void block(const uint8_t* p);
  uint32_t h_[5];
  uint8_t buf_[64];
  uint64_t bytes_ = 0;
  size_t used_ = 0;
};

// The SHA-1 of a file's bytes; throws an I/O error naming the path.
std::string sha1_file(const std::string& path);

}  // namespace bioesp
