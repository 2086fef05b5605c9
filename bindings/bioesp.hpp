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

}  // namespace bioesp_host
