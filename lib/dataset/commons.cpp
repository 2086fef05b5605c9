#include "dataset/commons.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"

namespace bioesp::dataset {

using nlohmann::json;

namespace {

std::string text_of(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  if (j.is_number()) return j.dump();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return "";
}

std::string get(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it == obj.end() ? "" : text_of(*it);
}

int64_t get_int(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  // A number that does not fit (1e21, 2^64 - 1, NaN) is as unknown as a missing one.
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    return u <= uint64_t(INT64_MAX) ? int64_t(u) : 0;
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) {
    const double d = it->get<double>();
    return d > -9.2e18 && d < 9.2e18 ? static_cast<int64_t>(d) : 0;
  }
  return 0;
}

std::string meta(const json& ext, const char* key) {
  if (!ext.is_object()) return "";
  auto it = ext.find(key);
  if (it == ext.end() || !it->is_object()) return "";
  return get(*it, "value");
}

bool truthy(const std::string& s, bool fallback) {
  const std::string v = to_lower(s);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return fallback;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(start, end - start);
    if (!part.empty()) out.push_back(part);
    start = end + 1;
  }
  return out;
}

FileInfo page_info(const json& page) {
  FileInfo f;
  f.title = get(page, "title");
  auto ii = page.find("imageinfo");
  if (ii == page.end() || !ii->is_array() || ii->empty() || !(*ii)[0].is_object()) return f;
  const json& i = (*ii)[0];
  f.has_imageinfo = true;
  f.url = get(i, "url");
  f.page_url = get(i, "descriptionurl");
  f.thumb_url = get(i, "thumburl");
  f.sha1 = get(i, "sha1");
  f.mime = get(i, "mime");
  f.size = get_int(i, "size");
  f.width = get_int(i, "width");
  f.height = get_int(i, "height");
  f.thumb_width = get_int(i, "thumbwidth");
  f.thumb_height = get_int(i, "thumbheight");
  const json ext = i.contains("extmetadata") ? i["extmetadata"] : json::object();
  f.license = meta(ext, "LicenseShortName");
  if (f.license.empty()) f.license = meta(ext, "License");
  f.license_url = meta(ext, "LicenseUrl");
  f.usage_terms = html_to_text(meta(ext, "UsageTerms"));
  f.artist = html_to_text(meta(ext, "Artist"));
  f.credit = html_to_text(meta(ext, "Credit"));
  f.description = html_to_text(meta(ext, "ImageDescription"));
  f.object_name = html_to_text(meta(ext, "ObjectName"));
  f.date = html_to_text(meta(ext, "DateTimeOriginal"));
  f.restrictions = meta(ext, "Restrictions");
  f.categories = split(meta(ext, "Categories"), '|');
  f.attribution_required = truthy(meta(ext, "AttributionRequired"), true);
  f.copyrighted = truthy(meta(ext, "Copyrighted"), true);
  return f;
}

}  // namespace

ApiPage parse_api_response(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(BIOESP_ERR_FORMAT, "the API answer is not JSON (an HTML error page?)");
  ApiPage p;
  if (j.contains("error")) {
    p.error_code = get(j["error"], "code");
    p.error_info = get(j["error"], "info");
    if (p.error_code.empty()) p.error_code = "unknown";
    return p;
  }
  if (j.contains("continue") && j["continue"].is_object())
    for (const auto& [k, v] : j["continue"].items()) p.cont[k] = text_of(v);
  if (!j.contains("query")) return p;  // an empty category answers without "query"
  const json& q = j["query"];
  if (!q.is_object() || !q.contains("pages")) return p;
  const json& pages = q["pages"];
  auto add = [&](const json& page) {
    if (!page.is_object()) return;
    if (page.contains("missing") || page.contains("invalid")) return;
    FileInfo f = page_info(page);
    if (!f.title.empty()) p.files.push_back(std::move(f));
  };
  if (pages.is_array()) {  // formatversion 2
    for (const auto& page : pages) add(page);
  } else if (pages.is_object()) {  // formatversion 1: keyed by page id (negative when missing)
    for (const auto& [id, page] : pages.items()) add(page);
  } else {
    fail(BIOESP_ERR_FORMAT, "the API answer's query.pages is neither a list nor an object");
  }
  return p;
}

std::string html_to_text(const std::string& html) {
  std::string out;
  bool space = false;
  auto put = [&](const std::string& s) {
    for (char c : s) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        space = !out.empty();
        continue;
      }
      if (space) out += ' ';
      space = false;
      out += c;
    }
  };
  for (size_t i = 0; i < html.size();) {
    char c = html[i];
    if (c == '<') {
      size_t end = html.find('>', i);
      if (end == std::string::npos) break;
      const std::string tag = to_lower(html.substr(i + 1, end - i - 1));
      if (starts_with(tag, "br") || starts_with(tag, "p") || starts_with(tag, "/p") || starts_with(tag, "li") ||
          starts_with(tag, "div") || starts_with(tag, "/div"))
        space = !out.empty();
      i = end + 1;
    } else if (c == '&') {
      size_t end = html.find(';', i);
      if (end == std::string::npos || end - i > 10) {
        put("&");
        ++i;
        continue;
      }
      std::string e = html.substr(i + 1, end - i - 1);
      static const std::map<std::string, std::string> named{{"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""},
                                                            {"apos", "'"}, {"nbsp", " "}};
      // HTML's Latin-1 names (Spanish accents among them) and common punctuation, as code points.
      static const std::map<std::string, unsigned long> latin{{"AElig", 0xC6}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Agrave", 0xC0}, {"Aring", 0xC5}, {"Atilde", 0xC3}, {"Auml", 0xC4}, {"Ccedil", 0xC7}, {"ETH", 0xD0}, {"Eacute", 0xC9}, {"Ecirc", 0xCA}, {"Egrave", 0xC8}, {"Euml", 0xCB}, {"Iacute", 0xCD}, {"Icirc", 0xCE}, {"Igrave", 0xCC}, {"Iuml", 0xCF}, {"Ntilde", 0xD1}, {"Oacute", 0xD3}, {"Ocirc", 0xD4}, {"Ograve", 0xD2}, {"Oslash", 0xD8}, {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"THORN", 0xDE}, {"Uacute", 0xDA}, {"Ucirc", 0xDB}, {"Ugrave", 0xD9}, {"Uuml", 0xDC}, {"Yacute", 0xDD}, {"aacute", 0xE1}, {"acirc", 0xE2}, {"acute", 0xB4}, {"aelig", 0xE6}, {"agrave", 0xE0}, {"aring", 0xE5}, {"atilde", 0xE3}, {"auml", 0xE4}, {"brvbar", 0xA6}, {"bull", 0x2022}, {"ccedil", 0xE7}, {"cedil", 0xB8}, {"cent", 0xA2}, {"copy", 0xA9}, {"curren", 0xA4}, {"deg", 0xB0}, {"divide", 0xF7}, {"eacute", 0xE9}, {"ecirc", 0xEA}, {"egrave", 0xE8}, {"emsp", 0x2003}, {"ensp", 0x2002}, {"eth", 0xF0}, {"euml", 0xEB}, {"euro", 0x20AC}, {"frac12", 0xBD}, {"frac14", 0xBC}, {"frac34", 0xBE}, {"hellip", 0x2026}, {"iacute", 0xED}, {"icirc", 0xEE}, {"iexcl", 0xA1}, {"igrave", 0xEC}, {"iquest", 0xBF}, {"iuml", 0xEF}, {"laquo", 0xAB}, {"ldquo", 0x201C}, {"lrm", 0x200E}, {"lsquo", 0x2018}, {"macr", 0xAF}, {"mdash", 0x2014}, {"micro", 0xB5}, {"middot", 0xB7}, {"nbsp", 0xA0}, {"ndash", 0x2013}, {"not", 0xAC}, {"ntilde", 0xF1}, {"oacute", 0xF3}, {"ocirc", 0xF4}, {"ograve", 0xF2}, {"ordf", 0xAA}, {"ordm", 0xBA}, {"oslash", 0xF8}, {"otilde", 0xF5}, {"ouml", 0xF6}, {"para", 0xB6}, {"plusmn", 0xB1}, {"pound", 0xA3}, {"raquo", 0xBB}, {"rdquo", 0x201D}, {"reg", 0xAE}, {"rlm", 0x200F}, {"rsquo", 0x2019}, {"sect", 0xA7}, {"shy", 0xAD}, {"sup1", 0xB9}, {"sup2", 0xB2}, {"sup3", 0xB3}, {"szlig", 0xDF}, {"thinsp", 0x2009}, {"thorn", 0xFE}, {"times", 0xD7}, {"trade", 0x2122}, {"uacute", 0xFA}, {"ucirc", 0xFB}, {"ugrave", 0xF9}, {"uml", 0xA8}, {"uuml", 0xFC}, {"yacute", 0xFD}, {"yen", 0xA5}, {"yuml", 0xFF}, {"zwj", 0x200D}, {"zwnj", 0x200C}};
      auto it = named.find(e);
      auto lt = latin.find(e);
      std::string rep;
      if (it != named.end()) {
        rep = it->second;
      } else if (lt != latin.end() || (e.size() > 1 && e[0] == '#')) {
        unsigned long cp = lt != latin.end() ? lt->second
                           : e[1] == 'x' || e[1] == 'X' ? std::strtoul(e.c_str() + 2, nullptr, 16)
                                                        : std::strtoul(e.c_str() + 1, nullptr, 10);
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
        if (cp < 0x80) rep += static_cast<char>(cp);
        else if (cp < 0x800) rep += static_cast<char>(0xC0 | (cp >> 6)), rep += static_cast<char>(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
          rep += static_cast<char>(0xE0 | (cp >> 12)), rep += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
              rep += static_cast<char>(0x80 | (cp & 0x3F));
        else
          rep += static_cast<char>(0xF0 | (cp >> 18)), rep += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
              rep += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), rep += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        rep = "&" + e + ";";
      }
      put(rep == " " ? std::string(" ") : rep);
      i = end + 1;
    } else {
      size_t next = html.find_first_of("<&", i);
      put(html.substr(i, next == std::string::npos ? std::string::npos : next - i));
      i = next == std::string::npos ? html.size() : next;
    }
  }
  return out;
}

std::string license_family(const FileInfo& f) {
  std::string l = to_lower(f.license);
  for (char& c : l)
    if (c == ' ' || c == '_') c = '-';
  if (l.find("cc0") != std::string::npos || l.find("cc-zero") != std::string::npos) return "cc0";
  if (starts_with(l, "pd") || l.find("public-domain") != std::string::npos) return "pd";
  if (starts_with(l, "cc-by")) {
    if (l.find("-nc") != std::string::npos || l.find("-nd") != std::string::npos) return l;
    return starts_with(l, "cc-by-sa") ? "cc-by-sa" : "cc-by";
  }
  return l.empty() ? "unknown" : l;
}

std::string license_rejection(const FileInfo& f, const LicensePolicy& p) {
  std::string fam = license_family(f);
  if (std::find(p.allowed.begin(), p.allowed.end(), fam) == p.allowed.end())
    return "license '" + (f.license.empty() ? std::string("none given") : f.license) + "' is not among the allowed licenses";
  if (!f.restrictions.empty() && !p.allow_restricted) return "restricted (" + f.restrictions + ")";
  return "";
}

std::string campaign_category(const std::string& campaign) {
  std::string c = campaign;
  take_prefix(c, "Campaign:");
  return "Category:Uploaded via Campaign:" + c;
}

std::vector<FileInfo> list_files(net::Client& http, const std::string& api, const Query& q,
                                 const std::function<void(size_t)>& on_page, const io::Logger& log) {
  std::string base = api + (api.find('?') == std::string::npos ? "?" : "&") +
                     "action=query&format=json&formatversion=2&maxlag=5&prop=imageinfo"
                     "&iiprop=url%7Csize%7Cmime%7Csha1%7Cextmetadata&iiextmetadatalanguage=es";
  if (q.thumb_width > 0) base += "&iiurlwidth=" + std::to_string(q.thumb_width);
  std::vector<std::string> requests;  // one listing per title batch, or one for a generator
  if (q.kind == Query::Titles) {
    for (size_t i = 0; i < q.titles.size(); i += 50) {
      std::string titles;
      for (size_t k = i; k < std::min(q.titles.size(), i + 50); ++k) {
        std::string t = q.titles[k];
        if (!starts_with(t, "File:")) t = "File:" + t;
        titles += (titles.empty() ? "" : "|") + t;
      }
      requests.push_back(base + "&titles=" + net::url_encode(titles));
    }
  } else if (q.kind == Query::Search) {
    requests.push_back(base + "&generator=search&gsrnamespace=6&gsrlimit=50&gsrsearch=" + net::url_encode(q.value));
  } else {
    std::string cat = q.kind == Query::Campaign ? campaign_category(q.value) : q.value;
    if (!starts_with(cat, "Category:")) cat = "Category:" + cat;
    requests.push_back(base + "&generator=categorymembers&gcmtype=file&gcmlimit=50&gcmtitle=" + net::url_encode(cat));
  }
  std::vector<FileInfo> files;
  std::map<std::string, size_t> index;  // title → position
  for (const auto& first : requests) {
    std::map<std::string, std::string> cont;
    int restarts = 0, api_retries = 0;
    for (;;) {
      std::string url = first;
      for (const auto& [k, v] : cont) url += "&" + net::url_encode(k) + "=" + net::url_encode(v);
      net::Response r = http.get(url);
      if (r.status != 200) fail(BIOESP_ERR_NETWORK, api + ": HTTP " + std::to_string(r.status));
      ApiPage page = parse_api_response(r.body);
      if (!page.error_code.empty()) {
        if (page.error_code == "maxlag" || page.error_code == "ratelimited") {
          if (++api_retries > 10) fail(BIOESP_ERR_NETWORK, api + ": " + page.error_code + " persists: " + page.error_info);
          double d = http.delay(api_retries - 1, &r);
          if (log) log(BIOESP_LOG_INFO, "Commons asks to wait (" + page.error_code + "): " + std::to_string(d).substr(0, 4) + " s");
          http.wait(d);
          continue;
        }
        if (page.error_code == "badcontinue" && restarts++ < 2) {
          if (log) log(BIOESP_LOG_WARNING, "the listing's continuation expired; starting the listing again");
          cont.clear();
          continue;
        }
        fail(BIOESP_ERR_NETWORK, api + ": API error " + page.error_code + ": " + page.error_info);
      }
      api_retries = 0;
      for (auto& f : page.files) {
        auto it = index.find(f.title);
        if (it == index.end()) {
          index[f.title] = files.size();
          files.push_back(std::move(f));
        } else if (f.has_imageinfo && !files[it->second].has_imageinfo) {
          files[it->second] = std::move(f);  // imageinfo arrived with a later answer (iicontinue)
        }
      }
      if (on_page) on_page(files.size());
      if (page.cont.empty()) break;
      cont = page.cont;
    }
  }
  return files;
}

}  // namespace bioesp::dataset
