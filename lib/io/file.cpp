#include "io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace bioesp::io {

Mapping::~Mapping() {
  if (data && size) munmap(const_cast<uint8_t*>(data), size);
}

static std::string errno_text() { return std::strerror(errno); }

std::shared_ptr<Mapping> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(BIOESP_ERR_IO, "cannot open " + path + ": " + errno_text());
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    fail(BIOESP_ERR_IO, "cannot stat " + path + ": " + errno_text());
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(BIOESP_ERR_IO, path + " is not a regular file");
  }
  auto m = std::make_shared<Mapping>();
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void* p = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      m->size = 0;
      fail(BIOESP_ERR_IO, "cannot map " + path + ": " + errno_text());
    }
    m->data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return m;
}

void release_mapped_pages(const void* data, size_t n) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + n) & ~(page - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(BIOESP_ERR_IO, "cannot open " + path + ": " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(BIOESP_ERR_IO, "cannot read " + path);
  return ss.str();
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

void write_bytes(std::FILE* f, const void* data, size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n)
    fail(BIOESP_ERR_IO, "cannot write " + path + ": " + errno_text());
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::FILE* f) { write_bytes(f, text.data(), text.size(), path); });
}

namespace {
const char* const kTemporary = ".tmp-";
}

bool is_temporary_name(const std::string& name) {
  const size_t at = name.rfind(kTemporary);
  return at != std::string::npos && at > 0 && at + std::strlen(kTemporary) < name.size();
}

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& write) {
  std::string tmp = path + kTemporary + std::to_string(getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(BIOESP_ERR_IO, "cannot create " + tmp + ": " + errno_text());
  try {
    write(f);
    if (std::fflush(f) != 0 || fsync(fileno(f)) != 0)
      fail(BIOESP_ERR_IO, "cannot flush " + tmp + ": " + errno_text());
    if (std::fclose(f) != 0) {
      f = nullptr;
      fail(BIOESP_ERR_IO, "cannot close " + tmp + ": " + errno_text());
    }
    f = nullptr;
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      fail(BIOESP_ERR_IO, "cannot rename " + tmp + " to " + path + ": " + errno_text());
  } catch (...) {
    if (f) std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) fail(BIOESP_ERR_IO, "cannot list " + dir + ": " + errno_text());
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void make_directories(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) fail(BIOESP_ERR_IO, "cannot create " + part + ": " + errno_text());
  }
  if (!is_directory(path)) fail(BIOESP_ERR_IO, path + " exists and is not a folder");
}

void copy_file(const std::string& from, const std::string& to) {
  auto m = map_file(from);
  write_file_atomically(to, [&](std::FILE* f) { write_bytes(f, m->data, m->size, to); });
}

}  // namespace bioesp::io
