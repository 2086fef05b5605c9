// C entry points for the Hugging Face Hub: pull and push.
#include <cstring>

#include "api/guard.h"
#include "api/options.h"
#include "hub/pull.h"
#include "hub/push.h"

using namespace bioesp;

namespace {

// The fields both option structs share.
template <class O>
hub::Settings settings_of(const O& o) {
  hub::Settings s;
  if (o.endpoint) s.endpoint = o.endpoint;
  if (o.token) s.token = o.token;
  s.retry.max_retries = o.max_retries;
  s.retry.base_delay = o.retry_delay;
  s.log = c_logger(o.log, o.log_user);
  return s;
}

// Pull and push share their defaults: six retries from a one-second backoff.
template <class T>
void init_options(T* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->max_retries = 6;
  o->retry_delay = 1.0;
}

}  // namespace

extern "C" {

void bioesp_pull_options_init(bioesp_pull_options* o) { init_options(o); }

bioesp_status bioesp_pull(const bioesp_pull_options* options, char** snapshot_path) {
  return guard([&] {
    if (snapshot_path) *snapshot_path = nullptr;
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_PULL, options, bioesp_pull_options_init);
    require(o.repo != nullptr, "repo must be set");
    hub::PullOptions p;
    p.repo = o.repo;
    if (o.revision) p.revision = o.revision;
    p.include.assign(o.include, o.include + o.num_include);
    if (o.variant) p.variant = o.variant;
    p.settings = settings_of(o);
    if (o.cache_dir) p.settings.cache_dir = o.cache_dir;
    p.settings.offline = o.offline != 0;
    p.progress = [fn = o.progress, user = o.progress_user](size_t done, size_t total, uint64_t bytes, const std::string& item) {
      return call_progress(fn, user, "download", done, total, item.c_str(), bytes);
    };
    auto r = hub::pull(p);
    if (snapshot_path) *snapshot_path = dup_string(r.snapshot);
  });
}

void bioesp_push_options_init(bioesp_push_options* o) { init_options(o); }

bioesp_status bioesp_push(const bioesp_push_options* options, char** commit_url) {
  return guard([&] {
    if (commit_url) *commit_url = nullptr;
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_PUSH, options, bioesp_push_options_init);
    require(o.path && o.repo, "path and repo must be set");
    hub::PushOptions p;
    p.path = o.path;
    p.repo = o.repo;
    p.private_repo = o.private_repo != 0;
    if (o.commit_message) p.commit_message = o.commit_message;
    if (o.base_model) p.base_model = o.base_model;
    if (o.dataset) p.dataset = o.dataset;
    p.settings = settings_of(o);
    p.progress = [fn = o.progress, user = o.progress_user](size_t done, size_t total, uint64_t bytes, const std::string& item) {
      return call_progress(fn, user, "upload", done, total, item.c_str(), bytes);
    };
    auto r = hub::push(p);
    if (commit_url) *commit_url = dup_string(r.commit_url);
  });
}

}  // extern "C"
