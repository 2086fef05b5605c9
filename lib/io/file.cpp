#include "io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace bioesp::io {

static std::string errno_text() { return std::strerror(errno); }

static const char* kind_of(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "something else";
}

ReadFile::~ReadFile() { ::close(fd_); }

void ReadFile::read(uint64_t offset, void* dst, size_t n) const {
  auto* p = static_cast<uint8_t*>(dst);
  for (size_t done = 0; done < n;) {
    ssize_t r = ::pread(fd_, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(BIOESP_ERR_IO, "cannot read " + path_ + ": " + errno_text());
    if (r == 0)
      fail(BIOESP_ERR_IO, path_ + ": the file ends before byte " + std::to_string(offset + n) + " (it was " +
                              std::to_string(size_) + " bytes when opened: changed or truncated while in use)");
    done += static_cast<size_t>(r);
  }
}

// A descriptor of a regular file and its size.
static int open_regular(const std::string& path, uint64_t* size) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) fail(BIOESP_ERR_IO, "cannot open " + path + ": " + errno_text());
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    fail(BIOESP_ERR_IO, "cannot stat " + path + ": " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(BIOESP_ERR_IO, path + " is not a regular file but " + std::string(kind_of(st.st_mode)));
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

std::shared_ptr<const ReadFile> open_file(const std::string& path) {
  uint64_t size = 0;
  int fd = open_regular(path, &size);
  return std::make_shared<ReadFile>(fd, path, size);
}

std::FILE* open_stream(const std::string& path) {
  uint64_t size = 0;
  int fd = open_regular(path, &size);
  std::FILE* f = fdopen(fd, "rb");
  if (!f) {
    std::string why = errno_text();
    ::close(fd);
    fail(BIOESP_ERR_IO, "cannot read " + path + ": " + why);
  }
  return f;
}

std::string read_text_file(const std::string& path, uint64_t max_bytes) {
  auto f = open_file(path);
  if (f->size() > max_bytes)
    fail(BIOESP_ERR_FORMAT, path + ": " + std::to_string(f->size()) + " bytes, more than the " +
                                std::to_string(max_bytes) + " bytes read from a text file");
  std::string text(static_cast<size_t>(f->size()), '\0');
  f->read(0, text.data(), text.size());
  return text;
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

int create_temporary(const std::string& path, const std::string& suffix, std::string* name) {
  static std::atomic<uint64_t> counter{0};
  const std::string stem = path + kTemporary + std::to_string(getpid()) + "-";
  while (true) {
    *name = stem + std::to_string(counter++) + suffix;
    int fd = ::open(name->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) fail(BIOESP_ERR_IO, "cannot create " + *name + ": " + errno_text());
  }
}

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& write) {
  std::string tmp;
  int fd = create_temporary(path, "", &tmp);
  std::FILE* f = fdopen(fd, "wb");
  if (!f) {
    std::string why = errno_text();
    ::close(fd);
    std::remove(tmp.c_str());
    fail(BIOESP_ERR_IO, "cannot write " + tmp + ": " + why);
  }
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
  auto in = open_file(from);
  write_file_atomically(to, [&](std::FILE* f) {
    std::vector<uint8_t> buf(std::min<uint64_t>(in->size(), 1u << 20));
    for (uint64_t at = 0; at < in->size(); at += buf.size()) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), in->size() - at));
      in->read(at, buf.data(), n);
      write_bytes(f, buf.data(), n, to);
    }
  });
}

}  // namespace bioesp::io
