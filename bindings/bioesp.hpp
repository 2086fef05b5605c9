// The C++ layer the SWIG bindings wrap: bioesp.h's C API as classes a host language can use —
// handles freed by destructors (and close()), failures thrown as bioesp_host::Error carrying the
// status and bioesp_last_error(), pixels as bytes, callbacks as a class to subclass. Raw pointers,
// out-parameters and function pointers stay on this side. Header-only: it needs only bioesp.h.
#pragma once

#include <bioesp.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace bioesp_host {

// A failed call: its bioesp_status and message.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

inline void check(bioesp_status s) {
  if (s != BIOESP_OK) throw Error(s, std::string(bioesp_status_string(s)) + ": " + bioesp_last_error());
}

inline std::string version() { return bioesp_version_string(); }

// Bytes for the host: bytes (Python), byte[] (Java, C#), Buffer (Node).
struct Bytes {
  std::string data;
};

// Progress of a long call. Subclass it in the host and override on_progress; return false to
// cancel. It is called on the thread doing the work (a worker thread for async jobs). An
// exception thrown in it ends the call and comes back to the caller (Python, Java).
class Progress {
 public:
  virtual ~Progress() {}
  virtual bool on_progress(const std::string& stage, long long current, long long total) {
    return true;
  }
};

#ifndef SWIG
namespace detail {

// Lives for one call (or one job): forwards C progress calls to a Progress, catching everything
// so that no exception unwinds through C; what it caught is rethrown once the C call returned.
struct Trampoline {
  Progress* target = nullptr;
  std::exception_ptr error;
  std::mutex mutex;

  static int call(void* user, const bioesp_progress* p) {
    auto* t = static_cast<Trampoline*>(user);
    try {
      return t->target->on_progress(p->stage ? p->stage : "", static_cast<long long>(p->current), static_cast<long long>(p->total)) ? 0 : 1;
    } catch (...) {
      std::lock_guard<std::mutex> lock(t->mutex);
      if (!t->error) t->error = std::current_exception();
      return 1;
    }
  }
  // Points a C options struct's progress fields here (when there is a Progress).
  template <class Options>
  void attach(Progress* p, Options& c) {
    if (!p) return;
    target = p;
    c.progress = call;
    c.progress_user = this;
  }
  void rethrow() {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail
#endif

class Image;

// Images a generation made (or one read from a file).
class Images {
 public:
  Images() = default;
  size_t size() const {
    if (!set_) return 0;
    size_t n = 0;
    check(bioesp_images_count(set_.get(), &n));
    return n;
  }
  Image get(size_t index) const;

  // As an animation: *.gif, *.mp4, *.webm or a folder of PNG frames.
  void save_animation(const std::string& path, double fps, bool loop, int quality) const {
    bioesp_animation_options o;
    bioesp_animation_options_init(&o);
    o.fps = fps;
    o.loop = loop ? 1 : 0;
    o.quality = quality;
    check(bioesp_images_save_animation(set_.get(), path.c_str(), &o));
  }

  static Images load(const std::string& path) {
    bioesp_images* out = nullptr;
    check(bioesp_images_load(path.c_str(), &out));
    return Images(out);
  }
#ifndef SWIG
  explicit Images(bioesp_images* owned) : set_(owned, bioesp_images_free) {}
#endif

 private:
  std::shared_ptr<bioesp_images> set_;
};

// One image: width × height × channels bytes, row-major; it keeps its set alive.
class Image {
 public:
  Image() = default;
#ifndef SWIG
  Image(std::shared_ptr<bioesp_images> set, size_t index) : set_(std::move(set)), index_(index) {
    view_.struct_size = sizeof view_;
    check(bioesp_images_get(set_.get(), index_, &view_));
  }
#endif
  unsigned width() const { return view_.width; }
  unsigned height() const { return view_.height; }
  unsigned channels() const { return view_.channels; }
  Bytes pixels() const {
    Bytes b;
    if (view_.pixels) b.data.assign(reinterpret_cast<const char*>(view_.pixels), size_t(view_.width) * view_.height * view_.channels);
    return b;
  }
  // A recorded setting ("prompt", "seed", …); "" when absent.
  std::string setting(const std::string& key) const {
    const char* v = set_ ? bioesp_images_setting(set_.get(), index_, key.c_str()) : nullptr;
    return v ? v : "";
  }
  // PNG (with the settings) or JPEG, by the extension; written atomically.
  void save(const std::string& path) const {
    if (!set_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: an empty image");
    check(bioesp_images_save(set_.get(), index_, path.c_str(), nullptr));
  }
#ifndef SWIG
  const bioesp_image& view() const { return view_; }
#endif

 private:
  std::shared_ptr<bioesp_images> set_;
  size_t index_ = 0;
  bioesp_image view_{};
};

inline Image Images::get(size_t index) const {
  if (index >= size()) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: image index out of range");
  return Image(set_, index);
}

struct ModelOptions {
  std::string config_dir;   // single-file checkpoints: a diffusers folder with the configs
  std::string variant;      // "fp16": prefer *.fp16.safetensors
  std::string device = "cpu";  // "cpu" or "cuda"
  int device_index = 0;
  std::string dtype = "f32";   // "f32", "f16", "bf16"
  int threads = 0;             // 0: LibTorch's choice (process-wide)
};

struct GenerateOptions {
  std::vector<std::string> prompts;  // one batch entry each
  std::string negative_prompt;
  int steps = 50;
  double guidance = 7.5;
  long long seed = 0;                // the 64-bit CPU generator seed (negative values wrap)
  std::string scheduler;             // "": the model's own
  int width = 0, height = 0;         // 0: the model's native size
  int images_per_prompt = 1;
  int clip_skip = 0;
  double strength = 0.8;             // img2img
  bool device_generator = false;
  int vae_tile_size = 0;             // > 0: decode in tiles of this many pixels (same image)
  std::string tiling;                // "x", "y", "both": repeats without seams; "": none
  std::string background;            // "transparent": an RGBA sprite; "": opaque
  Image init_image;                  // img2img when it has pixels

  void add_prompt(const std::string& p) { prompts.push_back(p); }
};

// Keyframes (prompts and seeds; as many of each, or one of either) and fixed settings.
struct AnimateOptions {
  std::vector<std::string> prompts;
  std::vector<long long> seeds;
  int frames = 16;
  bool pingpong = false;
  std::string negative_prompt;
  int steps = 25;
  double guidance = 7.5;
  std::string scheduler;
  int width = 0, height = 0;
  int clip_skip = 0;
  int vae_tile_size = 0;

  void add_prompt(const std::string& p) { prompts.push_back(p); }
  void add_seed(long long seed) { seeds.push_back(seed); }
};

#ifndef SWIG
namespace detail {

// The C options for `o`; `keep` owns the prompt pointers.
inline bioesp_generate_options to_c(const GenerateOptions& o, std::vector<const char*>& keep) {
  bioesp_generate_options c;
  bioesp_generate_options_init(&c);
  keep.clear();
  for (const auto& p : o.prompts) keep.push_back(p.c_str());
  c.prompts = keep.data();
  c.num_prompts = keep.size();
  c.negative_prompt = o.negative_prompt.empty() ? nullptr : o.negative_prompt.c_str();
  c.steps = o.steps;
  c.guidance = static_cast<float>(o.guidance);
  c.seed = static_cast<uint64_t>(o.seed);
  c.scheduler = o.scheduler.empty() ? nullptr : o.scheduler.c_str();
  c.width = o.width;
  c.height = o.height;
  c.images_per_prompt = o.images_per_prompt;
  c.clip_skip = o.clip_skip;
  c.strength = static_cast<float>(o.strength);
  c.device_generator = o.device_generator ? 1 : 0;
  c.vae_tile_size = o.vae_tile_size;
  c.tiling = o.tiling.empty() ? nullptr : o.tiling.c_str();
  c.background = o.background.empty() ? nullptr : o.background.c_str();
  if (o.init_image.view().pixels) c.init_image = &o.init_image.view();
  return c;
}

}  // namespace detail
#endif

// An asynchronous generation: poll it from a game loop or await it.
class Job {
 public:
  Job() = default;
  ~Job() { close(); }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // "queued", "running" or "done"; never blocks.
  std::string state() const {
    auto s = poll();
    return s.state == BIOESP_JOB_DONE ? "done" : s.state == BIOESP_JOB_RUNNING ? "running" : "queued";
  }
  long long step() const { return static_cast<long long>(poll().step); }
  long long total() const { return static_cast<long long>(poll().total); }
  bool done() const { return poll().state == BIOESP_JOB_DONE; }
  // Waits up to timeout_ms (negative: until done); true when done.
  bool wait(int timeout_ms) {
    int finished = 0;
    check(bioesp_job_wait(handle(), timeout_ms, &finished));
    return finished != 0;
  }
  void cancel() { check(bioesp_job_cancel(handle())); }
  // The images once done (waiting if needed); the job's failure as an Error.
  Images take() {
    wait(-1);
    bioesp_images* out = nullptr;
    bioesp_status s = bioesp_job_take(handle(), &out);
    if (trampoline_) trampoline_->rethrow();
    check(s);
    return Images(out);
  }
  // Cancels if still running, waits, frees. Also done by the destructor.
  void close() {
    if (job_) bioesp_job_free(job_);
    job_ = nullptr;
  }

#ifndef SWIG
  // For Model::generate_async.
  Job(bioesp_job* job, std::unique_ptr<detail::Trampoline> t) : job_(job), trampoline_(std::move(t)) {}
#endif

 private:
  struct State {
    bioesp_job_state state;
    uint64_t step, total;
  };
  bioesp_job* handle() const {
    if (!job_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: the job was closed");
    return job_;
  }
  State poll() const {
    State s{};
    check(bioesp_job_poll(handle(), &s.state, &s.step, &s.total));
    return s;
  }
  bioesp_job* job_ = nullptr;
#ifndef SWIG
  std::unique_ptr<detail::Trampoline> trampoline_;
#endif
};

class Model {
 public:
  explicit Model(const std::string& path) { open(path, ModelOptions()); }
  Model(const std::string& path, const ModelOptions& o) { open(path, o); }
  ~Model() { close(); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Frees the model (after its running jobs); later calls fail. Also done by the destructor.
  void close() {
    if (model_) bioesp_model_free(model_);
    model_ = nullptr;
  }

  Images generate(const GenerateOptions& o) { return generate(o, nullptr); }
  // progress may be null.
  Images generate(const GenerateOptions& o, Progress* progress) {
    std::vector<const char*> keep;
    bioesp_generate_options c = detail::to_c(o, keep);
    detail::Trampoline t;
    t.attach(progress, c);
    bioesp_images* out = nullptr;
    bioesp_status s = bioesp_generate(handle(), &c, &out);
    t.rethrow();
    check(s);
    return Images(out);
  }

  Job* generate_async(const GenerateOptions& o) { return generate_async(o, nullptr); }
  // The progress object is called on the job's worker thread; keep it alive until the job ends.
  Job* generate_async(const GenerateOptions& o, Progress* progress) {
    std::vector<const char*> keep;
    bioesp_generate_options c = detail::to_c(o, keep);
    std::unique_ptr<detail::Trampoline> t;
    if (progress) {
      t.reset(new detail::Trampoline);
      t->attach(progress, c);
    }
    bioesp_job* job = nullptr;
    check(bioesp_generate_async(handle(), &c, &job));
    return new Job(job, std::move(t));
  }

  // Frames morphing between the keyframes (see bioesp_animate); progress may be null.
  Images animate(const AnimateOptions& o, Progress* progress) {
    std::vector<const char*> prompts;
    for (const auto& p : o.prompts) prompts.push_back(p.c_str());
    std::vector<uint64_t> seeds(o.seeds.begin(), o.seeds.end());
    bioesp_animate_options c;
    bioesp_animate_options_init(&c);
    c.prompts = prompts.data();
    c.num_prompts = prompts.size();
    c.seeds = seeds.data();
    c.num_seeds = seeds.size();
    c.frames = o.frames;
    c.pingpong = o.pingpong ? 1 : 0;
    c.negative_prompt = o.negative_prompt.empty() ? nullptr : o.negative_prompt.c_str();
    c.steps = o.steps;
    c.guidance = static_cast<float>(o.guidance);
    c.scheduler = o.scheduler.empty() ? nullptr : o.scheduler.c_str();
    c.width = o.width;
    c.height = o.height;
    c.clip_skip = o.clip_skip;
    c.vae_tile_size = o.vae_tile_size;
    detail::Trampoline t;
    t.attach(progress, c);
    bioesp_images* out = nullptr;
    bioesp_status s = bioesp_animate(handle(), &c, &out);
    t.rethrow();
    check(s);
    return Images(out);
  }

  void add_lora(const std::string& path, double scale, const std::string& name) {
    check(bioesp_model_add_lora(handle(), path.c_str(), static_cast<float>(scale), name.c_str()));
  }
  void set_lora_scale(const std::string& name, double scale) {
    check(bioesp_model_set_lora_scale(handle(), name.c_str(), static_cast<float>(scale)));
  }
  void remove_lora(const std::string& name) { check(bioesp_model_remove_lora(handle(), name.c_str())); }

 private:
  void open(const std::string& path, const ModelOptions& o) {
    bioesp_model_options c;
    bioesp_model_options_init(&c);
    c.config_dir = o.config_dir.empty() ? nullptr : o.config_dir.c_str();
    c.variant = o.variant.empty() ? nullptr : o.variant.c_str();
    if (o.device == "cuda") c.device = BIOESP_DEVICE_CUDA;
    else if (o.device != "cpu") throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: device is \"cpu\" or \"cuda\"");
    c.device_index = o.device_index;
    if (o.dtype == "f16") c.dtype = BIOESP_DTYPE_F16;
    else if (o.dtype == "bf16") c.dtype = BIOESP_DTYPE_BF16;
    else if (o.dtype != "f32") throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: dtype is \"f32\", \"f16\" or \"bf16\"");
    c.threads = o.threads;
    check(bioesp_model_load(path.c_str(), &c, &model_));
  }
  bioesp_model* handle() const {
    if (!model_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: the model was closed");
    return model_;
  }
  bioesp_model* model_ = nullptr;
};

// ---- Datasets, training and the Hub: blocking calls (run them on a thread of the host's).

struct Counts {
  size_t done = 0, skipped = 0;  // files downloaded / prepared, and files skipped (each logged)
};

struct FetchOptions {
  std::string source = "category";  // category, campaign, search or titles
  std::string value;                // the category, campaign or search text
  std::vector<std::string> titles;  // source "titles"
  int limit = 0;
  long long seed = 0;
  int width = 500;
  bool original = false;
  std::string licenses, keywords, contact, api;
  std::string out;
  int max_retries = 6;
  double retry_delay = 1.0;
  void add_title(const std::string& t) { titles.push_back(t); }
};

struct PrepareOptions {
  std::string in, out;
  int size = 512;
  std::string crop = "center";  // center, attention, pad
  std::string caption;          // "": each image's manifest caption, else its file name
  bool caption_from_metadata = false;
  int near_duplicate_distance = 4;
};

struct TrainOptions {
  std::string model, config_dir, data, prompt, out;
  bool use_captions = true;
  std::string class_data, class_prompt;
  int num_class_images = 0;
  double prior_weight = 1.0;
  int resolution = 512;
  bool random_crop = false, flip = false, cache_latents = false;
  int steps = 0, epochs = 1, batch_size = 1, grad_accumulation = 1;
  double learning_rate = 1e-4;
  bool scale_lr = false;
  std::string lr_scheduler = "constant";
  int lr_warmup_steps = 0;
  double max_grad_norm = 1.0;
  int rank = 4;
  double alpha = 0, lora_dropout = 0;
  bool train_text_encoder = false, full = false;
  double noise_offset = 0, snr_gamma = 0;
  std::string mixed_precision = "no";
  bool gradient_checkpointing = false;
  std::string device = "cpu";
  int threads = 0;
  long long seed = 0;
  int checkpoint_every = 0, checkpoints_kept = 3;
  bool resume = false;
  std::string validation_prompt;
  int validation_every = 0, validation_steps = 25;
  bool save_kohya = false;
  // Training from scratch (see new_model).
  bool train_vae = false;
  double kl_weight = 1e-6;
  double tag_dropout = 0, caption_dropout = 0;
  bool shuffle_tags = false, save_half = false;
};

// A model folder to train from scratch: fresh weights from `configs`, a vocabulary from the
// captions of `data`.
struct NewModelOptions {
  std::string configs, data, out;
  int vocab_size = 0;
  long long seed = 0;
};

// Training progress: subclass and override on_step; return false to cancel (a checkpoint is
// written first).
class TrainProgress {
 public:
  virtual ~TrainProgress() {}
  virtual bool on_step(const std::string& stage, int step, int total, double loss, double learning_rate,
                       double eta_seconds) {
    return true;
  }
};

struct PullOptions {
  std::string repo, revision, variant, endpoint, token, cache_dir;
  std::vector<std::string> include;
  bool offline = false;
  int max_retries = 6;
  double retry_delay = 1.0;
  void add_include(const std::string& glob) { include.push_back(glob); }
};

struct PushOptions {
  std::string path, repo, commit_message, base_model, dataset, endpoint, token;
  bool private_repo = false;
  int max_retries = 6;
  double retry_delay = 1.0;
};

#ifndef SWIG
namespace detail {

inline const char* or_null(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

inline std::string take_string(char* s) {
  std::string out = s ? s : "";
  bioesp_string_free(s);
  return out;
}

struct TrainTrampoline {
  TrainProgress* target = nullptr;
  std::exception_ptr error;
  static int call(void* user, const bioesp_train_progress* p) {
    auto* t = static_cast<TrainTrampoline*>(user);
    try {
      return t->target->on_step(p->stage ? p->stage : "", p->step, p->total, p->loss, p->learning_rate, p->eta_seconds) ? 0 : 1;
    } catch (...) {
      if (!t->error) t->error = std::current_exception();
      return 1;
    }
  }
};

}  // namespace detail
#endif

// Downloads openly licensed images from Wikimedia Commons (see bioesp_fetch).
inline Counts fetch(const FetchOptions& o, Progress* progress) {
  bioesp_fetch_options c;
  bioesp_fetch_options_init(&c);
  if (o.source == "category") c.source = BIOESP_SOURCE_CATEGORY;
  else if (o.source == "campaign") c.source = BIOESP_SOURCE_CAMPAIGN;
  else if (o.source == "search") c.source = BIOESP_SOURCE_SEARCH;
  else if (o.source == "titles") c.source = BIOESP_SOURCE_TITLES;
  else throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: source is category, campaign, search or titles");
  std::vector<const char*> titles;
  for (const auto& t : o.titles) titles.push_back(t.c_str());
  c.value = detail::or_null(o.value);
  c.titles = titles.data();
  c.num_titles = titles.size();
  c.limit = o.limit;
  c.seed = static_cast<uint64_t>(o.seed);
  c.width = o.width;
  c.original = o.original ? 1 : 0;
  c.licenses = detail::or_null(o.licenses);
  c.keywords = detail::or_null(o.keywords);
  c.contact = detail::or_null(o.contact);
  c.api = detail::or_null(o.api);
  c.out = detail::or_null(o.out);
  c.max_retries = o.max_retries;
  c.retry_delay = o.retry_delay;
  detail::Trampoline t;
  t.attach(progress, c);
  Counts r;
  bioesp_status s = bioesp_fetch(&c, &r.done, &r.skipped);
  t.rethrow();
  check(s);
  return r;
}

// Squares, resizes and captions a folder of images for training (see bioesp_prepare).
inline Counts prepare(const PrepareOptions& o, Progress* progress) {
  bioesp_prepare_options c;
  bioesp_prepare_options_init(&c);
  c.in = detail::or_null(o.in);
  c.out = detail::or_null(o.out);
  c.size = o.size;
  c.crop = detail::or_null(o.crop);
  c.caption = detail::or_null(o.caption);
  c.caption_from_metadata = o.caption_from_metadata ? 1 : 0;
  c.near_duplicate_distance = o.near_duplicate_distance;
  detail::Trampoline t;
  t.attach(progress, c);
  Counts r;
  bioesp_status s = bioesp_prepare(&c, &r.done, &r.skipped);
  t.rethrow();
  check(s);
  return r;
}

// Fine-tunes (DreamBooth-LoRA, or full); returns the LoRA file or model folder.
inline std::string train(const TrainOptions& o, TrainProgress* progress) {
  bioesp_train_options c;
  bioesp_train_options_init(&c);
  c.model = detail::or_null(o.model);
  c.config_dir = detail::or_null(o.config_dir);
  c.data = detail::or_null(o.data);
  c.prompt = detail::or_null(o.prompt);
  c.use_captions = o.use_captions ? 1 : 0;
  c.class_data = detail::or_null(o.class_data);
  c.class_prompt = detail::or_null(o.class_prompt);
  c.num_class_images = o.num_class_images;
  c.prior_weight = static_cast<float>(o.prior_weight);
  c.resolution = o.resolution;
  c.random_crop = o.random_crop ? 1 : 0;
  c.flip = o.flip ? 1 : 0;
  c.cache_latents = o.cache_latents ? 1 : 0;
  c.steps = o.steps;
  c.epochs = o.epochs;
  c.batch_size = o.batch_size;
  c.grad_accumulation = o.grad_accumulation;
  c.learning_rate = static_cast<float>(o.learning_rate);
  c.scale_lr = o.scale_lr ? 1 : 0;
  c.lr_scheduler = detail::or_null(o.lr_scheduler);
  c.lr_warmup_steps = o.lr_warmup_steps;
  c.max_grad_norm = static_cast<float>(o.max_grad_norm);
  c.rank = o.rank;
  c.alpha = static_cast<float>(o.alpha);
  c.lora_dropout = static_cast<float>(o.lora_dropout);
  c.train_text_encoder = o.train_text_encoder ? 1 : 0;
  c.full = o.full ? 1 : 0;
  c.noise_offset = static_cast<float>(o.noise_offset);
  c.snr_gamma = static_cast<float>(o.snr_gamma);
  c.mixed_precision = detail::or_null(o.mixed_precision);
  c.gradient_checkpointing = o.gradient_checkpointing ? 1 : 0;
  if (o.device == "cuda") c.device = BIOESP_DEVICE_CUDA;
  else if (o.device != "cpu") throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: device is \"cpu\" or \"cuda\"");
  c.threads = o.threads;
  c.seed = static_cast<uint64_t>(o.seed);
  c.checkpoint_every = o.checkpoint_every;
  c.checkpoints_kept = o.checkpoints_kept;
  c.resume = o.resume ? 1 : 0;
  c.validation_prompt = detail::or_null(o.validation_prompt);
  c.validation_every = o.validation_every;
  c.validation_steps = o.validation_steps;
  c.save_kohya = o.save_kohya ? 1 : 0;
  c.train_vae = o.train_vae ? 1 : 0;
  c.kl_weight = static_cast<float>(o.kl_weight);
  c.tag_dropout = static_cast<float>(o.tag_dropout);
  c.caption_dropout = static_cast<float>(o.caption_dropout);
  c.shuffle_tags = o.shuffle_tags ? 1 : 0;
  c.save_half = o.save_half ? 1 : 0;
  c.out = detail::or_null(o.out);
  detail::TrainTrampoline t;
  if (progress) {
    t.target = progress;
    c.progress = detail::TrainTrampoline::call;
    c.progress_user = &t;
  }
  char* result = nullptr;
  bioesp_status s = bioesp_train(&c, &result);
  if (t.error) {
    bioesp_string_free(result);
    std::rethrow_exception(t.error);
  }
  check(s);
  return detail::take_string(result);
}

// Writes the new model folder and returns its path.
inline std::string new_model(const NewModelOptions& o) {
  bioesp_new_model_options c;
  bioesp_new_model_options_init(&c);
  c.configs = detail::or_null(o.configs);
  c.data = detail::or_null(o.data);
  c.out = detail::or_null(o.out);
  c.vocab_size = o.vocab_size;
  c.seed = static_cast<uint64_t>(o.seed);
  char* result = nullptr;
  check(bioesp_new_model(&c, &result));
  return detail::take_string(result);
}

// The model that ships with bioesp (what the command line draws with when none is named); ""
// when it is not installed.
inline std::string embedded_model() {
  const char* m = bioesp_embedded_model();
  return m ? m : "";
}

// Downloads a model into the Hub cache; returns its snapshot folder.
inline std::string pull(const PullOptions& o, Progress* progress) {
  bioesp_pull_options c;
  bioesp_pull_options_init(&c);
  std::vector<const char*> include;
  for (const auto& g : o.include) include.push_back(g.c_str());
  c.repo = detail::or_null(o.repo);
  c.revision = detail::or_null(o.revision);
  c.include = include.data();
  c.num_include = include.size();
  c.variant = detail::or_null(o.variant);
  c.endpoint = detail::or_null(o.endpoint);
  c.token = detail::or_null(o.token);
  c.cache_dir = detail::or_null(o.cache_dir);
  c.offline = o.offline ? 1 : 0;
  c.max_retries = o.max_retries;
  c.retry_delay = o.retry_delay;
  detail::Trampoline t;
  t.attach(progress, c);
  char* snapshot = nullptr;
  bioesp_status s = bioesp_pull(&c, &snapshot);
  std::string out = detail::take_string(snapshot);
  t.rethrow();
  check(s);
  return out;
}

// Publishes a LoRA or folder with its model card; returns the commit URL ("" when unchanged).
inline std::string push(const PushOptions& o, Progress* progress) {
  bioesp_push_options c;
  bioesp_push_options_init(&c);
  c.path = detail::or_null(o.path);
  c.repo = detail::or_null(o.repo);
  c.private_repo = o.private_repo ? 1 : 0;
  c.commit_message = detail::or_null(o.commit_message);
  c.base_model = detail::or_null(o.base_model);
  c.dataset = detail::or_null(o.dataset);
  c.endpoint = detail::or_null(o.endpoint);
  c.token = detail::or_null(o.token);
  c.max_retries = o.max_retries;
  c.retry_delay = o.retry_delay;
  detail::Trampoline t;
  t.attach(progress, c);
  char* url = nullptr;
  bioesp_status s = bioesp_push(&c, &url);
  std::string out = detail::take_string(url);
  t.rethrow();
  check(s);
  return out;
}

}  // namespace bioesp_host
