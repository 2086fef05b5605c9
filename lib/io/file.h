// Files: read-only mappings shared by the tensors that point into them, and atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bioesp::io {

struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping();
};

// Maps a whole file read-only. Throws an I/O error naming the path.
std::shared_ptr<Mapping> map_file(const std::string& path);

// Drops the resident pages of [data, data + n) from a read-only file mapping once its bytes have
// been copied elsewhere, so a load does not hold the file and the model in memory at once.
void release_mapped_pages(const void* data, size_t n);

std::string read_text_file(const std::string& path);
bool is_directory(const std::string& path);
// Anything at the path, following symlinks (a dangling link does not count).
bool exists(const std::string& path);
// Entry names (without . and ..), sorted. Throws an I/O error naming the folder.
std::vector<std::string> list_directory(const std::string& dir);
// mkdir -p.
void make_directories(const std::string& path);
// Copies a file atomically.
void copy_file(const std::string& from, const std::string& to);
bool is_file(const std::string& path);

// Writes a file atomically: `write` fills "<path>.tmp-<pid>", which is flushed to disk and then
// renamed over `path`. On any failure the temporary is removed and `path` is untouched.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::FILE*)>& write);
// Whether a file name is one of write_file_atomically's temporaries (left behind only when the
// process died mid-write).
bool is_temporary_name(const std::string& name);

// Writes text (or any bytes in a string) atomically, as write_file_atomically.
void write_text_file(const std::string& path, const std::string& text);

// fwrite that throws an I/O error (disk full) naming the path.
void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path);

}  // namespace bioesp::io
