#include "hub/push.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hash.h"
#include "core/strings.h"
#include "dataset/fetch.h"
#include "hub/cache.h"
#include "hub/model_card.h"
#include "io/file.h"
#include "io/safetensors.h"

using nlohmann::json;

namespace bioesp::hub {

namespace {

struct LocalFile {
  std::string repo_path, local_path;
  uint64_t size = 0;
  std::string sha256, git_sha1;
  std::string mode;  // "lfs" or "regular", as the Hub decides
  bool skip = false;

  LocalFile(std::string repo, std::string local) : repo_path(std::move(repo)), local_path(std::move(local)) {}
};

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8;
    out += t[v >> 18], out += t[(v >> 12) & 63], out += t[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string read_bytes(const std::string& path, uint64_t offset, uint64_t n) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(BIOESP_ERR_IO, "cannot open " + path);
  std::string out(n, '\0');
  std::fseek(f, static_cast<long>(offset), SEEK_SET);
  size_t got = std::fread(out.data(), 1, n, f);
  std::fclose(f);
  out.resize(got);
  return out;
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail(BIOESP_ERR_IO, "cannot read " + path);
  return static_cast<uint64_t>(st.st_size);
}

// Files worth publishing: everything but training checkpoints, hidden and temporary files.
void collect(const std::string& dir, const std::string& prefix, std::vector<LocalFile>& out) {
  for (const auto& n : io::list_directory(dir)) {
    if (n[0] == '.' || io::is_temporary_name(n) || ends_with(n, ".part") || ends_with(n, ".incomplete")) continue;
    const std::string local = dir + "/" + n, rel = prefix.empty() ? n : prefix + "/" + n;
    if (io::is_directory(local)) {
      if (prefix.empty() && n == "checkpoints") continue;
      collect(local, rel, out);
    } else if (io::is_file(local)) {
      out.emplace_back(rel, local);
    }
  }
}

json lfs_post(Api& api, const std::string& url, const json& body, const std::string& what, const std::string& repo) {
  net::Request r;
  r.method = "POST";
  r.url = url;
  r.headers = {"Accept: application/vnd.git-lfs+json", "Content-Type: application/vnd.git-lfs+json"};
  r.body = body.dump();
  net::Response res = api.call(r, what, repo);
  json j = json::parse(res.body.empty() ? "{}" : res.body, nullptr, false);
  if (j.is_discarded()) fail(BIOESP_ERR_FORMAT, what + ": the Hub's answer is not JSON");
  return j;
}

// One LFS object through the upload action the batch API gave: basic (one PUT) or multipart
// (a PUT per chunk to the numbered URLs, then a completion POST), then verify.
void upload_lfs(Api& api, const std::string& repo, const LocalFile& f, const json& actions,
                const std::function<void(uint64_t)>& on_bytes) {
  const json& up = actions.at("upload");
  const std::string href = up.value("href", "");
  if (href.empty()) fail(BIOESP_ERR_FORMAT, f.repo_path + ": the LFS batch answer has no upload URL");
  json header = up.value("header", json::object());
  if (header.contains("chunk_size")) {
    const json& cs = header["chunk_size"];
    const uint64_t chunk = cs.is_string() ? std::strtoull(cs.get<std::string>().c_str(), nullptr, 10) : cs.get<uint64_t>();
    if (chunk == 0) fail(BIOESP_ERR_FORMAT, f.repo_path + ": LFS multipart chunk size 0");
    std::vector<std::pair<int, std::string>> parts;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "chunk_size") continue;
      char* end = nullptr;
      long n = std::strtol(it.key().c_str(), &end, 10);
      if (!end || *end || n <= 0 || !it.value().is_string()) continue;
      parts.emplace_back(static_cast<int>(n), it.value().get<std::string>());
    }
    std::sort(parts.begin(), parts.end());
    if (parts.size() != (f.size + chunk - 1) / chunk)
      fail(BIOESP_ERR_FORMAT, f.repo_path + ": the Hub gave " + std::to_string(parts.size()) + " part URLs for " +
                                  std::to_string((f.size + chunk - 1) / chunk) + " chunks");
    json done = json::array();
    for (size_t i = 0; i < parts.size(); ++i) {
      net::Request r;
      r.method = "PUT";
      r.url = parts[i].second;
      r.body_file = f.local_path;
      r.body_offset = i * chunk;
      r.body_size = std::min<uint64_t>(chunk, f.size - i * chunk);
      net::Response res = api.http().send(r);  // presigned storage URLs: no token
      raise_for_status(res, f.repo_path + " (part " + std::to_string(i + 1) + ")", repo, api.settings().endpoint);
      std::string etag = res.header("etag");
      if (etag.empty()) fail(BIOESP_ERR_FORMAT, f.repo_path + ": the storage sent no ETag for part " + std::to_string(i + 1));
      done.push_back({{"partNumber", parts[i].first}, {"etag", etag}});
      on_bytes(r.body_offset + r.body_size);
    }
    lfs_post(api, href, {{"oid", f.sha256}, {"parts", done}}, f.repo_path + " (completing the upload)", repo);
  } else {
    net::Request r;
    r.method = "PUT";
    r.url = href;
    for (auto it = header.begin(); it != header.end(); ++it)
      if (it.value().is_string()) r.headers.push_back(it.key() + ": " + it.value().get<std::string>());
    r.body_file = f.local_path;
    r.body_size = f.size;
    net::Response res = api.http().send(r);
    raise_for_status(res, f.repo_path + " (upload)", repo, api.settings().endpoint);
    on_bytes(f.size);
  }
  if (actions.contains("verify")) {
    const json& v = actions["verify"];
    net::Request r;
    r.method = "POST";
    r.url = v.value("href", "");
    r.headers = {"Accept: application/vnd.git-lfs+json", "Content-Type: application/vnd.git-lfs+json"};
    r.body = json{{"oid", f.sha256}, {"size", f.size}}.dump();
    api.call(r, f.repo_path + " (verify)", repo);
  }
}

// The weights the card describes: a LoRA file by its usual names (at any depth), else the first
// top-level safetensors file; an empty set when there is none.
io::WeightSet card_weights(const std::vector<LocalFile>& files) {
  const LocalFile* pick = nullptr;
  for (const char* name : {"pytorch_lora_weights.safetensors", "kohya_lora.safetensors"})
    for (const auto& f : files)
      if (!pick && (f.repo_path == name || ends_with(f.repo_path, std::string("/") + name))) pick = &f;
  for (const auto& f : files)
    if (!pick && ends_with(f.repo_path, ".safetensors") && f.repo_path.find('/') == std::string::npos) pick = &f;
  return pick ? io::read_safetensors(pick->local_path) : io::WeightSet{};
}

// A diffusers folder whose model_index.json names an SDXL pipeline class.
bool sdxl_folder(const std::string& dir) {
  const std::string index = dir + "/model_index.json";
  if (dir.empty() || !io::is_file(index)) return false;
  json j = json::parse(io::read_text_file(index), nullptr, false);
  return j.is_object() && j.contains("_class_name") && j["_class_name"].is_string() &&
         starts_with(j["_class_name"].get<std::string>(), "StableDiffusionXL");
}

// Whether the card's model is (or was trained on) SDXL: the published pipeline's class, the base
// model's (a folder, or a Hub id that says so), or a LoRA with layers of SDXL's second text encoder.
bool is_sdxl(const std::string& published_dir, const std::string& base_named, const std::string& base_id,
             const io::WeightSet& weights) {
  if (sdxl_folder(published_dir) || sdxl_folder(base_named) || names_sdxl(base_id)) return true;
  return std::any_of(weights.tensors.begin(), weights.tensors.end(), [](const io::Tensor& t) {
    return starts_with(t.name, "text_encoder_2.") || starts_with(t.name, "lora_te2_");
  });
}

}  // namespace

PushResult push(const PushOptions& o) {
  Settings s = resolve(o.settings);
  if (s.token.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "publishing needs a Hub token with write access: --token, HF_TOKEN or $HF_HOME/token");
  RepoRef ref = parse_repo(o.repo);
  if (ref.revision != "main" || o.repo.find('@') != std::string::npos)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "publishing goes to the main branch: give the repository as ORG/NAME");
  if (ref.id.find('/') == std::string::npos) fail(BIOESP_ERR_INVALID_ARGUMENT, "the repository must be ORG/NAME");

  // What to publish, and its model card.
  std::vector<LocalFile> files;
  const bool folder = io::is_directory(o.path);
  if (folder) collect(o.path, "", files);
  else if (io::is_file(o.path)) files.emplace_back(o.path.substr(o.path.rfind('/') + 1), o.path);
  else fail(BIOESP_ERR_NOT_FOUND, o.path + " does not exist");
  if (files.empty()) fail(BIOESP_ERR_NOT_FOUND, o.path + " holds nothing to publish");

  const bool has_card = std::any_of(files.begin(), files.end(), [](const LocalFile& f) { return f.repo_path == "README.md"; });
  std::string tmp_card;
  if (!has_card) {
    CardInput card;
    card.repo = ref.id;
    card.lora = !std::any_of(files.begin(), files.end(), [](const LocalFile& f) { return f.repo_path == "model_index.json"; });
    const io::WeightSet weights = card_weights(files);
    card.metadata.insert(weights.metadata.begin(), weights.metadata.end());
    const std::string named = card.metadata.count("bioesp.base_model") ? card.metadata["bioesp.base_model"] : "";
    card.base_model = o.base_model;
    if (card.base_model.empty()) card.base_model = looks_like_repo_id(named) ? named : repo_id_of_cache_path(named);
    card.sdxl = is_sdxl(folder ? o.path : "", io::is_directory(named) ? named : "", card.base_model, weights);
    const auto slash = o.path.rfind('/');
    const std::string dir = folder ? o.path : slash == std::string::npos ? "." : o.path.substr(0, slash);
    if (!o.dataset.empty()) {
      for (auto& [name, j] : dataset::read_manifest(o.dataset)) card.manifest.push_back(j);
      if (card.manifest.empty()) fail(BIOESP_ERR_NOT_FOUND, o.dataset + " has no manifest.jsonl to credit");
    } else {
      for (auto& [name, j] : dataset::read_manifest(dir, "dataset_manifest.jsonl")) card.manifest.push_back(j);
    }
    if (card.manifest.empty() && s.log)
      s.log(BIOESP_LOG_WARNING, "no dataset manifest found: the model card cannot credit the training images (use --dataset)");
    for (const auto& f : files)
      if (ends_with(to_lower(f.repo_path), ".png") || ends_with(to_lower(f.repo_path), ".jpg")) card.samples.push_back(f.repo_path);
    if (card.samples.size() > 4) card.samples.erase(card.samples.begin(), card.samples.end() - 4);  // the latest
    const std::string text = model_card(card);
    // Written beside the weights (the user can edit it and push again) or, for a lone file, to a temporary.
    tmp_card = folder ? o.path + "/README.md" : std::string();
    if (!folder) {
      char name[] = "/tmp/bioesp-card-XXXXXX";
      int fd = mkstemp(name);
      if (fd < 0) fail(BIOESP_ERR_IO, "cannot create a temporary file");
      close(fd);
      tmp_card = name;
    }
    io::write_text_file(tmp_card, text);
    files.emplace_back("README.md", tmp_card);
  }
  struct RemoveTemp {
    std::string path;
    ~RemoveTemp() { if (!path.empty()) std::remove(path.c_str()); }
  } remove_temp{folder ? "" : tmp_card};

  bool stop = false;
  s.cancelled = [&stop, outer = s.cancelled] { return stop || (outer && outer()); };
  Api api(s);
  auto progress = [&](size_t i, uint64_t bytes, const std::string& path) {
    if (o.progress && !o.progress(i, files.size(), bytes, path)) stop = true;
    if (stop) fail(BIOESP_ERR_CANCELLED, "cancelled");
  };

  // 1. The repository (409: it exists already).
  {
    net::Request r;
    r.method = "POST";
    r.url = api.url("/api/repos/create");
    r.headers = {"Content-Type: application/json"};
    auto slash = ref.id.find('/');
    r.body = json{{"name", ref.id.substr(slash + 1)}, {"organization", ref.id.substr(0, slash)}, {"private", o.private_repo}}.dump();
    net::Response res = api.call(r, "creating " + ref.id, ref.id, false);
    if (res.status != 409) raise_for_status(res, "creating " + ref.id, ref.id, s.endpoint);
  }

  // 2. Hashes, and the Hub's choice of LFS or regular per file.
  for (auto& f : files) {
    f.size = file_size(f.local_path);
    f.sha256 = sha256_file(f.local_path);
    f.git_sha1 = git_blob_sha1_file(f.local_path);
  }
  for (size_t start = 0; start < files.size(); start += 256) {
    json list = json::array();
    for (size_t i = start; i < std::min(files.size(), start + 256); ++i)
      list.push_back({{"path", files[i].repo_path}, {"sample", base64(read_bytes(files[i].local_path, 0, 512))}, {"size", files[i].size}});
    net::Request r;
    r.method = "POST";
    r.url = api.url("/api/models/" + ref.id + "/preupload/main");
    r.headers = {"Content-Type: application/json"};
    r.body = json{{"files", list}}.dump();
    net::Response res = api.call(r, "preupload to " + ref.id, ref.id);
    json j = json::parse(res.body, nullptr, false);
    if (!j.is_object() || !j.contains("files") || !j["files"].is_array()) fail(BIOESP_ERR_FORMAT, "the Hub's preupload answer has no files");
    for (const auto& a : j["files"]) {
      if (!a.is_object()) continue;
      std::string path = a.value("path", "");
      for (auto& f : files) {
        if (f.repo_path != path) continue;
        f.mode = a.value("uploadMode", "");
        const std::string remote = a.contains("oid") && a["oid"].is_string() ? a["oid"].get<std::string>() : "";
        f.skip = a.value("shouldIgnore", false) || (!remote.empty() && remote == (f.mode == "lfs" ? f.sha256 : f.git_sha1));
      }
    }
  }
  for (const auto& f : files)
    if (f.mode != "lfs" && f.mode != "regular") fail(BIOESP_ERR_FORMAT, "the Hub gave no upload mode for " + f.repo_path);

  PushResult result;
  for (const auto& f : files) result.unchanged += f.skip;
  if (result.unchanged == files.size()) {
    if (s.log) s.log(BIOESP_LOG_INFO, ref.id + ": every file is already on the Hub; nothing to commit");
    return result;
  }

  // 3. LFS objects, through the batch API.
  std::vector<const LocalFile*> lfs;
  for (const auto& f : files)
    if (!f.skip && f.mode == "lfs") lfs.push_back(&f);
  const std::string batch_url = api.url("/" + ref.id + ".git/info/lfs/objects/batch");
  for (size_t start = 0; start < lfs.size(); start += 256) {
    json objects = json::array();
    for (size_t i = start; i < std::min(lfs.size(), start + 256); ++i) objects.push_back({{"oid", lfs[i]->sha256}, {"size", lfs[i]->size}});
    json answer = lfs_post(api, batch_url,
                           {{"operation", "upload"}, {"transfers", {"basic", "multipart"}}, {"objects", objects},
                            {"hash_algo", "sha256"}, {"ref", {{"name", "main"}}}},
                           "LFS batch for " + ref.id, ref.id);
    if (!answer.contains("objects") || !answer["objects"].is_array()) fail(BIOESP_ERR_FORMAT, "the LFS batch answer has no objects");
    for (const auto& obj : answer["objects"]) {
      const std::string oid = obj.value("oid", "");
      auto it = std::find_if(lfs.begin(), lfs.end(), [&](const LocalFile* f) { return f->sha256 == oid; });
      if (it == lfs.end()) fail(BIOESP_ERR_FORMAT, "the LFS batch answer names an object not asked for: " + oid);
      const LocalFile& f = **it;
      if (obj.contains("error"))
        fail(BIOESP_ERR_NETWORK, f.repo_path + ": the LFS server refused it: " + obj["error"].value("message", obj["error"].dump()));
      const size_t index = static_cast<size_t>(&f - files.data());
      progress(index, 0, f.repo_path);
      if (obj.contains("actions") && obj["actions"].is_object() && obj["actions"].contains("upload"))
        upload_lfs(api, ref.id, f, obj["actions"], [&](uint64_t bytes) { progress(index, bytes, f.repo_path); });
      // No actions: the storage holds the object already.
    }
  }

  // 4. One commit: the header, regular files inline (base64), LFS files by their sha256.
  std::string ndjson = json{{"key", "header"},
                            {"value", {{"summary", o.commit_message.empty() ? "Upload with bioesp" : o.commit_message},
                                       {"description", ""}}}}.dump() + "\n";
  for (const auto& f : files) {
    if (f.skip) continue;
    if (f.mode == "lfs") {
      ndjson += json{{"key", "lfsFile"}, {"value", {{"path", f.repo_path}, {"algo", "sha256"}, {"oid", f.sha256}, {"size", f.size}}}}.dump() + "\n";
    } else {
      ndjson += json{{"key", "file"}, {"value", {{"content", base64(read_bytes(f.local_path, 0, f.size))}, {"path", f.repo_path}, {"encoding", "base64"}}}}.dump() + "\n";
    }
    ++result.uploaded;
  }
  net::Request r;
  r.method = "POST";
  r.url = api.url("/api/models/" + ref.id + "/commit/main");
  r.headers = {"Content-Type: application/x-ndjson"};
  r.body = ndjson;
  net::Response res = api.call(r, "committing to " + ref.id, ref.id);
  json j = json::parse(res.body, nullptr, false);
  result.commit_url = j.is_object() ? j.value("commitUrl", "") : "";
  if (result.commit_url.empty()) fail(BIOESP_ERR_FORMAT, "the Hub's commit answer has no commitUrl");
  if (o.progress) o.progress(files.size(), files.size(), 0, "");
  return result;
}

}  // namespace bioesp::hub
