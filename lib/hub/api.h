// The Hugging Face Hub's HTTP API as huggingface_hub speaks it: settings from the same environment
// variables, the token in an Authorization header (never logged), the Hub's error headers turned
// into clear messages.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/weights.h"
#include "net/http.h"

namespace bioesp::hub {

struct Settings {
  std::string endpoint;   // "": $HF_ENDPOINT, else https://huggingface.co
  std::string token;      // "": $HF_TOKEN, else the file $HF_HOME/token
  std::string cache_dir;  // "": $HF_HUB_CACHE, else $HF_HOME/hub (HF_HOME: ~/.cache/huggingface)
  bool offline = false;   // also when $HF_HUB_OFFLINE is 1/true/yes/on
  net::RetryPolicy retry;
  std::function<bool()> cancelled;
  io::Logger log;
};

// Settings with every empty field filled from the environment, as huggingface_hub does.
Settings resolve(Settings given);

// "org/name" or "org/name@revision".
struct RepoRef {
  std::string id;
  std::string revision = "main";
};
RepoRef parse_repo(const std::string& s);
// True for strings shaped like a Hub model id (one slash, the Hub's allowed characters).
bool looks_like_repo_id(const std::string& s);

// A file of a repository as the tree listing gives it.
struct RemoteFile {
  std::string path;
  uint64_t size = 0;
  std::string oid;     // git blob SHA-1 (for LFS files: of the pointer)
  std::string sha256;  // LFS files only
  // What the resolve endpoint sends as ETag (X-Linked-Etag for LFS): the blob's name in the cache.
  const std::string& etag() const { return sha256.empty() ? oid : sha256; }
};

class Api {
 public:
  explicit Api(Settings s);
  const Settings& settings() const { return s_; }
  net::Client& http() { return http_; }
  // "Authorization: Bearer …" when there is a token.
  std::vector<std::string> auth() const;
  // Sends with the token; with `raise`, statuses ≥ 400 become errors naming `what` (see
  // raise_for_status).
  net::Response call(net::Request r, const std::string& what, const std::string& repo, bool raise = true);
  std::string url(const std::string& path) const { return s_.endpoint + path; }

  // The recursive tree at a commit, following Link: rel="next" pages.
  std::vector<RemoteFile> tree(const std::string& repo, const std::string& commit);

 private:
  Settings s_;
  net::Client http_;
};

// Throws the error a Hub answer means (status ≥ 400): RepoNotFound, RevisionNotFound,
// EntryNotFound, GatedRepo, 401/403, others with the server's message.
void raise_for_status(const net::Response& r, const std::string& what, const std::string& repo,
                      const std::string& endpoint);
// The commit id in an answer of GET /api/models/{repo}/revision/{rev}.
std::string parse_commit(const net::Response& r, const std::string& what);
// "scheme://host[:port]" of a URL, for telling whether a redirect leaves the Hub.
std::string origin_of(const std::string& url);
// A repository path with each segment URL-encoded, slashes kept.
std::string encode_path(const std::string& path);

}  // namespace bioesp::hub
