#include "datasets.h"

#include <cctype>
#include <map>
#include <sstream>

#include "options.h"
#include "request.h"
#include "rules.h"
#include "strings.h"

namespace studio {

struct Datasets::Run {
  Datasets* owner = nullptr;
  std::string name;
  json settings;
  std::atomic<bool> cancel{false};
  int64_t last_event = 0;
  std::vector<std::string> notes;  // why files were left out, and retries (the log), capped
};

Datasets::Datasets(const Config& cfg, EventBus& bus) : cfg_(cfg), bus_(bus) { fs::create_directories(cfg_.datasets); }
Datasets::~Datasets() = default;

json Datasets::list() {
  json items = json::array(), skipped = json::array();
  for (const auto& d : listing(cfg_.datasets, true, skipped)) {
    json ignored;  // a picture's bad name is reported when the dataset is shown
    size_t n = 0;
    for (const auto& f : listing(d, false, ignored)) n += is_picture(f);
    if (n) items.push_back(json{{"name", d.filename().string()}, {"images", n}, {"manifest", fs::exists(d / "manifest.jsonl")}});
  }
  return json{{"items", items}, {"skipped", skipped}};
}

json Datasets::one(const std::string& name) {
  const fs::path dir = confined(cfg_.datasets, name);
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) throw HttpError(404, say("no_dataset", {{"name", name}}));
  std::map<std::string, json> manifest;
  std::istringstream lines(read_file(dir / "manifest.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    json j = parse_json(line);
    if (j.is_object() && j.contains("file") && j["file"].is_string()) manifest[j["file"]] = j;
  }
  json items = json::array(), skipped = json::array();
  for (const auto& f : listing(dir, false, skipped)) {
    if (!is_picture(f)) continue;
    const std::string file = f.filename().string();
    json item{{"file", file}};
    auto it = manifest.find(file);
    if (it != manifest.end())
      for (const char* k : {"caption", "author", "license", "license_url", "page_url", "title", "credit"})
        if (it->second.contains(k) && it->second[k].is_string()) item[k] = it->second[k];
    fs::path txt = f;
    txt.replace_extension(".txt");
    if (!item.contains("caption") && fs::is_regular_file(txt, ec)) {
      std::string c = read_file(txt);
      while (!c.empty() && (c.back() == '\n' || c.back() == '\r')) c.pop_back();
      item["caption"] = c;
    }
    items.push_back(item);
  }
  return json{{"name", name}, {"items", items}, {"attribution", fs::exists(dir / "ATTRIBUTION.md")}, {"skipped", skipped}};
}

// A new dataset from Commons: a category, an upload campaign or a search; licenses and
// restrictions as bioesp fetch checks them; credits kept in the manifest and ATTRIBUTION.md.
std::string Datasets::fetch(const json& j) {
  refuse_unknown(j, {BIOESP_OPTIONS_FETCH, BIOESP_OPTIONS_PREPARE}, {"name"});
  const std::string value = text_field(j, "value");
  if (value.empty()) throw HttpError(400, say("need_fetch_value"));
  std::string name = name_field(j, "name");
  if (name.empty()) {
    for (unsigned char c : value) name += std::isalnum(c) || c >= 0x80 ? static_cast<char>(c) : '-';
    if (name.size() > 60) name.resize(60);
    while (!name.empty() && !valid_utf8(name)) name.pop_back();  // no half letter
    if (!safe_name(name)) throw HttpError(400, say("bad_name", {{"field", field_name("name")}}));
  }
  if (fs::exists(cfg_.datasets / name)) throw HttpError(409, say("dataset_exists", {{"name", name}}));
  Fields fetch(BIOESP_OPTIONS_FETCH), prepare(BIOESP_OPTIONS_PREPARE);
  fetch.take(j);
  prepare.set("size", std::to_string(cfg_.native_size > 0 ? cfg_.native_size : 512));  // the model's, unless asked
  prepare.take(j);
  auto run = std::make_shared<Run>();
  run->owner = this;
  run->name = name;
  run->settings = json{{"fetch", fetch.values()}, {"prepare", prepare.values()}};
  runs_.start(run, "fetch_busy", [&] { bus_.publish("fetch", json{{"name", name}, {"state", "starting"}, {"settings", run->settings}}); },
              [this](Run& r) { work(r); });
  return name;
}

void Datasets::cancel() { runs_.cancel("no_download"); }

int Datasets::on_progress(void* user, const bioesp_progress* p) {
  auto& run = *static_cast<Run*>(user);
  const int64_t t = now_ms();
  if (p->current == p->total || t - run.last_event >= 200) {
    run.last_event = t;
    run.owner->bus_.publish("fetch", json{{"name", run.name}, {"state", "running"}, {"stage", p->stage}, {"current", p->current},
                                          {"total", p->total}, {"item", p->item ? p->item : ""}});
  }
  return run.cancel ? 1 : 0;
}

void Datasets::on_log(void* user, bioesp_log_level level, const char* message) {
  auto& run = *static_cast<Run*>(user);
  if (level < BIOESP_LOG_INFO || run.notes.size() >= rules::max_notes) return;
  run.notes.push_back(message);
  run.owner->bus_.publish("fetch", json{{"name", run.name}, {"state", "running"}, {"note", message}});
}

void Datasets::work(Run& run) {
  json done{{"name", run.name}};
  try {
    const std::string raw = (cfg_.downloads / run.name).string(), out = (cfg_.datasets / run.name).string();
    Fields fetch(BIOESP_OPTIONS_FETCH), prepare(BIOESP_OPTIONS_PREPARE);
    fetch.take(run.settings["fetch"]);  // checked by Datasets::fetch
    if (!cfg_.contact.empty()) fetch.set("contact", cfg_.contact);
    if (!cfg_.commons_api.empty()) fetch.set("api", cfg_.commons_api);
    fetch.set("out", raw);
    auto& fo = fetch.as<bioesp_fetch_options>();
    fo.progress = on_progress;
    fo.progress_user = &run;
    fo.log = on_log;
    fo.log_user = &run;
    size_t downloaded = 0, skipped = 0, prepared = 0, dropped = 0;
    bioesp_status st = bioesp_fetch(&fo, &downloaded, &skipped);
    if (st == BIOESP_OK) {
      prepare.take(run.settings["prepare"]);
      prepare.set("in", raw);
      prepare.set("out", out);
      auto& po = prepare.as<bioesp_prepare_options>();
      po.progress = on_progress;
      po.progress_user = &run;
      po.log = on_log;
      po.log_user = &run;
      st = bioesp_prepare(&po, &prepared, &dropped);
    }
    if (st == BIOESP_OK) done["state"] = "done";
    else if (st == BIOESP_ERR_CANCELLED) done["state"] = "stopped";
    else done["state"] = "failed", done["error"] = last_error("dataset");
    done["downloaded"] = downloaded, done["skipped"] = skipped, done["prepared"] = prepared;
    done["notes"] = run.notes;
  } catch (const std::exception& e) {  // nothing may leave this thread
    done["state"] = "failed", done["error"] = e.what();
  }
  runs_.finish([&] { bus_.publish("fetch", done); });
}

}  // namespace studio
