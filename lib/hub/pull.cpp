#include "hub/pull.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hash.h"
#include "core/strings.h"
#include "hub/cache.h"
#include "io/file.h"

namespace bioesp::hub {

using nlohmann::json;

namespace {

const char* const kWeightExtensions[] = {".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack",
                                         ".h5", ".onnx", ".onnx_data", ".pb", ".ot", ".gguf"};

std::string extension_of(const std::string& name) {
  for (const char* e : kWeightExtensions)
    if (ends_with(name, e)) return e;
  return "";
}

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string folder_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// "diffusion_pytorch_model.fp16.safetensors" → fp16; shards "name.fp16-00001-of-00002.safetensors"
// too; index files "name.safetensors.index.fp16.json" → fp16.
std::string variant_of(const std::string& name) {
  std::string stem = name;
  const std::string ext = extension_of(name);
  if (ext.empty()) {
    auto idx = stem.find(".index.");
    if (idx == std::string::npos) return "";
    std::string v = stem.substr(idx + 7);
    take_suffix(v, ".json");
    return v == "json" ? "" : v;
  }
  take_suffix(stem, ext);
  auto dash = stem.find("-000");
  if (dash != std::string::npos) stem = stem.substr(0, dash);
  auto dot = stem.rfind('.');
  return dot == std::string::npos ? "" : stem.substr(dot + 1);
}

// The weights format an index file (…safetensors.index.json) belongs to, or "".
std::string index_format(const std::string& name) {
  if (name.find(".safetensors.index.") != std::string::npos) return ".safetensors";
  if (name.find(".bin.index.") != std::string::npos) return ".bin";
  return "";
}

bool is_weights(const std::string& name) { return !extension_of(name).empty() || !index_format(name).empty(); }

std::string format_of(const std::string& name) {
  std::string f = extension_of(name);
  return f.empty() ? index_format(name) : f;
}

// Of one folder's weight files, those of the preferred (format, variant).
std::vector<const RemoteFile*> pick_weights(const std::vector<const RemoteFile*>& files, const std::string& variant) {
  std::vector<std::pair<std::string, std::string>> order;
  if (!variant.empty()) order = {{".safetensors", variant}, {".bin", variant}};
  order.push_back({".safetensors", ""});
  order.push_back({".bin", ""});
  for (const auto& [format, v] : order) {
    std::vector<const RemoteFile*> out;
    for (const auto* f : files)
      if (format_of(base_name(f->path)) == format && variant_of(base_name(f->path)) == v) out.push_back(f);
    if (!out.empty()) return out;
  }
  return {};
}

bool matches_any(const std::vector<std::string>& globs, const std::string& path) {
  for (const auto& g : globs)
    if (fnmatch(g.c_str(), path.c_str(), 0) == 0) return true;
  return false;
}

bool host_changes(const std::string& a, const std::string& b) { return origin_of(a) != origin_of(b); }

bool verify_blob(const std::string& file, const std::string& etag, uint64_t size, std::string& got) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0) return false;
  if (size > 0 && static_cast<uint64_t>(st.st_size) != size) {
    got = std::to_string(st.st_size) + " bytes instead of " + std::to_string(size);
    return false;
  }
  got = etag.size() == 64 ? sha256_file(file) : git_blob_sha1_file(file);
  return got == etag;
}

std::string strip_etag(std::string e) {
  take_prefix(e, "W/");
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

// One file into the cache: HEAD the resolve URL (following only the Hub's own, relative
// redirects), then GET where it points, resumable, verified before it becomes a blob.
void download_file(Api& api, const Cache& cache, const std::string& repo, const std::string& commit, const RemoteFile& f,
                   const std::function<void(uint64_t)>& on_bytes) {
  const std::string& endpoint = api.settings().endpoint;
  std::string url = endpoint + "/" + repo + "/resolve/" + commit + "/" + encode_path(f.path);
  net::Response head;
  for (int hop = 0;; ++hop) {
    net::Request r;
    r.method = "HEAD";
    r.url = url;
    r.follow_redirects = false;
    head = api.call(r, f.path, repo, false);
    const std::string loc = head.header("location");
    if (head.status >= 300 && head.status < 400 && !loc.empty() && loc[0] == '/' && hop < 5) {
      url = endpoint + loc;  // a renamed repository: the Hub redirects within itself
      continue;
    }
    break;
  }
  if (head.status == 404 && head.header("x-error-code") == "EntryNotFound") cache.mark_missing(commit, f.path);
  raise_for_status(head, f.path, repo, endpoint);
  std::string etag = strip_etag(head.header("x-linked-etag"));
  if (etag.empty()) etag = strip_etag(head.header("etag"));
  std::string size_text = head.header("x-linked-size");
  if (size_text.empty()) size_text = head.header("content-length");
  const uint64_t size = size_text.empty() ? f.size : std::strtoull(size_text.c_str(), nullptr, 10);
  if (etag.empty()) fail(BIOESP_ERR_FORMAT, f.path + ": the Hub sent no ETag, so the file cannot be verified");
  if (etag != f.etag())
    fail(BIOESP_ERR_FORMAT, f.path + ": the Hub's ETag " + etag + " differs from the tree listing's " + f.etag());
  if (etag.find('/') != std::string::npos || etag.find("..") != std::string::npos)
    fail(BIOESP_ERR_FORMAT, f.path + ": malformed ETag");
  std::string where = url;
  if (head.status >= 300 && head.status < 400 && !head.header("location").empty()) where = head.header("location");

  FileLock lock(cache.lock_file(etag));
  const std::string blob = cache.blob(etag);
  if (!io::is_file(blob)) {
    io::make_directories(cache.repo_dir() + "/blobs");
    const std::string part = blob + ".incomplete";
    // The storage host gets no token: it would leak to a third party (signed URLs need none).
    api.http().download(where, part, on_bytes, host_changes(where, endpoint) ? std::vector<std::string>{} : api.auth());
    std::string got;
    if (!verify_blob(part, etag, size, got)) {
      std::remove(part.c_str());
      fail(BIOESP_ERR_FORMAT, repo + "/" + f.path + ": the download does not match the Hub's hash " + etag + " (got " + got +
                                  "); it was discarded and the cache is unchanged");
    }
    if (std::rename(part.c_str(), blob.c_str()) != 0) fail(BIOESP_ERR_IO, "cannot rename " + part);
  }
  cache.link(commit, f.path, etag);
}

}  // namespace

std::set<std::string> pipeline_components(const std::string& text, const std::string& what) {
  json index = json::parse(text, nullptr, false);
  if (!index.is_object()) fail(BIOESP_ERR_FORMAT, what + ": model_index.json is not a JSON object");
  std::set<std::string> out;
  for (const auto& [key, value] : index.items())
    if (!key.empty() && key[0] != '_' && value.is_array() && value.size() == 2) out.insert(key);
  return out;
}

std::vector<RemoteFile> select_files(const std::vector<RemoteFile>& tree, const std::string& variant,
                                     const std::set<std::string>& components) {
  const bool pipeline = std::any_of(tree.begin(), tree.end(), [](const RemoteFile& f) { return f.path == "model_index.json"; });
  auto wanted = [&](const std::string& path) {
    const auto slash = path.find('/');
    return !pipeline || components.empty() || slash == std::string::npos || components.count(path.substr(0, slash));
  };
  std::map<std::string, std::vector<const RemoteFile*>> weights_by_folder;
  std::vector<RemoteFile> out;
  for (const auto& f : tree) {
    if (!wanted(f.path)) continue;
    if (is_weights(base_name(f.path))) weights_by_folder[folder_of(f.path)].push_back(&f);
    else out.push_back(f);
  }
  std::set<std::string> chosen;
  for (const auto& [folder, files] : weights_by_folder) {
    if (pipeline && (folder.empty() || folder.find('/') != std::string::npos || folder == "safety_checker")) continue;
    auto picked = pick_weights(files, variant);
    if (picked.empty() && !pipeline) picked = files;  // only other formats: leave the choice to the user
    if (!pipeline && !picked.empty()) {
      // Outside pipelines keep every weights file that has no safetensors twin.
      std::set<std::string> stems;
      for (const auto* f : picked) {
        std::string s = f->path;
        take_suffix(s, extension_of(s));
        stems.insert(s);
      }
      for (const auto* f : files) {
        std::string s = f->path;
        take_suffix(s, extension_of(s));
        if (!stems.count(s) && (format_of(f->path) == ".safetensors" || format_of(f->path) == ".bin")) picked.push_back(f);
      }
    }
    for (const auto* f : picked) chosen.insert(f->path);
  }
  for (const auto& f : tree)
    if (chosen.count(f.path)) out.push_back(f);
  std::sort(out.begin(), out.end(), [](const RemoteFile& a, const RemoteFile& b) { return a.path < b.path; });
  return out;
}

PullResult pull(const PullOptions& o) {
  Settings s = resolve(o.settings);
  RepoRef ref = parse_repo(o.repo);
  if (!o.revision.empty()) ref.revision = o.revision;
  Cache cache(s.cache_dir, ref.id);
  auto from_cache = [&](const std::string& why) {
    std::string commit = cache.cached_commit(ref.revision);
    if (commit.empty())
      fail(BIOESP_ERR_NOT_FOUND, ref.id + "@" + ref.revision + " is not in the cache (" + s.cache_dir + ") and " + why);
    if (s.log) s.log(BIOESP_LOG_WARNING, ref.id + "@" + ref.revision + ": using the cached snapshot " + commit + " (" + why + ")");
    PullResult r;
    r.snapshot = cache.snapshot(commit);
    r.commit = commit;
    r.from_cache_only = true;
    return r;
  };
  if (s.offline) return from_cache("offline mode is on (HF_HUB_OFFLINE)");

  bool stop = false;  // a progress callback asked to cancel mid-file
  s.cancelled = [&stop, outer = s.cancelled] { return stop || (outer && outer()); };
  Api api(s);
  const std::string what = ref.id + "@" + ref.revision;
  net::Request req;
  req.url = api.url("/api/models/" + ref.id + "/revision/" + net::url_encode(ref.revision));
  net::Response res;
  try {
    res = api.call(req, what, ref.id, false);
  } catch (const Error& e) {
    if (e.status() != BIOESP_ERR_NETWORK) throw;
    return from_cache(std::string("the Hub cannot be reached: ") + e.what());
  }
  if (res.status >= 500) return from_cache("the Hub answered HTTP " + std::to_string(res.status));
  raise_for_status(res, what, ref.id, s.endpoint);
  const std::string commit = parse_commit(res, what);
  cache.write_ref(ref.revision, commit);

  const auto tree = api.tree(ref.id, commit);
  PullResult result;
  result.commit = commit;
  result.snapshot = cache.snapshot(commit);
  io::make_directories(result.snapshot);
  auto fetch = [&](size_t i, size_t n, const RemoteFile& f) {
    if (io::exists(result.snapshot + "/" + f.path)) {
      ++result.cached;
      return;
    }
    const bool have_blob = io::is_file(cache.blob(f.etag()));
    download_file(api, cache, ref.id, commit, f, [&](uint64_t bytes) {
      if (o.progress && !o.progress(i, n, bytes, f.path)) stop = true;
    });
    ++(have_blob ? result.cached : result.downloaded);
  };

  std::vector<RemoteFile> files;
  const RemoteFile* index = nullptr;  // a pipeline's model_index.json, fetched first: it names the components
  if (o.include.empty()) {
    for (const auto& f : tree)
      if (f.path == "model_index.json") index = &f;
    std::set<std::string> components;
    if (index) {
      fetch(0, 1, *index);
      const std::string path = result.snapshot + "/model_index.json";
      components = pipeline_components(io::read_text_file(path), what);
    }
    files = select_files(tree, o.variant, components);
  } else {
    for (const auto& f : tree)
      if (matches_any(o.include, f.path)) files.push_back(f);
  }
  if (files.empty()) fail(BIOESP_ERR_NOT_FOUND, what + ": no files to download" + (o.include.empty() ? "" : " match --include"));

  for (size_t i = 0; i < files.size(); ++i) {
    const auto& f = files[i];
    if (o.progress && !o.progress(i, files.size(), 0, f.path)) fail(BIOESP_ERR_CANCELLED, "cancelled");
    if (!index || f.path != index->path) fetch(i, files.size(), f);
  }
  if (o.progress) o.progress(files.size(), files.size(), 0, "");
  return result;
}

namespace {

PullResult pull_for_use(const std::string& id, io::Logger log) {
  PullOptions o;
  o.repo = id;
  o.settings.log = log;
  // A model named in a command should not wait a minute for an unreachable network.
  o.settings.retry.max_retries = 2;
  o.settings.retry.base_delay = 0.5;
  PullResult r;
  try {
    r = pull(o);
  } catch (const Error& e) {
    if (e.status() != BIOESP_ERR_NOT_FOUND) throw;
    fail(BIOESP_ERR_NOT_FOUND, id + " is not a local file or folder, and as a Hub model id: " + e.what());
  }
  if (log && r.downloaded > 0)
    log(BIOESP_LOG_INFO, id + ": " + std::to_string(r.downloaded) + " files downloaded into " + r.snapshot);
  return r;
}

}  // namespace

std::string resolve_model(const std::string& path_or_id, io::Logger log) {
  if (path_or_id.empty() || io::exists(path_or_id) || !looks_like_repo_id(path_or_id)) return path_or_id;
  return pull_for_use(path_or_id, log).snapshot;
}

std::string resolve_lora(const std::string& path_or_id, io::Logger log) {
  if (path_or_id.empty() || io::exists(path_or_id) || !looks_like_repo_id(path_or_id)) return path_or_id;
  const std::string dir = pull_for_use(path_or_id, log).snapshot;
  if (io::is_file(dir + "/pytorch_lora_weights.safetensors")) return dir + "/pytorch_lora_weights.safetensors";
  std::vector<std::string> found;
  for (const auto& n : io::list_directory(dir))
    if (ends_with(n, ".safetensors")) found.push_back(n);
  if (found.size() != 1)
    fail(BIOESP_ERR_NOT_FOUND, path_or_id + ": " + (found.empty() ? "no .safetensors file" : "several .safetensors files") +
                                   " at the top of the repository; name the file's path in the cache instead");
  return dir + "/" + found[0];
}

}  // namespace bioesp::hub
