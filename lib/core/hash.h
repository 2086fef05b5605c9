// SHA-1 and SHA-256, for verifying downloads against the hashes the archives publish (Commons'
// SHA-1, the Hub's git blob ids and LFS sha256), and for the Hub's upload protocol.
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

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex();  // finishes; 64 lower-case hex digits

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  uint64_t bytes_ = 0;
  size_t used_ = 0;
};

// Digests of a file's bytes; throw an I/O error naming the path.
std::string sha1_file(const std::string& path);
std::string sha256_file(const std::string& path);
// Git's object id of a file ("blob <size>\0" + bytes, SHA-1): the Hub's ETag for regular files.
std::string git_blob_sha1_file(const std::string& path);
std::string git_blob_sha1(const std::string& bytes);

}  // namespace bioesp
