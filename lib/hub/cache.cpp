#include "hub/cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

#include "core/error.h"
#include "io/file.h"

namespace bioesp::hub {

namespace {

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

std::string cache_folder_name(const std::string& repo_id) {
  std::string out = "models";
  size_t start = 0;
  for (size_t i = 0; i <= repo_id.size(); ++i) {
    if (i == repo_id.size() || repo_id[i] == '/') {
      out += "--" + repo_id.substr(start, i - start);
      start = i + 1;
    }
  }
  return out;
}

std::string repo_id_of_cache_path(const std::string& path) {
  static const std::regex re(R"((^|/)models--([^/]+?)--([^/]+)/snapshots/[0-9a-f]{40}(/|$))");
  std::smatch m;
  return std::regex_search(path, m, re) ? m[2].str() + "/" + m[3].str() : "";
}

Cache::Cache(std::string root, std::string repo_id) : root_(std::move(root)) {
  dir_ = root_ + "/" + cache_folder_name(repo_id);
}

std::string Cache::lock_file(const std::string& etag) const {
  return root_ + "/.locks/" + dir_.substr(root_.size() + 1) + "/" + etag + ".lock";
}

std::string Cache::cached_commit(const std::string& revision) const {
  static const std::regex hex40("^[0-9a-f]{40}$");
  if (std::regex_match(revision, hex40)) return io::is_directory(snapshot(revision)) ? revision : "";
  const std::string ref = dir_ + "/refs/" + revision;
  if (!io::is_file(ref)) return "";
  std::string commit = io::read_text_file(ref);
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  return std::regex_match(commit, hex40) && io::is_directory(snapshot(commit)) ? commit : "";
}

void Cache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  const std::string ref = dir_ + "/refs/" + revision;
  if (io::is_file(ref) && io::read_text_file(ref) == commit) return;
  io::make_directories(parent_of(ref));
  io::write_text_file(ref, commit);
}

void Cache::link(const std::string& commit, const std::string& path, const std::string& etag) const {
  const std::string dst = snapshot(commit) + "/" + path;
  io::make_directories(parent_of(dst));
  // From snapshots/<commit>/<a>/<b>/file back up to the repo folder: one "../" per folder.
  std::string rel = "../../";
  for (char c : path)
    if (c == '/') rel += "../";
  rel += "blobs/" + etag;
  ::unlink(dst.c_str());
  if (::symlink(rel.c_str(), dst.c_str()) == 0) return;
  io::copy_file(blob(etag), dst);  // no symlinks here (some Windows and network file systems)
}

void Cache::mark_missing(const std::string& commit, const std::string& path) const {
  const std::string marker = dir_ + "/.no_exist/" + commit + "/" + path;
  io::make_directories(parent_of(marker));
  io::write_file_atomically(marker, [](std::FILE*) {});
}

bool Cache::known_missing(const std::string& commit, const std::string& path) const {
  return io::exists(dir_ + "/.no_exist/" + commit + "/" + path);
}

FileLock::FileLock(const std::string& path) {
  io::make_directories(parent_of(path));
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(BIOESP_ERR_IO, "cannot open lock file " + path + ": " + std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    ::close(fd_);
    fail(BIOESP_ERR_IO, "cannot lock " + path + ": " + std::strerror(errno));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace bioesp::hub
