// C entry points for datasets: Commons fetch and preparation.
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "api/guard.h"
#include "api/options.h"
#include "dataset/fetch.h"
#include "dataset/prepare.h"

using namespace bioesp;

namespace {

std::vector<std::string> comma_list(const char* s) {
  std::vector<std::string> out;
  if (!s) return out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

}  // namespace

extern "C" {

void bioesp_fetch_options_init(bioesp_fetch_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->width = 500;
  o->max_retries = 6;
  o->retry_delay = 1.0;
}

bioesp_status bioesp_fetch(const bioesp_fetch_options* options, size_t* downloaded, size_t* skipped) {
  return guard([&] {
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_FETCH, options, bioesp_fetch_options_init);
    require(o.out != nullptr, "out must be set");
    dataset::FetchOptions f;
    switch (o.source) {
      case BIOESP_SOURCE_CATEGORY: f.query.kind = dataset::Query::Category; break;
      case BIOESP_SOURCE_CAMPAIGN: f.query.kind = dataset::Query::Campaign; break;
      case BIOESP_SOURCE_SEARCH: f.query.kind = dataset::Query::Search; break;
      case BIOESP_SOURCE_TITLES: f.query.kind = dataset::Query::Titles; break;
    }
    if (o.value) f.query.value = o.value;
    f.query.titles.assign(o.titles, o.titles + o.num_titles);
    const char* env = std::getenv("BIOESP_COMMONS_API");
    if (o.api) f.api = o.api;
    else if (env && *env) f.api = env;
    f.limit = o.limit;
    f.seed = o.seed;
    f.width = o.width;
    f.original = o.original != 0;
    auto licenses = comma_list(o.licenses);
    if (!licenses.empty()) f.licenses.allowed = licenses;
    f.licenses.allow_restricted = o.allow_restricted != 0;
    f.keywords = comma_list(o.keywords);
    if (o.contact) f.contact = o.contact;
    f.out = o.out;
    f.retry.max_retries = o.max_retries;
    f.retry.base_delay = o.retry_delay;
    f.log = c_logger(o.log, o.log_user);
    f.progress = [fn = o.progress, user = o.progress_user](size_t done, size_t total, uint64_t bytes, const std::string& item) {
      return call_progress(fn, user, total == 0 ? "list" : "download", done, total, item.c_str(), bytes);
    };
    auto rep = dataset::fetch(f);
    if (downloaded) *downloaded = rep.downloaded;
    if (skipped) *skipped = rep.skipped.size();
  });
}

void bioesp_prepare_options_init(bioesp_prepare_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->size = 512;
  o->background[0] = o->background[1] = o->background[2] = 255;
  o->near_duplicate_distance = 4;
}

bioesp_status bioesp_prepare(const bioesp_prepare_options* options, size_t* prepared, size_t* skipped) {
  return guard([&] {
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_PREPARE, options, bioesp_prepare_options_init);
    require(o.in && o.out, "in and out must be set");
    dataset::PrepareOptions p;
    p.in = o.in;
    p.out = o.out;
    p.size = o.size;
    if (o.crop) p.crop = o.crop;
    p.background = {o.background[0], o.background[1], o.background[2]};
    if (o.caption) p.caption = o.caption;
    p.caption_from_metadata = o.caption_from_metadata != 0;
    p.near_duplicate_distance = o.near_duplicate_distance;
    p.log = c_logger(o.log, o.log_user);
    p.progress = [fn = o.progress, user = o.progress_user](size_t done, size_t total, const std::string& item) {
      return call_progress(fn, user, "prepare", done, total, item.c_str());
    };
    auto rep = dataset::prepare(p);
    if (prepared) *prepared = rep.prepared;
    if (skipped) *skipped = rep.skipped.size();
  });
}

}  // extern "C"
