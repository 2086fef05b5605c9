#include "training.h"

#include <signal.h>

#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "options.h"
#include "request.h"
#include "rules.h"
#include "strings.h"

extern "C" {
#include "../cli.h"
}

namespace studio {
namespace {

std::vector<std::string> validation_pictures(const fs::path& out) {
  json ignored;
  std::vector<std::string> v;
  for (const auto& f : listing(out / "validation", false, ignored))
    if (f.extension() == ".png") v.push_back(f.filename().string());
  return v;
}

// The other ranks of a training across `nproc` processes, started as `bioesp train --nproc`
// starts its workers (launch.c), with the training's options as their arguments. This process is
// rank 0: the page follows its progress, and its Stop reaches every rank (the library stops them
// all after the same step). Made and finished on the training's thread, which the workers outlive
// only by SIGTERM.
class Workers {
 public:
  // Starts ranks 1 to nproc - 1 with `o`'s fields (world_size 0: each reads its place from the
  // environment launch.c gives it), then makes `o` rank 0's.
  Workers(bioesp_train_options& o, int nproc) : pids_(nproc, 0), timeout_(o.timeout) {
    int argc = 0;
    char** args = cli_command_line(BIOESP_OPTIONS_TRAIN, &o, &argc);
    const int port = launch_port();
    if (!args || port < 0) {
      cli_command_line_free(args);
      throw std::runtime_error("training: cannot start the other processes (no arguments or no free port)");
    }
    const int started = start_workers(1, nproc, port, argc, args, pids_.data());
    cli_command_line_free(args);
    if (started < nproc - 1) {
      for (const pid_t p : pids_)
        if (p > 0) kill(p, SIGKILL);  // they would wait for the missing ones until the timeout
      finish(true);
      throw std::runtime_error("training: only " + std::to_string(started) + " of " + std::to_string(nproc - 1) +
                               " other processes started");
    }
    o.world_size = nproc, o.process_rank = 0, o.local_rank = 0, o.master_port = port, o.master_addr = "127.0.0.1";
  }
  ~Workers() { finish(true); }
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Once rank 0 is done: waits for the others and says how the first that failed ended ("rank 1
  // was killed by signal 9 (Killed)"), or "". By then they have left rank 0's rendezvous (it waits
  // for that) and only exit; one that never reached it (rank 0 stopped or failed first) would
  // wait the whole timeout, so those left after a grace are killed.
  std::string finish(bool stopping) {
    char why[160] = "";
    const double grace = 30;
    wait_workers(1, static_cast<int>(pids_.size()), pids_.data(), timeout_, grace, stopping, why, sizeof why);
    return why;
  }

 private:
  std::vector<pid_t> pids_;
  double timeout_;
};

}  // namespace

struct Training::Run {
  Training* owner = nullptr;
  std::string name;
  fs::path out;
  json settings;
  std::atomic<bool> cancel{false};
  std::vector<std::pair<int, double>> pending;  // loss points not yet published
  std::set<std::string> validation;             // validation pictures already announced
  int64_t last_event = 0;
  std::string stage;
};

Training::Training(const Config& cfg, EventBus& bus) : cfg_(cfg), bus_(bus) { fs::create_directories(cfg_.trainings); }
Training::~Training() = default;
std::string Training::running() { return runs_.running(); }

// A training's settings from a request, or from its studio.json: every train option a page may
// set (options.h); the resolution is the model's unless asked.
json Training::settings_of(const json& j, const std::string& dataset) {
  Fields options(BIOESP_OPTIONS_TRAIN);
  options.set("resolution", std::to_string(cfg_.native_size > 0 ? cfg_.native_size : 512));
  options.take(j);
  json s = options.values();
  s["nproc"] = int_field(j, "nproc", 1, 1, rules::max_train_processes);
  s["dataset"] = dataset;
  s["model"] = cfg_.model;
  return s;
}

// A resumed training's settings: its studio.json (or, without one, the request's), checked as a
// request's; damage is a 400 that names the file and the field.
json Training::saved_settings(const std::string& name, const json& request) {
  const fs::path file = cfg_.trainings / name / "studio.json";
  if (!fs::exists(file)) return settings_of(request, text_field(request, "dataset"));
  const std::string shown = name + "/studio.json";
  const json saved = read_json(file);
  if (!saved.is_object()) throw HttpError(400, say("damaged_settings", {{"name", shown}, {"why", say("not_json_object")}}));
  try {
    return settings_of(saved, text_field(saved, "dataset"));
  } catch (const HttpError& e) {
    throw HttpError(400, say("damaged_settings", {{"name", shown}, {"why", e.what()}}));
  }
}

std::string Training::start(const json& j) {
  refuse_unknown(j, {BIOESP_OPTIONS_TRAIN}, {"dataset", "name", "resume", "nproc"});
  const std::string data = text_field(j, "dataset");
  const bool resume = bool_field(j, "resume", false);
  std::error_code ec;
  if (!resume && (data.empty() || confined(cfg_.datasets, data).empty() || !fs::is_directory(confined(cfg_.datasets, data), ec)))
    throw HttpError(400, say("need_dataset"));
  std::string name = name_field(j, "name");
  if (name.empty()) {
    if (resume) throw HttpError(400, say("bad_name", {{"field", field_name("name")}}));
    name = data + "-" + std::to_string(now_ms() / 1000);
  }
  const fs::path out = cfg_.trainings / name;
  if (resume && !fs::is_directory(out / "checkpoints", ec)) throw HttpError(409, say("no_checkpoint", {{"name", name}}));
  if (!resume && fs::exists(out)) throw HttpError(409, say("training_exists", {{"name", name}}));
  json settings = resume ? saved_settings(name, j) : settings_of(j, data);
  const std::string dataset = settings["dataset"];
  const fs::path data_dir = confined(cfg_.datasets, dataset);
  if (data_dir.empty() || !fs::is_directory(data_dir, ec)) throw HttpError(400, say("no_dataset", {{"name", dataset}}));

  auto run = std::make_shared<Run>();
  run->owner = this;
  run->name = name;
  run->out = out;
  run->settings = settings;
  runs_.start(run, "training_busy",
              [&] {
                fs::create_directories(out);
                if (!resume) write_atomically(out / "studio.json", json_text(settings, 2) + "\n");
                for (const auto& v : validation_pictures(out)) run->validation.insert(v);
                bus_.publish("train", json{{"name", name}, {"state", "starting"}, {"settings", settings},
                                           {"points", json::array()}, {"validation", json::array()}});
              },
              [this, resume](Run& r) { work(r, resume); });
  return name;
}

void Training::cancel() { runs_.cancel("no_training"); }

int Training::on_progress(void* user, const bioesp_train_progress* p) {
  auto& run = *static_cast<Run*>(user);
  if (std::strcmp(p->stage, "train") == 0) run.pending.emplace_back(p->step, p->loss);
  const int64_t t = now_ms();
  if (run.stage != p->stage || p->step == p->total || t - run.last_event >= 200) {
    run.last_event = t;
    run.stage = p->stage;
    run.owner->publish(run, json{{"name", run.name}, {"state", "running"}, {"stage", p->stage}, {"step", p->step},
                                 {"total", p->total}, {"eta", p->eta_seconds}, {"seconds_per_step", p->seconds_per_step},
                                 {"learning_rate", p->learning_rate}, {"processes", p->world_size}});
  }
  return run.cancel ? 1 : 0;
}

// Sends the loss points gathered since the last event, and validation pictures that appeared.
void Training::publish(Run& run, json j) {
  json points = json::array();
  for (const auto& [step, loss] : run.pending) points.push_back({step, loss});
  run.pending.clear();
  j["points"] = points;
  json fresh = json::array();
  for (const auto& v : validation_pictures(run.out))
    if (run.validation.insert(v).second) fresh.push_back(v);
  j["validation"] = fresh;
  bus_.publish("train", j);
}

void Training::work(Run& run, bool resume) {
  json done{{"name", run.name}};
  try {
    const std::string data = (cfg_.datasets / run.settings["dataset"].get<std::string>()).string(), out = run.out.string();
    Fields options(BIOESP_OPTIONS_TRAIN);
    options.take(run.settings);  // checked by settings_of
    options.set("model", cfg_.model);
    options.set("data", data);
    options.set("out", out);
    auto& o = options.as<bioesp_train_options>();
    o.resume = resume;
    o.device = cfg_.device;
    o.threads = cfg_.threads;
    const int nproc = run.settings["nproc"];
    std::optional<Workers> workers;
    if (nproc > 1) workers.emplace(o, nproc);
    else o.world_size = 1;  // not torchrun's variables: the studio's environment is not the training's
    o.progress = on_progress;
    o.progress_user = &run;
    char* result = nullptr;
    const bioesp_status st = bioesp_train(&o, &result);
    bioesp_string_free(result);
    std::string error = st == BIOESP_OK || st == BIOESP_ERR_CANCELLED ? "" : last_error("training");
    const std::string lost = workers ? workers->finish(st == BIOESP_ERR_CANCELLED) : "";
    if (!lost.empty()) error += (error.empty() ? "training: " : "; ") + lost;
    if (!error.empty()) done["state"] = "failed", done["error"] = error;
    else done["state"] = st == BIOESP_OK ? "done" : "stopped";
  } catch (const std::exception& e) {  // nothing may leave this thread
    done["state"] = "failed", done["error"] = e.what();
  }
  runs_.finish([&] { publish(run, done); });
}

json Training::summary(const fs::path& dir) {
  const std::string name = dir.filename().string();
  const json settings = read_json(dir / "studio.json");
  json log = json::array();
  std::istringstream lines(read_file(dir / "train_log.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const json l = parse_json(line);
    if (l.is_object() && l.contains("step") && l["step"].is_number_integer() && l.contains("loss") && l["loss"].is_number())
      log.push_back({l["step"], l["loss"]});
  }
  std::error_code ec;
  std::string state = fs::exists(dir / "pytorch_lora_weights.safetensors") ? "done"
                      : fs::is_directory(dir / "checkpoints", ec)         ? "stopped"
                                                                          : "new";
  if (running() == name) state = "running";
  return json{{"name", name}, {"state", state}, {"settings", settings.is_object() ? settings : json(nullptr)},
              {"log", log}, {"validation", validation_pictures(dir)}};
}

json Training::list() {
  json items = json::array(), skipped = json::array();
  for (const auto& d : listing(cfg_.trainings, true, skipped)) {
    json r = summary(d);
    r.erase("log");
    items.push_back(r);
  }
  return json{{"items", items}, {"skipped", skipped}};
}

json Training::one(const std::string& name) {
  const fs::path dir = confined(cfg_.trainings, name);
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) throw HttpError(404, say("no_training_named", {{"name", name}}));
  return summary(dir);
}

}  // namespace studio
