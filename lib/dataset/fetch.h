// Building a dataset folder from Commons: list, filter by license and keywords, sample, download
// (verified, resumable, at most `threads` transfers at once), then manifest.jsonl and
// ATTRIBUTION.md. Re-running downloads nothing already verified.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataset/commons.h"

namespace bioesp::dataset {

// Widths Commons renders thumbnails at; others are refused by its servers.
const std::vector<int>& standard_widths();

struct FetchOptions {
  std::string api = "https://commons.wikimedia.org/w/api.php";
  Query query;
  int limit = 0;                      // 0: all
  uint64_t seed = 0;                  // random sample when limit < the candidates
  bool sample = true;                 // false: the first `limit` by title
  int width = 512;                    // thumbnail width (a standard one) unless original
  bool original = false;
  LicensePolicy licenses;
  std::vector<std::string> keywords;  // any of them in title, description, object name or categories
  std::string contact;                // for the User-Agent
  std::string out;
  int threads = 3;
  net::RetryPolicy retry;
  io::Logger log;
  // (files done, files in all, bytes, current title); return false to cancel.
  std::function<bool(size_t, size_t, uint64_t, const std::string&)> progress;
};

struct Skipped {
  std::string title, reason;
};
struct FetchReport {
  size_t listed = 0, selected = 0, downloaded = 0, already = 0;
  std::vector<Skipped> skipped;
};

FetchReport fetch(const FetchOptions& o);

// A folder's manifest.jsonl (or another manifest file `name` there) by file name (lines that are
// not objects with a "file" are skipped); empty when there is none.
std::map<std::string, nlohmann::json> read_manifest(const std::string& dir, const std::string& name = "manifest.jsonl");
// Manifest lines (JSON objects, one per image) and the attribution file they imply.
void write_manifest(const std::string& dir, const std::vector<std::string>& lines);
void write_attribution(const std::string& dir, const std::vector<std::string>& lines);

}  // namespace bioesp::dataset
