// LoRA trainings: a DreamBooth-LoRA on a dataset (bioesp_train) on its own thread, one at a time,
// in trainings/NAME/ (the usual training output, and studio.json with the settings); its loss
// and validation pictures as events; Stop (the trainer writes a checkpoint first) and Resume
// (settings read back from studio.json and checked like a request's).
#pragma once
#include <atomic>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "events.h"
#include "files.h"
#include "one_run.h"
#include "studio.h"

namespace studio {

class Training {
 public:
  Training(const Config& cfg, EventBus& bus);
  ~Training();  // stops a running training (with a checkpoint, so it can resume) and waits

  json list();                        // {"items": [{name, state, settings, validation}], "skipped"}
  json one(const std::string& name);  // with its loss log
  std::string start(const json& request);  // checked (400 naming the field); the training's name
  void cancel();
  std::string running();              // its name, or ""

 private:
  struct Run;
  json settings_of(const json& j, const std::string& dataset);
  json saved_settings(const std::string& name, const json& request);
  json summary(const fs::path& dir);
  void work(Run& run, bool resume);
  void publish(Run& run, json j);
  static int on_progress(void* user, const bioesp_train_progress* p);

  const Config& cfg_;
  EventBus& bus_;
  OneRun<Run> runs_;  // last: the first to go
};

}  // namespace studio
