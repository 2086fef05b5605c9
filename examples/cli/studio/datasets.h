// Datasets: the folders under --datasets with every picture's caption, author, license and source
// (manifest.jsonl, else <picture>.txt), and a new one from Wikimedia Commons — bioesp_fetch into
// downloads/NAME (free licenses only, credits kept, every file left out listed with its reason),
// then bioesp_prepare into the datasets folder, one at a time, on its own thread.
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "events.h"
#include "files.h"
#include "one_run.h"
#include "studio.h"

namespace studio {

class Datasets {
 public:
  Datasets(const Config& cfg, EventBus& bus);
  ~Datasets();  // stops a running fetch and waits for it

  json list();                         // {"items", "skipped"}
  json one(const std::string& name);   // {"name", "items", "attribution", "skipped"}
  std::string fetch(const json& request);  // checked (400 naming the field); the dataset's name
  void cancel();

 private:
  struct Run;
  void work(Run& run);
  static int on_progress(void* user, const bioesp_progress* p);
  static void on_log(void* user, bioesp_log_level level, const char* message);

  const Config& cfg_;
  EventBus& bus_;
  OneRun<Run> runs_;  // last: the first to go
};

}  // namespace studio
