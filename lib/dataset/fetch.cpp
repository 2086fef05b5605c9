#include "dataset/fetch.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/hash.h"
#include "core/strings.h"
#include "image/image_io.h"
#include "io/file.h"

namespace bioesp::dataset {

using nlohmann::json;

const std::vector<int>& standard_widths() {
  static const std::vector<int> w{20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920, 3840};
  return w;
}

namespace {

bool matches_keywords(const FileInfo& f, const std::vector<std::string>& keywords) {
  if (keywords.empty()) return true;
  std::string hay = to_lower(f.title + "\n" + f.description + "\n" + f.object_name);
  for (const auto& c : f.categories) hay += "\n" + to_lower(c);
  for (const auto& k : keywords)
    if (!k.empty() && hay.find(to_lower(k)) != std::string::npos) return true;
  return false;
}

// Folders take names of at most 255 bytes, and ".part" is added while downloading: a longer
// name keeps its first bytes (whole UTF-8 characters), a hash of the title and its extension.
constexpr size_t kMaxFileName = 200;

std::string shortened(const std::string& name, const std::string& title) {
  if (name.size() <= kMaxFileName) return name;
  auto dot = name.rfind('.');
  const std::string ext = dot != std::string::npos && name.size() - dot <= 8 ? name.substr(dot) : "";
  Sha1 h;
  h.update(title.data(), title.size());
  const std::string tag = "-" + h.hex().substr(0, 12);
  size_t keep = kMaxFileName - tag.size() - ext.size();
  while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
  return name.substr(0, keep) + tag + ext;
}

// A file name from a title: no folders, no control characters; the extension of what is served.
std::string file_name(const FileInfo& f, const std::string& url) {
  std::string t = f.title;
  take_prefix(t, "File:");
  std::string name;
  for (unsigned char c : t) name += (c < 0x20 || c == '/' || c == '\\' || c == 0x7F) ? '_' : static_cast<char>(c);
  if (name.empty() || name[0] == '.') name = "_" + name;
  std::string served = url.substr(url.rfind('/') + 1);
  served = served.substr(0, served.find('?'));
  auto dot = served.rfind('.'), own = name.rfind('.');
  std::string ext = dot == std::string::npos ? "" : to_lower(served.substr(dot));
  if (!ext.empty() && (own == std::string::npos || to_lower(name.substr(own)) != ext)) name += ext;
  return shortened(name, f.title);
}

// Splitmix64: the same sample for the same seed on every platform.
uint64_t next(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

json manifest_line(const FileInfo& f, const std::string& file, const std::string& file_sha1, bool original) {
  json j;
  j["title"] = f.title;
  j["page_url"] = f.page_url;
  j["url"] = f.url;
  j["thumb_url"] = original ? "" : f.thumb_url;
  j["sha1"] = f.sha1;
  j["license"] = f.license;
  j["license_url"] = f.license_url;
  j["usage_terms"] = f.usage_terms;
  j["attribution_required"] = f.attribution_required;
  j["author"] = f.artist;
  j["credit"] = f.credit;
  j["description"] = f.description;
  j["object_name"] = f.object_name;
  j["categories"] = f.categories;
  j["date"] = f.date;
  j["width"] = f.width;
  j["height"] = f.height;
  j["size"] = f.size;
  j["mime"] = f.mime;
  j["file"] = file;
  j["file_sha1"] = file_sha1;
  return j;
}

}  // namespace

std::map<std::string, json> read_manifest(const std::string& dir, const std::string& name) {
  std::map<std::string, json> out;
  if (!io::is_file(dir + "/" + name)) return out;
  std::istringstream in(io::read_text_file(dir + "/" + name));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("file") && j["file"].is_string()) out[j["file"].get<std::string>()] = j;
  }
  return out;
}

void write_manifest(const std::string& dir, const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  io::write_text_file(dir + "/manifest.jsonl", text);
}

void write_attribution(const std::string& dir, const std::vector<std::string>& lines) {
  std::ostringstream o;
  o << "# Attribution\n\n"
    << "Each image in this folder is used under the license named with it below, and its authors are\n"
    << "credited as the license requires. Derived works of CC BY-SA images (including models trained\n"
    << "on them, where they are derived works) must be shared alike.\n\n";
  bool share_alike = false;
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    std::string title = j.value("title", ""), author = j.value("author", ""), license = j.value("license", "");
    if (title.empty()) continue;
    o << "- **" << title << "** (`" << j.value("file", "") << "`) — by " << (author.empty() ? "unknown author" : author) << ", "
      << (license.empty() ? "license unknown" : license);
    if (!j.value("license_url", "").empty()) o << " (" << j.value("license_url", "") << ")";
    if (!j.value("page_url", "").empty()) o << ", " << j.value("page_url", "");
    if (!j.value("credit", "").empty() && j.value("credit", "") != author) o << ". Credit: " << j.value("credit", "");
    o << "\n";
    share_alike = share_alike || to_lower(license).find("sa") != std::string::npos;
  }
  if (share_alike) o << "\nSome images are CC BY-SA: adaptations must carry the same license.\n";
  io::write_text_file(dir + "/ATTRIBUTION.md", o.str());
}

FetchReport fetch(const FetchOptions& o) {
  if (o.out.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no output folder given");
  if (!o.original) {
    const auto& w = standard_widths();
    if (std::find(w.begin(), w.end(), o.width) == w.end()) {
      std::string list;
      for (int x : w) list += (list.empty() ? "" : ", ") + std::to_string(x);
      fail(BIOESP_ERR_INVALID_ARGUMENT, "Commons serves thumbnails only at standard widths (" + list + "), not " +
                                            std::to_string(o.width) + "; pick one, or --original");
    }
  }
  if (o.limit < 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "limit must be ≥ 0");
  if (o.query.kind == Query::Titles ? o.query.titles.empty() : o.query.value.empty())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "no category, campaign, search text or titles given");
  std::atomic<bool> cancelled{false};
  std::mutex report_mutex;
  std::atomic<uint64_t> bytes{0};
  std::atomic<size_t> done{0};
  size_t total = 0;
  auto tell = [&](const std::string& title) {
    std::lock_guard<std::mutex> lock(report_mutex);
    if (o.progress && !o.progress(done.load(), total, bytes.load(), title)) cancelled = true;
  };
  net::Client lister(net::user_agent(o.contact), o.retry, [&] { return cancelled.load(); }, o.log);
  Query q = o.query;
  q.thumb_width = o.original ? 0 : o.width;
  tell("");
  if (cancelled) fail(BIOESP_ERR_CANCELLED, "fetch cancelled");
  auto files = list_files(lister, o.api, q, [&](size_t n) { tell("listed " + std::to_string(n) + " files"); }, o.log);

  FetchReport rep;
  rep.listed = files.size();
  std::vector<FileInfo> candidates;
  auto skip = [&](const FileInfo& f, const std::string& why) {
    rep.skipped.push_back({f.title, why});
    if (o.log) o.log(BIOESP_LOG_INFO, "skipping " + f.title + ": " + why);
  };
  for (auto& f : files) {
    if (!f.has_imageinfo) { skip(f, "the API gave no image information"); continue; }
    if (f.mime != "image/jpeg" && f.mime != "image/png" && o.original) { skip(f, "not a JPEG or PNG original (" + f.mime + ")"); continue; }
    if (!o.original && f.thumb_url.empty()) { skip(f, "no thumbnail (" + f.mime + ")"); continue; }
    std::string why = license_rejection(f, o.licenses);
    if (!why.empty()) { skip(f, why); continue; }
    if (!matches_keywords(f, o.keywords)) continue;  // not chosen, not an error
    candidates.push_back(std::move(f));
  }
  std::sort(candidates.begin(), candidates.end(), [](const FileInfo& a, const FileInfo& b) { return a.title < b.title; });
  if (o.limit > 0 && static_cast<size_t>(o.limit) < candidates.size()) {
    if (o.sample) {
      uint64_t s = o.seed;
      for (size_t i = candidates.size() - 1; i > 0; --i) std::swap(candidates[i], candidates[next(s) % (i + 1)]);
      candidates.resize(static_cast<size_t>(o.limit));
      std::sort(candidates.begin(), candidates.end(), [](const FileInfo& a, const FileInfo& b) { return a.title < b.title; });
    } else {
      candidates.resize(static_cast<size_t>(o.limit));
    }
  }
  rep.selected = candidates.size();
  total = candidates.size();
  io::make_directories(o.out);

  // What an earlier run verified: file → its bytes' SHA-1.
  std::map<std::string, std::string> known;
  for (const auto& [file, j] : read_manifest(o.out)) known[file] = j.value("file_sha1", "");
  std::vector<std::string> lines(candidates.size());
  std::vector<std::string> failure(candidates.size());
  std::set<std::string> names;
  std::vector<std::string> file_of(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    std::string n = file_name(candidates[i], o.original ? candidates[i].url : candidates[i].thumb_url);
    while (!names.insert(n).second) n = "_" + n;
    file_of[i] = n;
  }
  std::atomic<size_t> cursor{0}, downloaded{0}, already{0};
  auto worker = [&] {
    net::Client http(net::user_agent(o.contact), o.retry, [&] { return cancelled.load(); }, o.log);
    for (size_t i; !cancelled && (i = cursor++) < candidates.size();) {
      const FileInfo& f = candidates[i];
      const std::string path = o.out + "/" + file_of[i], part = path + ".part";
      try {
        tell(f.title);
        bool have = false;
        if (io::is_file(path)) {
          std::string sum = sha1_file(path);
          auto k = known.find(file_of[i]);
          have = o.original ? sum == f.sha1 : (k != known.end() && k->second == sum);
          if (have) {
            lines[i] = manifest_line(f, file_of[i], sum, o.original).dump();
            ++already;
          }
        }
        if (!have) {
          const std::string& url = o.original ? f.url : f.thumb_url;
          uint64_t before = 0;
          http.download(url, part, [&](uint64_t size) {
            bytes += size - before;
            before = size;
          });
          std::string sum = sha1_file(part);
          if (o.original && sum != f.sha1) {
            std::remove(part.c_str());
            fail(BIOESP_ERR_MISMATCH, "SHA-1 " + sum + " differs from Commons' " + f.sha1 + " (corrupted download)");
          }
          image::Image img;
          try {
            img = image::read_image(part, /*reduce=*/true);
          } catch (const Error& e) {
            std::remove(part.c_str());
            fail(BIOESP_ERR_FORMAT, std::string("the download is not a readable image: ") + e.what());
          }
          if (!o.original && f.thumb_width > 0 && (img.width != static_cast<uint32_t>(f.thumb_width) && img.height != static_cast<uint32_t>(f.thumb_height))) {
            std::remove(part.c_str());
            fail(BIOESP_ERR_MISMATCH, "the thumbnail is " + std::to_string(img.width) + "×" + std::to_string(img.height) +
                                          ", not the announced " + std::to_string(f.thumb_width) + "×" + std::to_string(f.thumb_height));
          }
          if (std::rename(part.c_str(), path.c_str()) != 0)
            fail(BIOESP_ERR_IO, "cannot rename " + part + ": " + std::strerror(errno));
          lines[i] = manifest_line(f, file_of[i], sum, o.original).dump();
          ++downloaded;
        }
      } catch (const Error& e) {
        if (e.status() == BIOESP_ERR_CANCELLED) {
          cancelled = true;
          break;
        }
        failure[i] = e.what();  // this file is skipped with its reason (a write error too); the rest go on
      }
      ++done;
      tell(f.title);
    }
  };
  std::vector<std::thread> pool;
  const int n = std::max(1, std::min(o.threads, 3));
  for (int t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  rep.downloaded = downloaded;
  rep.already = already;

  // Whatever finished is recorded, also when cancelled: a rerun skips it.
  std::vector<std::string> kept;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!lines[i].empty()) kept.push_back(lines[i]);
    else if (!failure[i].empty()) skip(candidates[i], failure[i]);
  }
  write_manifest(o.out, kept);
  write_attribution(o.out, kept);
  if (cancelled) fail(BIOESP_ERR_CANCELLED, "fetch cancelled; finished files are kept and a rerun continues");
  return rep;
}

}  // namespace bioesp::dataset
