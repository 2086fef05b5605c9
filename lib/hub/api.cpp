#include "hub/api.h"

#include <cctype>
#include <cstdlib>
#include <regex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"

using nlohmann::json;

namespace bioesp::hub {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  return s;
}

std::string hf_home() {
  if (!env("HF_HOME").empty()) return env("HF_HOME");
  if (!env("XDG_CACHE_HOME").empty()) return env("XDG_CACHE_HOME") + "/huggingface";
  return env("HOME") + "/.cache/huggingface";
}

// The URL of Link: <…>; rel="next", or "".
std::string next_link(const std::string& link) {
  static const std::regex re(R"re(<([^>]+)>\s*;\s*rel="?next"?)re");
  std::smatch m;
  return std::regex_search(link, m, re) ? m[1].str() : "";
}

}  // namespace

Settings resolve(Settings s) {
  if (s.endpoint.empty()) s.endpoint = env("HF_ENDPOINT");
  if (s.endpoint.empty()) s.endpoint = "https://huggingface.co";
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  if (s.token.empty()) s.token = trim(env("HF_TOKEN"));
  if (s.token.empty()) {
    std::string path = env("HF_TOKEN_PATH").empty() ? hf_home() + "/token" : env("HF_TOKEN_PATH");
    if (io::is_file(path)) s.token = trim(io::read_text_file(path));
  }
  if (s.cache_dir.empty()) s.cache_dir = env("HF_HUB_CACHE");
  if (s.cache_dir.empty()) s.cache_dir = env("HUGGINGFACE_HUB_CACHE");
  if (s.cache_dir.empty()) s.cache_dir = hf_home() + "/hub";
  std::string off = to_lower(env("HF_HUB_OFFLINE"));
  if (off == "1" || off == "true" || off == "yes" || off == "on") s.offline = true;
  return s;
}

bool looks_like_repo_id(const std::string& s) {
  static const std::regex re(R"(^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+(@[^\s]+)?$)");
  if (!std::regex_match(s, re)) return false;
  return s.find("..") == std::string::npos && s.find("--") == std::string::npos;
}

RepoRef parse_repo(const std::string& s) {
  RepoRef r;
  auto at = s.find('@');
  r.id = s.substr(0, at);
  if (at != std::string::npos) r.revision = s.substr(at + 1);
  if (!looks_like_repo_id(r.id) || r.revision.empty())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "'" + s + "' is not a Hub model id (ORG/NAME or ORG/NAME@REVISION)");
  return r;
}

std::string origin_of(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  auto end = url.find('/', scheme + 3);
  return to_lower(url.substr(0, end));
}

std::string encode_path(const std::string& path) {
  std::string out, seg;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      out += net::url_encode(seg);
      if (i < path.size()) out += '/';
      seg.clear();
    } else {
      seg += path[i];
    }
  }
  return out;
}

void raise_for_status(const net::Response& r, const std::string& what, const std::string& repo, const std::string& endpoint) {
  if (r.status < 400) return;
  const std::string code = r.header("x-error-code"), message = r.header("x-error-message");
  std::string detail = message;
  if (detail.empty()) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) detail = j["error"].get<std::string>();
  }
  const std::string tail = detail.empty() ? "" : " (the Hub says: " + detail + ")";
  const std::string status = " [HTTP " + std::to_string(r.status) + "]";
  if (code == "RepoNotFound")
    fail(BIOESP_ERR_NOT_FOUND, what + ": repository '" + repo + "' not found on " + endpoint +
                                   "; if it is private, give a token (HF_TOKEN or --token)" + status);
  if (code == "RevisionNotFound") fail(BIOESP_ERR_NOT_FOUND, what + ": revision not found in '" + repo + "'" + tail + status);
  if (code == "EntryNotFound") fail(BIOESP_ERR_NOT_FOUND, what + ": no such file in '" + repo + "'" + tail + status);
  if (code == "GatedRepo")
    fail(BIOESP_ERR_NETWORK, what + ": '" + repo + "' is gated: accept its conditions at " + endpoint + "/" + repo +
                                 " while logged in, then use a token of that account" + tail + status);
  if (r.status == 401)
    fail(BIOESP_ERR_NETWORK, what + ": not authorised: the token is missing, invalid or expired" + tail + status);
  if (r.status == 403)
    fail(BIOESP_ERR_NETWORK, what + ": forbidden: the token has no access to '" + repo + "' (a write token is needed to publish)" + tail + status);
  if (r.status == 404) fail(BIOESP_ERR_NOT_FOUND, what + ": not found" + tail + status);
  fail(BIOESP_ERR_NETWORK, what + ": the Hub answered HTTP " + std::to_string(r.status) + tail);
}

Api::Api(Settings s)
    : s_(std::move(s)), http_(net::user_agent(""), s_.retry, s_.cancelled, s_.log) {}

std::vector<std::string> Api::auth() const {
  if (s_.token.empty()) return {};
  return {"Authorization: Bearer " + s_.token};
}

net::Response Api::call(net::Request r, const std::string& what, const std::string& repo, bool raise) {
  for (const auto& h : auth()) r.headers.push_back(h);
  net::Response res = http_.send(r);
  if (raise) raise_for_status(res, what, repo, s_.endpoint);
  return res;
}

std::string parse_commit(const net::Response& res, const std::string& what) {
  json j = json::parse(res.body, nullptr, false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string())
    fail(BIOESP_ERR_FORMAT, "the Hub's answer for " + what + " has no commit (sha)");
  std::string sha = j["sha"].get<std::string>();
  static const std::regex hex40("^[0-9a-f]{40}$");
  if (!std::regex_match(sha, hex40)) fail(BIOESP_ERR_FORMAT, "the Hub gave a malformed commit id for " + what);
  return sha;
}

std::vector<RemoteFile> Api::tree(const std::string& repo, const std::string& commit) {
  std::vector<RemoteFile> files;
  std::string next = url("/api/models/" + repo + "/tree/" + commit + "?recursive=true&expand=false");
  for (int page = 0; !next.empty(); ++page) {
    if (page > 10000) fail(BIOESP_ERR_FORMAT, "the tree listing of " + repo + " does not end");
    net::Request r;
    r.url = next;
    net::Response res = call(r, "listing " + repo, repo);
    json j = json::parse(res.body, nullptr, false);
    if (!j.is_array()) fail(BIOESP_ERR_FORMAT, "the tree listing of " + repo + " is not a JSON array");
    for (const auto& e : j) {
      if (!e.is_object() || e.value("type", "") != "file") continue;
      RemoteFile f;
      f.path = e.value("path", "");
      f.oid = e.value("oid", "");
      f.size = e.value("size", uint64_t{0});
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.sha256 = e["lfs"].value("oid", "");
        f.size = e["lfs"].value("size", f.size);
      }
      // Paths become cache paths: refuse anything that could leave the snapshot folder.
      if (f.path.empty() || f.path[0] == '/' || ("/" + f.path + "/").find("/../") != std::string::npos ||
          ("/" + f.path + "/").find("/./") != std::string::npos || f.path.find('\\') != std::string::npos)
        fail(BIOESP_ERR_FORMAT, "the tree listing of " + repo + " names an unsafe path: " + f.path);
      files.push_back(f);
    }
    next = next_link(res.header("link"));
    if (!next.empty() && next[0] == '/') next = s_.endpoint + next;
  }
  return files;
}

}  // namespace bioesp::hub
