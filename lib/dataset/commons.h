// Wikimedia Commons through the MediaWiki Action API: listing files of a category, a search or
// a list of titles with their image info and extmetadata (formatversion 2, or 1), following
// `continue` exactly as returned; licenses and credits as plain text; the free-license policy.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "net/http.h"

namespace bioesp::dataset {

struct FileInfo {
  std::string title;                     // "File:…"
  std::string page_url, url, thumb_url;  // description page, original, thumbnail
  std::string sha1, mime;                // of the original
  int64_t size = 0, width = 0, height = 0, thumb_width = 0, thumb_height = 0;
  std::string license, license_url, usage_terms, artist, credit, description, object_name, date, restrictions;
  std::vector<std::string> categories;
  bool attribution_required = true, copyrighted = true;
  bool has_imageinfo = false;
};

// One API answer: its files (pages without image info are kept by title, to be completed by the
// next answer when imageinfo stopped early), the continuation, or an API error.
struct ApiPage {
  std::vector<FileInfo> files;
  std::map<std::string, std::string> cont;  // every key of "continue", to echo back
  std::string error_code, error_info;
};
// Throws BIOESP_ERR_FORMAT for text that is not a MediaWiki answer.
ApiPage parse_api_response(const std::string& json);

// HTML from extmetadata (Artist, Credit, ImageDescription) as plain text.
std::string html_to_text(const std::string& html);

// "cc0", "pd", "cc-by", "cc-by-sa", or the license's own lower-case name for others.
std::string license_family(const FileInfo& f);
struct LicensePolicy {
  std::vector<std::string> allowed{"cc0", "pd", "cc-by", "cc-by-sa"};
  bool allow_restricted = false;  // personality rights, trademarks, …
};
// Why a file may not be used under the policy, or "" when it may.
std::string license_rejection(const FileInfo& f, const LicensePolicy& p);

struct Query {
  enum Kind { Category, Campaign, Search, Titles } kind = Category;
  std::string value;                 // category (with or without "Category:"), campaign, search text
  std::vector<std::string> titles;   // Titles: "File:…" (the prefix is added when missing)
  int thumb_width = 0;               // 0: no thumbnail URLs
};

// UploadWizard's tracking category of a campaign.
std::string campaign_category(const std::string& campaign);

// Lists every file of the query, retrying `maxlag`, `ratelimited` and HTTP failures, restarting
// on `badcontinue`. `on_page` sees the running count.
std::vector<FileInfo> list_files(net::Client& http, const std::string& api, const Query& q,
                                 const std::function<void(size_t)>& on_page, const io::Logger& log);

}  // namespace bioesp::dataset
