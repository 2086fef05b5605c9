// C entry points for images, models, LoRA, and synchronous and asynchronous generation.

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "api/control.h"
#include "api/device.h"
#include "api/guard.h"
#include "api/options.h"
#include "core/threads.h"
#include "hub/pull.h"
#include "image/animation.h"
#include "image/image_io.h"
#include "image/matte.h"
#include "image/resize.h"
#include "pipeline/pipeline.h"
#include "train/evaluate.h"

using namespace bioesp;

struct bioesp_images {
  std::vector<image::Image> list;
};

namespace {

// Callers take the model one at a time, first come first served (a std::mutex promises no
// order): a ticket when they ask, the model when their number comes up.
class Turns {
 public:
  uint64_t take() {
    std::lock_guard<std::mutex> lock(m_);
    return next_++;
  }
  // Waits for turn `t`; gives it up and returns false when `stop()` says so first.
  template <class Stop>
  bool wait(uint64_t t, Stop stop) {
    std::unique_lock<std::mutex> lock(m_);
    changed_.wait(lock, [&] { return serving_ == t || stop(); });
    if (serving_ == t) return true;
    skipped_.insert(t);
    return false;
  }
  // Ends the turn being served (or gives up turn `t` before it came).
  void done() {
    std::lock_guard<std::mutex> lock(m_);
    advance();
  }
  void give_up(uint64_t t) {
    std::lock_guard<std::mutex> lock(m_);
    if (serving_ == t) advance();
    else skipped_.insert(t);
  }
  // Makes waiters look at their stop condition again.
  void wake() {
    { std::lock_guard<std::mutex> lock(m_); }
    changed_.notify_all();
  }

 private:
  void advance() {
    ++serving_;
    while (skipped_.erase(serving_)) ++serving_;
    changed_.notify_all();
  }
  std::mutex m_;
  std::condition_variable changed_;
  uint64_t next_ = 0, serving_ = 0;
  std::set<uint64_t> skipped_;
};

// Holds the model for one synchronous call, in its turn.
class Hold {
 public:
  explicit Hold(Turns& t) : turns_(t) { turns_.wait(turns_.take(), [] { return false; }); }
  ~Hold() { turns_.done(); }
  Hold(const Hold&) = delete;
  Hold& operator=(const Hold&) = delete;

 private:
  Turns& turns_;
};

}  // namespace

struct bioesp_model {
  std::unique_ptr<pipeline::StableDiffusion> sd;
  Turns turns;     // one generation (or LoRA change) at a time, in the order asked
  std::mutex jobs_mutex;
  std::condition_variable jobs_done;
  int jobs = 0;    // live worker threads
  int threads = 0; // intra-op threads of its generations; 0: a share of the cores (core/threads.h)
  // name → (the file or Hub id as given, scale): recorded with the images drawn with them.
  // Changed and read in the model's turn.
  std::map<std::string, std::pair<std::string, float>> loras;
  std::string vae;  // the autoencoder given in place of the model's VAE, as given
  std::map<std::string, std::string> embeddings;  // token → the file as given, recorded alike
};

namespace {

// A generation request that owns its strings and init image (jobs outlive the caller's options).
struct Request {
  pipeline::GenerateOptions g;
  bioesp_progress_fn progress = nullptr;
  void* progress_user = nullptr;
  bioesp_preview_fn preview = nullptr;
  void* preview_user = nullptr;
  std::string tiling;        // as given ("" for none): recorded with the images
  bool transparent = false;  // background "transparent": a plain backdrop, then a matte
  api::ImageRequest images;  // ControlNets to load, settings of the controls and mask
  io::Logger log;            // the caller's, for ControlNets loaded by path when the job runs
};

// What a transparent background asks of every prompt: a backdrop the matte can take away.
constexpr const char* kPlainBackdrop = ", plain white background";
// The text encoder reads 77 tokens (weighted: at most 32 windows of 75); longer prompts are cut
// or refused, and beyond this size refused before the tokenizer spends its time on them.
constexpr size_t kMaxPromptBytes = 64 * 1024;

// A prompt (NULL items are refused by the options table), within its size.
std::string checked_prompt(const char* p, const char* what) {
  const size_t n = std::strlen(p);
  if (n > kMaxPromptBytes)
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(what) + " is " + std::to_string(n) + " bytes; at most " +
                                          std::to_string(kMaxPromptBytes) + " are accepted");
  return p;
}

// The tiling choice (none, x, y, both; checked by the options table) as the axes that wrap.
models::Wrap wrap_of(const std::string& tiling) {
  return {tiling == "x" || tiling == "both", tiling == "y" || tiling == "both"};
}

// Hands previews to a C preview callback, one call per image; false when it asks to cancel.
bool call_preview(bioesp_preview_fn fn, void* user, int done, int total, const std::vector<image::Image>& images) {
  for (size_t i = 0; i < images.size() && fn; ++i) {
    const image::Image& img = images[i];
    bioesp_preview p{sizeof(bioesp_preview), done, total, i,
                     bioesp_image{sizeof(bioesp_image), img.width, img.height, img.channels, img.pixels.data()}};
    if (fn(user, &p) != 0) return false;
  }
  return true;
}

// The pipeline's truncated-prompt notice as a warning through a C log callback.
std::function<void(const std::string&)> truncation_warning(bioesp_log_fn log, void* user) {
  return [log, user](const std::string& cut) {
    if (log) log(user, BIOESP_LOG_WARNING, ("prompt truncated to the text encoder's 77 tokens; cut: " + cut).c_str());
  };
}

// The settings generate and animate share, from either struct (checked against the table).
template <class O>
pipeline::GenerateOptions settings_of(const O& o) {
  pipeline::GenerateOptions g;
  for (size_t i = 0; i < o.num_prompts; ++i) g.prompts.push_back(checked_prompt(o.prompts[i], "a prompt"));
  if (o.negative_prompt) g.negative_prompt = checked_prompt(o.negative_prompt, "the negative prompt");
  g.steps = o.steps;
  g.guidance = o.guidance;
  if (o.scheduler) g.scheduler = o.scheduler;
  g.width = o.width;
  g.height = o.height;
  g.clip_skip = o.clip_skip;
  g.vae_tile_size = o.vae_tile_size;
  g.syntax = o.prompt_syntax == BIOESP_PROMPT_WEIGHTED ? pipeline::PromptSyntax::Weighted : pipeline::PromptSyntax::Plain;
  g.truncated = truncation_warning(o.log, o.log_user);
  return g;
}

Request make_request(const bioesp_generate_options* options) {
  bioesp_generate_options o = read_checked(BIOESP_OPTIONS_GENERATE, options, bioesp_generate_options_init);
  require(o.num_prompts > 0, "no prompts given");
  Request r;
  r.g = settings_of(o);
  r.g.seed = o.seed;
  r.g.device_generator = o.device_generator != 0;
  r.g.images_per_prompt = o.images_per_prompt;
  r.g.strength = o.strength;
  r.g.eta = o.eta;
  r.images = api::set_images(o, r.g);
  r.log = c_logger(o.log, o.log_user);
  require(!o.preview || o.preview_every > 0, "a preview callback needs preview_every ≥ 1");
  r.g.preview_every = o.preview_every;
  r.g.cache_interval = o.cache_interval;
  r.g.cache_branch = o.cache_branch;
  r.g.token_merging = o.token_merging;
  r.g.micro = {o.original_width, o.original_height, o.crop_left, o.crop_top, o.target_width, o.target_height};
  r.g.negative_micro = {o.negative_original_width, o.negative_original_height, o.negative_crop_left,
                        o.negative_crop_top,       o.negative_target_width,    o.negative_target_height};
  r.g.aesthetic_score = o.aesthetic_score;
  r.g.negative_aesthetic_score = o.negative_aesthetic_score;
  r.preview = o.preview;
  r.preview_user = o.preview_user;
  if (o.tiling && std::strcmp(o.tiling, "none") != 0) r.tiling = o.tiling;
  r.g.tiling = wrap_of(r.tiling);
  r.transparent = o.background && std::strcmp(o.background, "transparent") == 0;
  r.progress = o.progress;
  r.progress_user = o.progress_user;
  return r;
}

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// The attached LoRAs as "FILE:SCALE; FILE:SCALE" (by adapter name), the embeddings as
// "FILE:TOKEN; ..." (by token) and the autoencoder given in place of the VAE, for the images'
// settings. Called in the model's turn.
std::vector<std::pair<std::string, std::string>> model_settings(const bioesp_model& m) {
  std::string loras, embeddings;
  for (const auto& [name, lora] : m.loras) loras += (loras.empty() ? "" : "; ") + lora.first + ":" + format_number(lora.second);
  for (const auto& [token, file] : m.embeddings) embeddings += (embeddings.empty() ? "" : "; ") + file + ":" + token;
  std::vector<std::pair<std::string, std::string>> out;
  if (!loras.empty()) out.emplace_back("loras", loras);
  if (!embeddings.empty()) out.emplace_back("embeddings", embeddings);
  if (!m.vae.empty()) out.emplace_back("vae", m.vae);
  return out;
}

using PreviewSink = std::function<bool(int, int, const std::vector<image::Image>&)>;

// Draws the request's images; the caller holds the model's turn. `preview` (when set and the
// request asks for previews) receives them.
std::unique_ptr<bioesp_images> draw(bioesp_model* model, Request& r, const std::function<bool(int, int)>& progress,
                                    const PreviewSink& preview) {
  threads::Share share(model->threads);
  r.g.progress = progress;
  for (size_t i = 0; i < r.images.paths.size(); ++i)
    if (!r.images.paths[i].empty()) r.g.controls[i].net = api::load_controlnet(*model->sd, r.images.paths[i], r.log);
  if (r.g.preview_every > 0) r.g.preview = preview;
  pipeline::GenerateOptions drawn = r.g;
  drawn.progress = [&](int done, int total) {  // each step follows the jobs that came or went
    share.apply();
    return progress(done, total);
  };
  if (r.transparent)
    for (auto& p : drawn.prompts) p += kPlainBackdrop;
  torch::Tensor images = model->sd->generate(drawn);
  const auto attached = model_settings(*model);
  auto out = std::make_unique<bioesp_images>();
  out->list = pipeline::to_images(images);
  for (size_t i = 0; i < out->list.size(); ++i) {
    image::Image& img = out->list[i];
    if (r.transparent) img = image::matte(img);
    const auto& g = r.g;
    size_t prompt = static_cast<size_t>(i / g.images_per_prompt);
    img.text = {{"prompt", g.prompts[prompt]},
                {"negative_prompt", g.negative_prompt.value_or("")},
                {"seed", std::to_string(g.seed)},
                {"batch_index", std::to_string(i)},
                {"steps", std::to_string(g.steps)},
                {"guidance", format_number(g.guidance)},
                {"scheduler", g.scheduler.empty() ? "default" : g.scheduler},
                {"width", std::to_string(img.width)},
                {"height", std::to_string(img.height)},
                {"clip_skip", std::to_string(g.clip_skip)},
                {"software", std::string("bioesp ") + bioesp_version_string()}};
    if (g.init_image.defined()) img.text.emplace_back("strength", format_number(g.strength));
    // Recorded only when set, so default images stay byte for byte what they were.
    if (!r.tiling.empty()) img.text.emplace_back("tiling", r.tiling);
    if (r.transparent) img.text.emplace_back("background", "transparent");
    if (g.eta >= 0) img.text.emplace_back("eta", format_number(g.eta));
    if (g.cache_interval > 1) {
      img.text.emplace_back("cache_interval", std::to_string(g.cache_interval));
      img.text.emplace_back("cache_branch", std::to_string(g.cache_branch));
    }
    if (g.token_merging > 0) img.text.emplace_back("token_merging", format_number(g.token_merging));
    if (g.syntax == pipeline::PromptSyntax::Weighted) img.text.emplace_back("prompt_syntax", "weighted");
    img.text.insert(img.text.end(), attached.begin(), attached.end());
    img.text.insert(img.text.end(), r.images.recorded.begin(), r.images.recorded.end());
  }
  return out;
}

}  // namespace

struct bioesp_job {
  bioesp_model* model = nullptr;
  Request request;
  uint64_t turn = 0;
  std::thread worker;
  mutable std::mutex m;
  std::condition_variable changed;
  bioesp_job_state state = BIOESP_JOB_QUEUED;
  uint64_t step = 0, total = 0;
  std::atomic<bool> cancel{false};
  bioesp_status status = BIOESP_OK;
  std::string error;
  std::unique_ptr<bioesp_images> result;
  bool taken = false;
  std::vector<image::Image> preview;  // the latest previews, and the step they show
  uint64_t preview_step = 0;

  // The worker thread: waits for the job's turn (QUEUED), holds the model (RUNNING), finishes.
  void work() {
    std::unique_ptr<bioesp_images> images;
    bioesp_status s = guard([&] {
      if (!model->turns.wait(turn, [this] { return cancel.load(); })) fail(BIOESP_ERR_CANCELLED, "generation cancelled");
      struct Release {
        Turns& turns;
        ~Release() { turns.done(); }
      } release{model->turns};
      set_state(BIOESP_JOB_RUNNING);
      if (cancel.load()) fail(BIOESP_ERR_CANCELLED, "generation cancelled");
      images = draw(
          model, request, [this](int done, int all) { return on_step(done, all); },
          [this](int done, int all, const std::vector<image::Image>& previews) { return on_preview(done, all, previews); });
    });
    {
      std::lock_guard<std::mutex> lock(m);
      status = s;
      error = s == BIOESP_OK ? "" : bioesp_last_error();
      result = std::move(images);
      state = BIOESP_JOB_DONE;
    }
    changed.notify_all();
    finished_with_model();
  }

  bool on_step(int done, int all) {
    {
      std::lock_guard<std::mutex> lock(m);
      step = static_cast<uint64_t>(done);
      total = static_cast<uint64_t>(all);
    }
    if (!call_progress(request.progress, request.progress_user, "denoise", step, total)) return false;
    return !cancel.load();
  }

  // Keeps the latest previews for bioesp_job_preview, then hands them to the callback.
  bool on_preview(int done, int all, const std::vector<image::Image>& previews) {
    {
      std::lock_guard<std::mutex> lock(m);
      preview = previews;
      preview_step = static_cast<uint64_t>(done);
    }
    return call_preview(request.preview, request.preview_user, done, all, previews) && !cancel.load();
  }

  void set_state(bioesp_job_state s) {
    {
      std::lock_guard<std::mutex> lock(m);
      state = s;
    }
    changed.notify_all();
  }

  // Asks the job to end; a queued one ends at once, without waiting for its turn. While the job
  // is not done its model exists (bioesp_model_free waits for it), and it cannot finish while
  // `m` is held here.
  void stop() {
    cancel = true;
    std::lock_guard<std::mutex> lock(m);
    if (state != BIOESP_JOB_DONE) model->turns.wake();
  }

  // The model may be freed once every job that counted itself has said so.
  void finished_with_model() {
    std::lock_guard<std::mutex> lock(model->jobs_mutex);
    --model->jobs;
    model->jobs_done.notify_all();
  }
};

extern "C" {

bioesp_status bioesp_images_load(const char* path, bioesp_images** out) {
  return guard([&] {
    require(path && out, "path and out must not be NULL");
    *out = nullptr;
    auto set = std::make_unique<bioesp_images>();
    set->list.push_back(image::read_image(path));
    *out = set.release();
  });
}

void bioesp_images_free(bioesp_images* images) { delete images; }

bioesp_status bioesp_images_copy(const bioesp_image* images, size_t count, bioesp_images** out) {
  return guard([&] {
    require(out && (images || count == 0), "images and out must not be NULL");
    *out = nullptr;
    auto set = std::make_unique<bioesp_images>();
    for (size_t i = 0; i < count; ++i) {
      const bioesp_image& v = images[i];
      require(v.pixels && v.width > 0 && v.height > 0, "an image has no pixels");
      require(v.channels == 1 || v.channels == 3 || v.channels == 4, "images have 1, 3 or 4 channels");
      image::Image img;
      img.width = v.width;
      img.height = v.height;
      img.channels = v.channels == 1 ? 3 : v.channels;
      const size_t n = size_t(v.width) * v.height;
      if (v.channels == 1) {
        img.pixels.reserve(n * 3);
        for (size_t p = 0; p < n; ++p) img.pixels.insert(img.pixels.end(), 3, v.pixels[p]);
      } else {
        img.pixels.assign(v.pixels, v.pixels + n * v.channels);
      }
      set->list.push_back(std::move(img));
    }
    *out = set.release();
  });
}

bioesp_status bioesp_images_count(const bioesp_images* images, size_t* out) {
  return guard([&] {
    require(images && out, "images and out must not be NULL");
    *out = images->list.size();
  });
}

bioesp_status bioesp_images_get(const bioesp_images* images, size_t index, bioesp_image* out) {
  return guard([&] {
    require(images != nullptr, "images must not be NULL");
    if (index >= images->list.size()) fail(BIOESP_ERR_INVALID_ARGUMENT, "image index out of range");
    const auto& img = images->list[index];
    write_output(out, bioesp_image{0, img.width, img.height, img.channels, img.pixels.data()});
  });
}

const char* bioesp_images_setting(const bioesp_images* images, size_t index, const char* key) {
  if (!images || !key || index >= images->list.size()) return nullptr;
  for (const auto& [k, v] : images->list[index].text)
    if (k == key) return v.c_str();
  return nullptr;
}

bioesp_status bioesp_images_grid(const bioesp_images* images, uint32_t columns, uint32_t cell, bioesp_images** out) {
  return guard([&] {
    require(images && out, "images and out must not be NULL");
    *out = nullptr;
    auto set = std::make_unique<bioesp_images>();
    set->list.push_back(image::grid(images->list, columns, cell));
    *out = set.release();
  });
}

void bioesp_save_options_init(bioesp_save_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->jpeg_quality = 92;
}

bioesp_status bioesp_images_save(const bioesp_images* images, size_t index, const char* path,
                                 const bioesp_save_options* options) {
  return guard([&] {
    require(images && path, "images and path must not be NULL");
    if (index >= images->list.size()) fail(BIOESP_ERR_INVALID_ARGUMENT, "image index out of range");
    auto o = read_checked(BIOESP_OPTIONS_SAVE, options, bioesp_save_options_init);
    std::string p = path, ext = p.substr(p.find_last_of('.') == std::string::npos ? p.size() : p.find_last_of('.'));
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".png") image::write_png(p, images->list[index]);
    else if (ext == ".jpg" || ext == ".jpeg") image::write_jpeg(p, images->list[index], o.jpeg_quality);
    else fail(BIOESP_ERR_INVALID_ARGUMENT, p + ": the extension must be .png, .jpg or .jpeg");
  });
}

void bioesp_animate_options_init(bioesp_animate_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->frames = 16;
  o->steps = 25;
  o->guidance = 7.5f;
}

bioesp_status bioesp_animate(bioesp_model* model, const bioesp_animate_options* options, bioesp_images** frames) {
  return guard([&] {
    require(model && options && frames, "model, options and frames must not be NULL");
    *frames = nullptr;
    auto o = read_checked(BIOESP_OPTIONS_ANIMATE, options, bioesp_animate_options_init);
    pipeline::AnimateOptions a;
    a.settings = settings_of(o);
    a.prompts = std::move(a.settings.prompts);
    a.seeds.assign(o.seeds, o.seeds + o.num_seeds);
    a.frames = o.frames;
    torch::Tensor rendered;
    std::vector<std::pair<std::string, std::string>> attached;
    {
      Hold hold(model->turns);
      threads::Share share(model->threads);
      a.progress = [&](int done, int total) {
        share.apply();
        return call_progress(o.progress, o.progress_user, "animate", done, total);
      };
      rendered = model->sd->animate(a);
      attached = model_settings(*model);
    }
    auto out = std::make_unique<bioesp_images>();
    out->list = pipeline::to_images(rendered);
    std::string prompts, seeds;
    for (const auto& p : a.prompts) prompts += (prompts.empty() ? "" : " | ") + p;
    for (auto v : a.seeds) seeds += (seeds.empty() ? "" : ",") + std::to_string(v);
    for (size_t i = 0; i < out->list.size(); ++i) {
      out->list[i].text = {{"keyframe_prompts", prompts}, {"keyframe_seeds", seeds}, {"frame", std::to_string(i)},
                           {"frames", std::to_string(a.frames)}, {"negative_prompt", a.settings.negative_prompt.value_or("")},
                           {"steps", std::to_string(a.settings.steps)}, {"guidance", format_number(a.settings.guidance)},
                           {"scheduler", a.settings.scheduler.empty() ? "default" : a.settings.scheduler},
                           {"software", std::string("bioesp ") + bioesp_version_string()}};
      if (a.settings.syntax == pipeline::PromptSyntax::Weighted) out->list[i].text.emplace_back("prompt_syntax", "weighted");
      out->list[i].text.insert(out->list[i].text.end(), attached.begin(), attached.end());
    }
    if (o.pingpong)
      for (size_t i = out->list.size() - 1; i-- > 1;) out->list.push_back(out->list[i]);
    *frames = out.release();
  });
}

void bioesp_animation_options_init(bioesp_animation_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->fps = 8;
  o->loop = 1;
  o->quality = 80;
}

bioesp_status bioesp_images_save_animation(const bioesp_images* frames, const char* path, const bioesp_animation_options* options) {
  return guard([&] {
    require(frames && path, "frames and path must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_ANIMATION, options, bioesp_animation_options_init);
    image::AnimationOptions a;
    a.fps = o.fps;
    a.loop = o.loop != 0;
    a.quality = o.quality;
    image::save_animation(frames->list, path, a);
  });
}

void bioesp_model_options_init(bioesp_model_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->device = BIOESP_DEVICE_CPU;
  o->dtype = BIOESP_DTYPE_F32;
  o->weight_storage = BIOESP_WEIGHTS_AS_FILE;
}

bioesp_status bioesp_model_load(const char* path, const bioesp_model_options* options, bioesp_model** out) {
  return guard([&] {
    require(path && out, "path and out must not be NULL");
    *out = nullptr;
    auto o = read_checked(BIOESP_OPTIONS_MODEL, options, bioesp_model_options_init);
    pipeline::LoadOptions lo;
    lo.log = c_logger(o.log, o.log_user);
    if (o.config_dir) lo.config_dir = hub::resolve_model(o.config_dir, lo.log);
    if (o.variant) lo.variant = o.variant;
    lo.device = device_from(o.device, o.device_index);
    lo.dtype = o.dtype == BIOESP_DTYPE_F16 ? torch::kFloat16 : o.dtype == BIOESP_DTYPE_BF16 ? torch::kBFloat16 : torch::kFloat32;
    threads::Share share(o.threads);  // loading converts and copies weights
    if (o.vae) lo.vae = hub::resolve_model(o.vae, lo.log);
    if (o.preview_vae) lo.preview_vae = hub::resolve_model(o.preview_vae, lo.log);
    if (o.weight_storage == BIOESP_WEIGHTS_F16) lo.weight_storage = torch::kFloat16;
    if (o.weight_storage == BIOESP_WEIGHTS_BF16) lo.weight_storage = torch::kBFloat16;
    if (o.weight_storage == BIOESP_WEIGHTS_INT8) lo.weight_storage = torch::kInt8;
    lo.weights_as_file = o.weight_storage == BIOESP_WEIGHTS_AS_FILE;
    auto m = std::make_unique<bioesp_model>();
    m->threads = o.threads;
    m->sd = pipeline::StableDiffusion::load(hub::resolve_model(path, lo.log), lo);
    if (o.vae) m->vae = o.vae;
    *out = m.release();
  });
}

void bioesp_model_free(bioesp_model* model) {
  if (!model) return;
  std::unique_lock<std::mutex> lock(model->jobs_mutex);
  model->jobs_done.wait(lock, [&] { return model->jobs == 0; });
  lock.unlock();
  delete model;
}

bioesp_status bioesp_model_add_lora(bioesp_model* model, const char* path, float scale, const char* name) {
  return guard([&] {
    require(model && path && name, "model, path and name must not be NULL");
    Hold hold(model->turns);
    model->sd->add_lora(hub::resolve_lora(path, nullptr), scale, name);
    model->loras[name] = {path, scale};
  });
}

bioesp_status bioesp_model_set_lora_scale(bioesp_model* model, const char* name, float scale) {
  return guard([&] {
    require(model && name, "model and name must not be NULL");
    require(std::isfinite(scale), "scale must be finite");
    Hold hold(model->turns);
    if (!model->sd->set_lora_scale(name, scale)) fail(BIOESP_ERR_NOT_FOUND, std::string("no LoRA named ") + name);
    model->loras[name].second = scale;
  });
}

bioesp_status bioesp_controlnet_load(bioesp_model* model, const char* path, bioesp_controlnet** out) {
  return guard([&] {
    require(model && path && out, "model, path and out must not be NULL");
    *out = nullptr;
    auto c = std::make_unique<bioesp_controlnet>();
    c->net = api::load_controlnet(*model->sd, path, nullptr);
    c->path = path;
    *out = c.release();
  });
}

bioesp_status bioesp_model_remove_lora(bioesp_model* model, const char* name) {
  return guard([&] {
    require(model && name, "model and name must not be NULL");
    Hold hold(model->turns);
    if (!model->sd->remove_lora(name)) fail(BIOESP_ERR_NOT_FOUND, std::string("no LoRA named ") + name);
    model->loras.erase(name);
  });
}

void bioesp_evaluate_options_init(bioesp_evaluate_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->timesteps = 10;
  o->noises = 1;
}

bioesp_status bioesp_evaluate(bioesp_model* model, const bioesp_evaluate_options* options, bioesp_evaluation* result) {
  return guard([&] {
    require(model && options && result, "model, options and result must not be NULL");
    require(result->struct_size >= offsetof(bioesp_evaluation, accuracy) + sizeof result->accuracy,
            "result->struct_size must be set to sizeof(bioesp_evaluation)");
    auto o = read_checked(BIOESP_OPTIONS_EVALUATE, options, bioesp_evaluate_options_init);
    require(o.data != nullptr, "data must be set");
    train::EvaluateOptions e;
    e.data = o.data;
    e.captions = o.captions ? o.captions : "";
    e.classify = o.classify;
    e.timesteps = o.timesteps;
    e.noises = o.noises;
    e.seed = o.seed;
    e.log = c_logger(o.log, o.log_user);
    Hold hold(model->turns);
    threads::Share share(model->threads);
    const auto r = train::evaluate(*model->sd, e);
    result->pictures = static_cast<int>(r.pictures.size());
    result->loss = r.loss;
    result->accuracy = r.accuracy;
  });
}

bioesp_status bioesp_model_add_embedding(bioesp_model* model, const char* path, const char* token) {
  return guard([&] {
    require(model && path, "model and path must not be NULL");
    Hold hold(model->turns);
    model->embeddings[model->sd->add_embedding(path, token ? token : "")] = path;
  });
}

bioesp_status bioesp_model_remove_embedding(bioesp_model* model, const char* token) {
  return guard([&] {
    require(model && token, "model and token must not be NULL");
    Hold hold(model->turns);
    if (!model->sd->remove_embedding(token)) fail(BIOESP_ERR_NOT_FOUND, std::string("no embedding with the token ") + token);
    model->embeddings.erase(token);
  });
}

bioesp_status bioesp_model_embeddings(bioesp_model* model, char** tokens) {
  return guard([&] {
    require(model && tokens, "model and tokens must not be NULL");
    *tokens = nullptr;
    std::string lines;
    {
      Hold hold(model->turns);
      for (const auto& e : model->embeddings) lines += e.first + "\n";
    }
    *tokens = dup_string(lines);
  });
}

void bioesp_generate_options_init(bioesp_generate_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->steps = 50;
  o->guidance = 7.5f;
  o->images_per_prompt = 1;
  o->strength = 0.8f;
  o->eta = -1.0f;
  o->aesthetic_score = 6.0f;
  o->negative_aesthetic_score = 2.5f;
}

bioesp_status bioesp_generate(bioesp_model* model, const bioesp_generate_options* options, bioesp_images** out) {
  return guard([&] {
    require(model && out, "model and out must not be NULL");
    *out = nullptr;
    Request r = make_request(options);
    auto progress = [&r](int done, int total) {
      return call_progress(r.progress, r.progress_user, "denoise", static_cast<uint64_t>(done), static_cast<uint64_t>(total));
    };
    PreviewSink preview;
    if (r.preview)
      preview = [&r](int done, int total, const std::vector<image::Image>& images) {
        return call_preview(r.preview, r.preview_user, done, total, images);
      };
    Hold hold(model->turns);
    *out = draw(model, r, progress, preview).release();
  });
}

bioesp_status bioesp_generate_async(bioesp_model* model, const bioesp_generate_options* options, bioesp_job** out) {
  return guard([&] {
    require(model && out, "model and out must not be NULL");
    *out = nullptr;
    auto job = std::make_unique<bioesp_job>();
    job->model = model;
    job->request = make_request(options);
    job->turn = model->turns.take();  // the order of submission is the order of running
    {
      std::lock_guard<std::mutex> lock(model->jobs_mutex);
      ++model->jobs;
    }
    try {
      bioesp_job* j = job.get();
      j->worker = std::thread([j] { j->work(); });
    } catch (const std::system_error& e) {  // no thread: its count and its turn are given back
      model->turns.give_up(job->turn);
      job->finished_with_model();
      fail(BIOESP_ERR_OUT_OF_MEMORY, std::string("could not start the job's thread (") + e.what() +
                                         "): too many threads or too little memory");
    }
    *out = job.release();
  });
}

bioesp_status bioesp_job_poll(const bioesp_job* job, bioesp_job_state* state, uint64_t* step, uint64_t* total) {
  return guard([&] {
    require(job != nullptr, "job must not be NULL");
    std::lock_guard<std::mutex> lock(job->m);
    if (state) *state = job->state;
    if (step) *step = job->step;
    if (total) *total = job->total;
  });
}

bioesp_status bioesp_job_wait(bioesp_job* job, int timeout_ms, int* finished) {
  return guard([&] {
    require(job != nullptr, "job must not be NULL");
    std::unique_lock<std::mutex> lock(job->m);
    auto done = [&] { return job->state == BIOESP_JOB_DONE; };
    if (timeout_ms < 0) job->changed.wait(lock, done);
    else job->changed.wait_for(lock, std::chrono::milliseconds(timeout_ms), done);
    if (finished) *finished = done() ? 1 : 0;
  });
}

bioesp_status bioesp_job_preview(const bioesp_job* job, bioesp_images** out, uint64_t* step) {
  return guard([&] {
    require(job && out, "job and out must not be NULL");
    *out = nullptr;
    std::lock_guard<std::mutex> lock(job->m);
    if (step) *step = job->preview_step;
    if (job->preview.empty()) return;
    auto set = std::make_unique<bioesp_images>();
    set->list = job->preview;
    *out = set.release();
  });
}

bioesp_status bioesp_job_cancel(bioesp_job* job) {
  return guard([&] {
    require(job != nullptr, "job must not be NULL");
    job->stop();
  });
}

bioesp_status bioesp_job_take(bioesp_job* job, bioesp_images** out) {
  return guard([&] {
    require(job && out, "job and out must not be NULL");
    *out = nullptr;
    std::lock_guard<std::mutex> lock(job->m);
    if (job->state != BIOESP_JOB_DONE) fail(BIOESP_ERR_INVALID_ARGUMENT, "the job has not finished");
    if (job->status != BIOESP_OK) fail(job->status, job->error);
    if (job->taken) fail(BIOESP_ERR_INVALID_ARGUMENT, "the job's images were already taken");
    job->taken = true;
    *out = job->result.release();
  });
}

void bioesp_job_free(bioesp_job* job) {
  if (!job) return;
  job->stop();
  if (job->worker.joinable()) job->worker.join();
  delete job;
}

}  // extern "C"
