// Pictures and animations for the pages, on the library's jobs. A run (one request) is one
// bioesp_generate_async job per picture, seeded seed + its index so that any picture can be drawn
// again alone; the library queues the jobs of one model in submission order, and its progress
// callbacks become the "job" events (per picture and step). One thread (the follower) takes each
// finished job, saves its picture to the gallery and reports the run.
//
// Two things a job cannot carry are held back here, in submission order: a LoRA is the model's
// state, not a job's, so a run with another LoRA (or strength) waits until the jobs before it are
// done and the follower has attached it; and an animation is the synchronous bioesp_animate
// (there is no asynchronous one), which the follower runs when no job is queued.
#pragma once
#include <bioesp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "drawings.h"
#include "events.h"
#include "files.h"
#include "gallery.h"
#include "studio.h"

namespace studio {

// The page's drawing (drawings.h): the scribble a ControlNet, by its name, follows with
// bioesp_control's scale and window ("control"), or the mask of the init picture ("mask").
struct Drawing {
  std::string file, use, controlnet;  // file "": none
  double scale = 1.0, start = 0.0, end = 1.0;
};

// A run's settings: the studio's own (a picture per seed from `seed`, the LoRA, the gallery
// picture to start from, a drawing) and the generate options a page set, by name (options.h).
struct Settings {
  std::string prompt, lora;
  std::string init;  // a gallery picture to start from (img2img), or none
  Drawing drawing;
  int images = 1;
  uint64_t seed = 0;
  double lora_scale = 1.0;
  json options;  // Fields::values of bioesp_generate_options
};

// The textual-inversion embeddings attached when the studio started: every .pt, .safetensors
// and .bin file in --embeddings, for the token it names or its stem.
struct Embeddings {
  std::vector<std::string> tokens;  // as the prompts may write them
  json skipped;                     // files that could not be attached, with the library's reason
};

// The ControlNets a drawing may steer: every folder (diffusers' layout) and .safetensors, .pth
// and .ckpt file in --controlnets, loaded for the model when the studio starts, by name.
struct ControlNets {
  using Net = std::unique_ptr<bioesp_controlnet, void (*)(bioesp_controlnet*)>;
  std::map<std::string, Net> nets;
  json skipped;  // those that could not be loaded, with the library's reason
};

// A morph between two gallery pictures: their prompts and seeds are the keyframes; the other
// animate options are the first picture's, unless the request sets them.
struct Animation {
  std::string from, to, format = "gif";
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
  json options;  // Fields::values of bioesp_animate_options
  json file;     // of bioesp_animation_options
};

class Generation {
 public:
  Generation(const Config& cfg, bioesp_model* model, EventBus& bus, Gallery& gallery);
  ~Generation();  // cancels every run and waits for the library's jobs

  // A page's request, checked (400 naming the field): the run's id.
  std::string generate(const json& request);
  std::string animate(const json& request);
  void cancel(const std::string& id);
  // The run being drawn ({"id", "kind", "state", "image", "images", "step", "steps"}), or null.
  json running();
  // Run `id`'s latest live preview of the picture being drawn, as PNG bytes (404 when none).
  std::string preview(const std::string& id);
  // The LoRAs a page may pick, by name: trained here, or files in --loras.
  std::map<std::string, fs::path> loras(json& skipped);
  const Embeddings& embeddings() const { return embeddings_; }
  const ControlNets& controlnets() const { return controlnets_; }

 private:
  struct Run;
  struct Picture;

  void attach_embeddings();
  void load_controlnets();
  Settings settings_of(const json& j);
  Drawing drawing_of(const json& j, const Settings& s);
  std::string submit(Settings s, std::unique_ptr<Animation> animation);
  void dispatch();  // with m_ held
  void start(Run& run);  // with m_ held
  void follow();
  void finish(Run& run);
  void alone(Run& run);
  void use_lora(const Settings& s);
  void draw_animation(Run& run);
  std::string lora_key(const Settings& s);
  static int on_progress(void* user, const bioesp_progress* p);
  static int on_animation_progress(void* user, const bioesp_progress* p);
  static json run_json(const Run& run, const char* state);

  const Config& cfg_;
  bioesp_model* model_;
  EventBus& bus_;
  Gallery& gallery_;
  Drawings drawings_;
  Embeddings embeddings_;  // fixed once the constructor has attached them
  ControlNets controlnets_;  // fixed once the constructor has loaded them

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Run>> waiting_;    // not given to the library yet, oldest first
  std::deque<std::shared_ptr<Run>> submitted_;  // their jobs are in the library's queue
  std::shared_ptr<Run> alone_;                  // the follower's: an animation or a LoRA change
  std::string attached_;                        // lora_key of what the model has now
  uint64_t counter_ = 0;
  std::atomic<uint64_t> previews_{0};           // names the previews' temporary files
  bool quit_ = false;
  std::thread follower_;
};

}  // namespace studio
