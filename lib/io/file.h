// Files: regular files read at offsets, shared by the tensors that lie in them, and atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bioesp::io {

// A regular file open for reading at offsets (pread). Weight files are read through it rather
// than mapped: a file truncated underneath then gives an I/O error where a mapping gives SIGBUS.
class ReadFile {
 public:
  ReadFile(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;
  ~ReadFile();
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // when it was opened
  // Exactly n bytes at offset; a short read (the file shrank) is an I/O error naming the file.
  void read(uint64_t offset, void* dst, size_t n) const;

 private:
  int fd_;
  std::string path_;
  uint64_t size_;
};

// Opens a regular file. Anything else (a FIFO, a device, a folder) is refused with an I/O error
// naming what it is, without blocking on it.
std::shared_ptr<const ReadFile> open_file(const std::string& path);

// The same as a stdio stream, for libraries that read one (libpng, libjpeg); fclose it.
std::FILE* open_stream(const std::string& path);

// The largest text file read whole (configs, vocabularies, manifests).
constexpr uint64_t kMaxTextFile = 64u << 20;

// A regular file's whole content; larger than `max_bytes` is refused before reading.
std::string read_text_file(const std::string& path, uint64_t max_bytes = kMaxTextFile);
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

// Creates "<path>.tmp-<pid>-<n><suffix>" exclusively (O_EXCL; n counts up in the process), so
// two writers of one path never share a temporary. Returns its descriptor and sets *name.
int create_temporary(const std::string& path, const std::string& suffix, std::string* name);

// Writes a file atomically: `write` fills a temporary of create_temporary's, which is flushed to
// disk and then renamed over `path`. On any failure the temporary is removed and `path` is
// untouched.
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
