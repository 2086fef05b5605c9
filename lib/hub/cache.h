// The Hub cache shared with huggingface_hub (and so with diffusers and transformers):
//   <cache>/models--org--name/blobs/<etag>                 file contents, named by their ETag
//   <cache>/models--org--name/snapshots/<commit>/<path>    relative symlinks into blobs/
//   <cache>/models--org--name/refs/<revision>              the commit a branch or tag pointed to
//   <cache>/models--org--name/.no_exist/<commit>/<path>    files known to be missing
//   <cache>/.locks/models--org--name/<etag>.lock           held while a blob is written
// Blobs are downloaded as <etag>.incomplete and renamed once verified.
#pragma once

#include <string>

namespace bioesp::hub {

class Cache {
 public:
  Cache(std::string root, std::string repo_id);
  const std::string& repo_dir() const { return dir_; }
  std::string blob(const std::string& etag) const { return dir_ + "/blobs/" + etag; }
  std::string snapshot(const std::string& commit) const { return dir_ + "/snapshots/" + commit; }
  std::string lock_file(const std::string& etag) const;

  // The commit a revision resolves to from the cache alone ("" when unknown): a commit id itself
  // when its snapshot exists, else refs/<revision>.
  std::string cached_commit(const std::string& revision) const;
  void write_ref(const std::string& revision, const std::string& commit) const;
  // Points snapshots/<commit>/<path> at blobs/<etag> by a relative symlink, or a copy where the
  // file system has no symlinks.
  void link(const std::string& commit, const std::string& path, const std::string& etag) const;
  void mark_missing(const std::string& commit, const std::string& path) const;
  bool known_missing(const std::string& commit, const std::string& path) const;

 private:
  std::string root_, dir_;
};

// An exclusive lock on a file (flock, as huggingface_hub's filelock), released on destruction.
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// "models--org--name" from "org/name".
std::string cache_folder_name(const std::string& repo_id);
// The repo id a path inside a cache snapshot belongs to ("" when it is not in one): lets a
// model loaded from the cache be named by its id (for model cards).
std::string repo_id_of_cache_path(const std::string& path);

}  // namespace bioesp::hub
