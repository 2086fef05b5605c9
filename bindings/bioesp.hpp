// The C++ layer the SWIG bindings wrap: bioesp.h's C API as classes a host language can use —
// handles freed by destructors (and close()), failures thrown as bioesp_host::Error carrying the
// status and bioesp_last_error(), pixels as bytes, callbacks as a class to subclass, and every
// options struct as one Options class set by field name through the library's options table (so
// each field reaches every host without a copy here). Raw pointers, out-parameters and function
// pointers stay on this side. Header-only: it needs only bioesp.h.
#pragma once

#include <bioesp.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
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

class Image;
class Options;
class Model;

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

  // As an animation: *.gif, *.mp4, *.webm or a folder of PNG frames, with "animation" options
  // (fps, loop, quality).
  void save_animation(const std::string& path, const Options& animation) const;

  static Images load(const std::string& path) {
    bioesp_images* out = nullptr;
    check(bioesp_images_load(path.c_str(), &out));
    return Images(out);
  }
#ifndef SWIG
  explicit Images(bioesp_images* owned) : set_(owned, bioesp_images_free) {}
  // A set of its own holding a copy of `image` (pixels the library lends for one call).
  static Images copy(const bioesp_image& image) {
    bioesp_images* out = nullptr;
    check(bioesp_images_copy(&image, 1, &out));
    return Images(out);
  }
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
  void save(const std::string& path) const { save(path, nullptr); }
  // The same with "save" options (jpeg_quality).
  void save(const std::string& path, const Options& options) const;
#ifndef SWIG
  const bioesp_image& view() const { return view_; }
#endif

 private:
  void save(const std::string& path, const void* options) const {
    if (!set_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: an empty image");
    check(bioesp_images_save(set_.get(), index_, path.c_str(), static_cast<const bioesp_save_options*>(options)));
  }
  std::shared_ptr<bioesp_images> set_;
  size_t index_ = 0;
  bioesp_image view_{};
};

inline Image Images::get(size_t index) const {
  if (index >= size()) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: image index out of range");
  return Image(set_, index);
}

// A live preview of one image as it forms (with the generate options' preview_every ≥ 1).
// Subclass it in the host and override on_preview; return false to cancel. `image` is the host's
// Image, a copy of its own to keep; `index` is the image in the batch, `step` of `total` the
// denoising steps done. Called as Progress is: on the thread doing the work, an exception thrown
// in it ends the call and comes back to the caller.
class Preview {
 public:
  virtual ~Preview() {}
  virtual bool on_preview(Image image, long long index, long long step, long long total) { return true; }
};

// Every preview of a job, kept in order for a host whose callbacks cannot run on the worker
// thread (Node): it polls pop() and reads the preview popped.
class PreviewQueue : public Preview {
 public:
  bool on_preview(Image image, long long index, long long step, long long total) override {
    std::lock_guard<std::mutex> lock(mutex_);
    waiting_.push_back(Popped{std::move(image), index, step, total});
    return true;
  }
  // Takes the oldest waiting preview into image(), index(), step() and total(); false when none waits.
  bool pop() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (waiting_.empty()) return false;
    popped_ = std::move(waiting_.front());
    waiting_.pop_front();
    return true;
  }
  Image image() const { return popped_.image; }
  long long index() const { return popped_.index; }
  long long step() const { return popped_.step; }
  long long total() const { return popped_.total; }

 private:
  struct Popped {
    Image image;
    long long index = 0, step = 0, total = 0;
  };
  std::mutex mutex_;
  std::deque<Popped> waiting_;
  Popped popped_;
};

#ifndef SWIG
namespace detail {

// Catches everything a host's callback throws, so that no exception unwinds through C; what it
// caught cancels the call and is rethrown once the C call returned.
struct Guard {
  std::exception_ptr error;
  std::mutex mutex;

  template <class Callback>
  int guard(Callback callback) {
    try {
      return callback() ? 0 : 1;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      return 1;
    }
  }
  void rethrow() {
    if (error) std::rethrow_exception(error);
  }
};

// Lives for one call (or one job): forwards C progress and preview calls to the host's objects.
struct Trampoline : Guard {
  Progress* progress = nullptr;
  Preview* preview = nullptr;

  static int call(void* user, const bioesp_progress* p) {
    auto* t = static_cast<Trampoline*>(user);
    return t->guard([&] {
      return t->progress->on_progress(p->stage ? p->stage : "", static_cast<long long>(p->current), static_cast<long long>(p->total));
    });
  }
  static int call_preview(void* user, const bioesp_preview* p) {
    auto* t = static_cast<Trampoline*>(user);
    return t->guard([&] { return t->preview->on_preview(Images::copy(p->image).get(0), static_cast<long long>(p->index), p->step, p->total); });
  }
  // Points a C options struct's progress fields here (when there is a Progress).
  template <class Options>
  void attach(Progress* p, Options& c) {
    if (!p) return;
    progress = p;
    c.progress = call;
    c.progress_user = this;
  }
  // The same for generate's preview fields.
  void attach(Progress* p, Preview* v, bioesp_generate_options& c) {
    attach(p, c);
    if (!v) return;
    preview = v;
    c.preview = call_preview;
    c.preview_user = this;
  }
};

}  // namespace detail
#endif

// A ControlNet loaded once for a model (its device and dtype) and used by any number of
// generations (Options::add_control); copies share it, the last one (or close()) frees it.
class ControlNet {
 public:
  ControlNet() = default;
  ControlNet(Model& model, const std::string& path);
  void close() { net_.reset(); }
#ifndef SWIG
  bioesp_controlnet* handle() const {
    if (!net_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: the ControlNet was closed");
    return net_.get();
  }
#endif

 private:
  std::shared_ptr<bioesp_controlnet> net_;
};

// One options struct ("model", "generate", "animate", "animation", "save", "fetch", "prepare",
// "train", "new_model", "pull", "push", "weights"), its fields set by their C names: text is
// parsed and range-checked by the library as the command line's flags are; lists are appended
// to; the init image is an Image. It owns the struct and everything the struct points to.
class Options {
 public:
  explicit Options(const std::string& kind) {
    check(bioesp_options_kind_find(kind.c_str(), &kind_));
    void* c = nullptr;
    check(bioesp_options_new(kind_, &c));
    c_.reset(c);
  }
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;

  std::string kind() const { return bioesp_options_kind_name(kind_); }
  // The fields set by name, in the struct's order (callbacks and counts are not among them).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    size_t n = 0;
    check(bioesp_option_count(kind_, &n));
    for (size_t i = 0; i < n; ++i) {
      bioesp_option o = describe_at(i);
      if (!o.not_exposed) out.push_back(o.name);
    }
    return out;
  }
  // "bool", "int", "uint64", "float", "double", "string", "choice", "rgb", "string_list",
  // "uint64_list" or "image".
  std::string type(const std::string& name) const {
    static const char* const types[] = {"bool",        "int",         "uint64", "float",    "double",  "string", "choice",
                                        "rgb",         "string_list", "uint64_list", "image", "function", "pointer", "size", "struct_list"};
    const int t = describe(name).type;
    return t >= 0 && t < 15 ? types[t] : "?";
  }
  // The field's one line of help.
  std::string help(const std::string& name) const { return describe(name).help; }
  // A choice's values with "|" between them ("cpu|cuda"); "" for other types.
  std::string choices(const std::string& name) const {
    const char* c = describe(name).choices;
    return c ? c : "";
  }

  // Numbers as text, bools as "1"/"0"/"true"/"false", choices by name, colours as RRGGBB.
  void set(const std::string& name, const std::string& text) {
    auto kept = std::make_unique<std::string>(text);  // string fields point at it
    check(bioesp_option_set(kind_, c_.get(), name.c_str(), kept->c_str()));
    text_[name] = std::move(kept);
  }
  void set(const std::string& name, bool value) { set(name, std::string(value ? "1" : "0")); }
  void set(const std::string& name, long long value) { set(name, std::to_string(value)); }
  void set(const std::string& name, double value) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    set(name, std::string(buf));
  }
  // Appends to a list field (prompts, seeds, titles, include); seeds as decimal text.
  void add(const std::string& name, const std::string& item) {
    List& l = lists_[name];
    if (describe(name).type == BIOESP_OPTION_UINT64_LIST) l.numbers.push_back(parse_u64(name, item));
    else l.strings.push_back(item);
    store(name, l);
  }
  // A seed; negative values wrap to 64 bits (as torch.Generator.manual_seed does).
  void add(const std::string& name, long long item) { add(name, std::to_string(static_cast<uint64_t>(item))); }
  // generate: one more ControlNet with its control image (made "none", "canny" or "scribble"
  // first), its conditioning scale and the share of the steps it acts on (see bioesp_control).
  void add_control(const ControlNet& net, const Image& image, double scale = 1.0, double start = 0.0, double end = 1.0,
                   const std::string& preprocess = "none") {
    auto* g = static_cast<bioesp_generate_options*>(generate_struct());
    controls_.push_back(Control{net, image, preprocess});
    bioesp_control c;
    bioesp_control_init(&c);
    c.controlnet = net.handle();
    c.image = &controls_.back().image.view();
    c.preprocess = controls_.back().preprocess.c_str();
    c.scale = static_cast<float>(scale);
    c.start = static_cast<float>(start);
    c.end = static_cast<float>(end);
    c_controls_.push_back(c);
    g->controls = c_controls_.data();
    g->num_controls = c_controls_.size();
  }
  // Empties a list, or unsets the image.
  void clear(const std::string& name) {
    if (describe(name).type == BIOESP_OPTION_STRUCT_LIST) {
      auto* g = static_cast<bioesp_generate_options*>(generate_struct());
      controls_.clear();
      c_controls_.clear();
      g->controls = nullptr;
      g->num_controls = 0;
      return;
    }
    if (describe(name).type == BIOESP_OPTION_IMAGE) {
      check(bioesp_option_set_list(kind_, c_.get(), name.c_str(), nullptr, 0));
      images_.erase(name);
      return;
    }
    List& l = lists_[name];
    l = List();
    store(name, l);
  }
  void set_image(const std::string& name, const Image& image) {
    Image& kept = images_[name];
    kept = image;
    check(bioesp_option_set_list(kind_, c_.get(), name.c_str(), &kept.view(), 1));
  }
  // The field as the library writes it ("" for an unset string, lists as JSON).
  std::string get(const std::string& name) const {
    char* text = nullptr;
    check(bioesp_option_get(kind_, c_.get(), name.c_str(), &text));
    std::string out = text;
    bioesp_string_free(text);
    return out;
  }

#ifndef SWIG
  // A copy of the C struct for a call (the copy points into this object: keep it alive).
  template <class T>
  T as(bioesp_options_kind want) const {
    if (want != kind_)
      throw Error(BIOESP_ERR_INVALID_ARGUMENT,
                  "invalid argument: these are " + kind() + " options, not " + bioesp_options_kind_name(want));
    T out;
    std::memcpy(&out, c_.get(), sizeof out);
    return out;
  }
#endif

 private:
  struct List {
    std::vector<std::string> strings;
    std::vector<const char*> pointers;
    std::vector<uint64_t> numbers;
  };
  // What add_control keeps alive: the net, the image its view points into, the preprocess name.
  struct Control {
    ControlNet net;
    Image image;
    std::string preprocess;
  };
  void* generate_struct() {
    if (kind_ != BIOESP_OPTIONS_GENERATE)
      throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: controls are generate options, not " + kind());
    return c_.get();
  }
  bioesp_option describe(const std::string& name) const {
    bioesp_option o{};
    o.struct_size = sizeof o;
    check(bioesp_option_find(kind_, name.c_str(), &o));
    return o;
  }
  bioesp_option describe_at(size_t i) const {
    bioesp_option o{};
    o.struct_size = sizeof o;
    check(bioesp_option_at(kind_, i, &o));
    return o;
  }
  static uint64_t parse_u64(const std::string& name, const std::string& text) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || text[0] == '+' || *end || errno)
      throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: " + name + ": must be a non-negative integer, not '" + text + "'");
    return v;
  }
  void store(const std::string& name, List& l) {
    l.pointers.clear();
    for (const auto& s : l.strings) l.pointers.push_back(s.c_str());
    const bool numbers = !l.numbers.empty();
    const void* items = numbers ? static_cast<const void*>(l.numbers.data()) : static_cast<const void*>(l.pointers.data());
    check(bioesp_option_set_list(kind_, c_.get(), name.c_str(), items, numbers ? l.numbers.size() : l.pointers.size()));
  }

  bioesp_options_kind kind_ = BIOESP_OPTIONS_GENERATE;
  std::unique_ptr<void, void (*)(void*)> c_{nullptr, bioesp_options_free};
  std::map<std::string, std::unique_ptr<std::string>> text_;
  std::map<std::string, List> lists_;
  std::map<std::string, Image> images_;
  std::deque<Control> controls_;
  std::vector<bioesp_control> c_controls_;
};

inline void Images::save_animation(const std::string& path, const Options& animation) const {
  auto o = animation.as<bioesp_animation_options>(BIOESP_OPTIONS_ANIMATION);
  check(bioesp_images_save_animation(set_.get(), path.c_str(), &o));
}

inline void Image::save(const std::string& path, const Options& options) const {
  auto o = options.as<bioesp_save_options>(BIOESP_OPTIONS_SAVE);
  save(path, static_cast<const void*>(&o));
}

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
  // Live previews (with preview_every ≥ 1), polled: the latest one of each image, empty until the
  // first; never blocks. preview_step() is the step it shows. (A Preview sees every one.)
  Images preview() const {
    bioesp_images* out = nullptr;
    check(bioesp_job_preview(handle(), &out, nullptr));
    return Images(out);
  }
  long long preview_step() const {
    bioesp_images* out = nullptr;
    uint64_t step = 0;
    check(bioesp_job_preview(handle(), &out, &step));
    bioesp_images_free(out);
    return static_cast<long long>(step);
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
  explicit Model(const std::string& path) { open(path, Options("model")); }
  // With "model" options (device, dtype, config_dir, …).
  Model(const std::string& path, const Options& o) { open(path, o); }
  ~Model() { close(); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Frees the model (after its running jobs); later calls fail. Also done by the destructor.
  void close() {
    if (model_) bioesp_model_free(model_);
    model_ = nullptr;
  }

  // With "generate" options.
  Images generate(const Options& o) { return generate(o, nullptr, nullptr); }
  // progress may be null.
  Images generate(const Options& o, Progress* progress) { return generate(o, progress, nullptr); }
  // progress and preview may be null; preview needs the options' preview_every ≥ 1.
  Images generate(const Options& o, Progress* progress, Preview* preview) {
    auto c = o.as<bioesp_generate_options>(BIOESP_OPTIONS_GENERATE);
    detail::Trampoline t;
    t.attach(progress, preview, c);
    bioesp_images* out = nullptr;
    bioesp_status s = bioesp_generate(handle(), &c, &out);
    t.rethrow();
    check(s);
    return Images(out);
  }

  Job* generate_async(const Options& o) { return generate_async(o, nullptr, nullptr); }
  Job* generate_async(const Options& o, Progress* progress) { return generate_async(o, progress, nullptr); }
  // The progress and preview objects are called on the job's worker thread; keep them alive until
  // the job ends.
  Job* generate_async(const Options& o, Progress* progress, Preview* preview) {
    auto c = o.as<bioesp_generate_options>(BIOESP_OPTIONS_GENERATE);
    std::unique_ptr<detail::Trampoline> t;
    if (progress || preview) {
      t.reset(new detail::Trampoline);
      t->attach(progress, preview, c);
    }
    bioesp_job* job = nullptr;
    check(bioesp_generate_async(handle(), &c, &job));
    return new Job(job, std::move(t));
  }

  // Frames morphing between keyframes, with "animate" options (see bioesp_animate); progress
  // may be null.
  Images animate(const Options& o, Progress* progress) {
    auto c = o.as<bioesp_animate_options>(BIOESP_OPTIONS_ANIMATE);
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

  // Textual inversion, for `token`; without one (or ""), the token the file names, else its stem.
  void add_embedding(const std::string& path) { add_embedding(path, ""); }
  void add_embedding(const std::string& path, const std::string& token) {
    check(bioesp_model_add_embedding(handle(), path.c_str(), token.empty() ? nullptr : token.c_str()));
  }
  void remove_embedding(const std::string& token) { check(bioesp_model_remove_embedding(handle(), token.c_str())); }
  // The attached embeddings' tokens, sorted, one per line.
  std::string embeddings() {
    char* lines = nullptr;
    check(bioesp_model_embeddings(handle(), &lines));
    std::string out = lines;
    bioesp_string_free(lines);
    return out;
  }

 private:
  friend class ControlNet;
  void open(const std::string& path, const Options& o) {
    auto c = o.as<bioesp_model_options>(BIOESP_OPTIONS_MODEL);
    check(bioesp_model_load(path.c_str(), &c, &model_));
  }
  bioesp_model* handle() const {
    if (!model_) throw Error(BIOESP_ERR_INVALID_ARGUMENT, "invalid argument: the model was closed");
    return model_;
  }
  bioesp_model* model_ = nullptr;
};

inline ControlNet::ControlNet(Model& model, const std::string& path) {
  bioesp_controlnet* out = nullptr;
  check(bioesp_controlnet_load(model.handle(), path.c_str(), &out));
  net_.reset(out, bioesp_controlnet_free);
}

// The schedulers generate's "scheduler" accepts, in the library's order.
inline std::vector<std::string> schedulers() {
  size_t n = 0;
  check(bioesp_scheduler_count(&n));
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    const char* name = nullptr;
    check(bioesp_scheduler_name(i, &name));
    out.push_back(name);
  }
  return out;
}

// ---- Datasets, training and the Hub: blocking calls (run them on a thread of the host's).

struct Counts {
  size_t done = 0, skipped = 0;  // files downloaded / prepared, and files skipped (each logged)
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

#ifndef SWIG
namespace detail {

inline std::string take_string(char* s) {
  std::string out = s ? s : "";
  bioesp_string_free(s);
  return out;
}

struct TrainTrampoline : Guard {
  TrainProgress* target = nullptr;
  static int call(void* user, const bioesp_train_progress* p) {
    auto* t = static_cast<TrainTrampoline*>(user);
    return t->guard([&] {
      return t->target->on_step(p->stage ? p->stage : "", p->step, p->total, p->loss, p->learning_rate, p->eta_seconds);
    });
  }
  void attach(TrainProgress* p, bioesp_train_options& c) {
    if (!p) return;
    target = p;
    c.progress = call;
    c.progress_user = this;
  }
};

// Runs a C call under a guard; returns what it returned: the callback's exception first, else
// the call's failure.
template <class R, class Call>
R guarded(Guard& g, Call call) {
  R r{};
  bioesp_status s = call(r);
  g.rethrow();
  check(s);
  return r;
}

// Runs fetch, prepare, pull or push with a Progress; returns what the call returned.
template <class C, class R, class Call>
R with_progress(const Options& o, bioesp_options_kind kind, Progress* progress, Call call) {
  auto c = o.as<C>(kind);
  detail::Trampoline t;
  t.attach(progress, c);
  return guarded<R>(t, [&](R& r) { return call(&c, r); });
}

}  // namespace detail
#endif

// Downloads openly licensed images from Wikimedia Commons, with "fetch" options.
inline Counts fetch(const Options& o, Progress* progress) {
  return detail::with_progress<bioesp_fetch_options, Counts>(
      o, BIOESP_OPTIONS_FETCH, progress, [](bioesp_fetch_options* c, Counts& r) { return bioesp_fetch(c, &r.done, &r.skipped); });
}

// Squares, resizes and captions a folder of images for training, with "prepare" options.
inline Counts prepare(const Options& o, Progress* progress) {
  return detail::with_progress<bioesp_prepare_options, Counts>(
      o, BIOESP_OPTIONS_PREPARE, progress, [](bioesp_prepare_options* c, Counts& r) { return bioesp_prepare(c, &r.done, &r.skipped); });
}

// Fine-tunes (DreamBooth-LoRA, or full) with "train" options; returns the LoRA file or folder.
inline std::string train(const Options& o, TrainProgress* progress) {
  auto c = o.as<bioesp_train_options>(BIOESP_OPTIONS_TRAIN);
  detail::TrainTrampoline t;
  t.attach(progress, c);
  return detail::guarded<std::string>(t, [&](std::string& r) {
    char* result = nullptr;
    bioesp_status s = bioesp_train(&c, &result);
    r = detail::take_string(result);
    return s;
  });
}

// A model folder to train from scratch, with "new_model" options; returns its path.
inline std::string new_model(const Options& o) {
  auto c = o.as<bioesp_new_model_options>(BIOESP_OPTIONS_NEW_MODEL);
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

// Downloads a model into the Hub cache, with "pull" options; returns its snapshot folder.
inline std::string pull(const Options& o, Progress* progress) {
  return detail::with_progress<bioesp_pull_options, std::string>(o, BIOESP_OPTIONS_PULL, progress, [](bioesp_pull_options* c, std::string& r) {
    char* snapshot = nullptr;
    bioesp_status s = bioesp_pull(c, &snapshot);
    r = detail::take_string(snapshot);
    return s;
  });
}

// Publishes a LoRA or folder with its model card, with "push" options; returns the commit URL
// ("" when nothing changed).
inline std::string push(const Options& o, Progress* progress) {
  return detail::with_progress<bioesp_push_options, std::string>(o, BIOESP_OPTIONS_PUSH, progress, [](bioesp_push_options* c, std::string& r) {
    char* url = nullptr;
    bioesp_status s = bioesp_push(c, &url);
    r = detail::take_string(url);
    return s;
  });
}

}  // namespace bioesp_host
