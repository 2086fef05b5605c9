#include "generation.h"

#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "options.h"
#include "request.h"
#include "rules.h"
#include "strings.h"

extern "C" {
#include "../cli.h"
}

namespace studio {
namespace {

json settings_json(const Settings& s) {
  json out = s.options;
  out.update(json{{"prompt", s.prompt}, {"images", s.images}, {"seed", s.seed}, {"lora", s.lora},
                  {"lora_scale", s.lora_scale}, {"init", s.init}});
  const Drawing& d = s.drawing;
  if (!d.file.empty()) out.update(json{{"drawing", d.file}, {"drawing_use", d.use}});
  if (d.use == "control")
    out.update(json{{"controlnet", d.controlnet}, {"control_scale", d.scale}, {"control_start", d.start}, {"control_end", d.end}});
  return out;
}

using Images = std::unique_ptr<bioesp_images, void (*)(bioesp_images*)>;

// The keys of a generate request that are the studio's, beside the generate options; those of a
// drawing mean nothing without one.
const std::initializer_list<const char*> kDrawingKeys = {"drawing_use", "controlnet", "control_scale", "control_start",
                                                         "control_end"};
const std::initializer_list<const char*> kGenerateKeys = {
    "prompt", "images", "seed", "lora", "lora_scale", "init", "drawing", "drawing_use", "controlnet", "control_scale",
    "control_start", "control_end"};

// A picture file as the library reads it, into `owner` and its view; false (`error` says why)
// when it cannot be read.
bool load_picture(const fs::path& file, Images& owner, bioesp_image& view, std::string& error) {
  bioesp_images* loaded = nullptr;
  if (bioesp_images_load(file.c_str(), &loaded) != BIOESP_OK) {
    error = last_error(file.filename().string());
    return false;
  }
  owner.reset(loaded);
  view.struct_size = sizeof view;
  bioesp_images_get(loaded, 0, &view);
  return true;
}

}  // namespace

struct Generation::Run {
  Generation* gen = nullptr;
  std::string id;
  Settings s;
  std::unique_ptr<Animation> animation;
  std::vector<std::unique_ptr<Picture>> pictures;  // its jobs, once submitted
  std::atomic<bool> cancel{false};
  std::string error;        // a failure while submitting its jobs
  int64_t last_event = 0;   // an animation's progress events: at most every 100 ms
};

struct Generation::Picture {
  Run* run = nullptr;
  int index = 0;
  bioesp_job* job = nullptr;
  int64_t last_event = 0;   // progress events: at most every 100 ms
};

Generation::Generation(const Config& cfg, bioesp_model* model, EventBus& bus, Gallery& gallery)
    : cfg_(cfg), model_(model), bus_(bus), gallery_(gallery), drawings_(gallery.dir() / "drawings") {
  attach_embeddings();
  load_controlnets();
  follower_ = std::thread([this] { contained("generation", [this] { follow(); }); });
}

Generation::~Generation() {
  {
    std::lock_guard<std::mutex> lock(m_);
    quit_ = true;
    for (auto& run : submitted_)
      for (auto& p : run->pictures) bioesp_job_cancel(p->job);
    if (alone_) alone_->cancel = true;
  }
  cv_.notify_all();
  follower_.join();
  for (auto& run : submitted_)  // left by the follower when it stopped
    for (auto& p : run->pictures) bioesp_job_free(p->job);
}

void Generation::attach_embeddings() {
  embeddings_.skipped = json::array();
  for (const auto& f : listing(cfg_.embeddings, false, embeddings_.skipped)) {
    const std::string e = f.extension().string();
    if (e != ".pt" && e != ".safetensors" && e != ".bin") continue;
    if (bioesp_model_add_embedding(model_, f.c_str(), nullptr) != BIOESP_OK)
      skip(embeddings_.skipped, f.filename().string(), bioesp_last_error());
  }
  char* lines = nullptr;
  if (bioesp_model_embeddings(model_, &lines) != BIOESP_OK) throw std::runtime_error(last_error("embeddings"));
  const std::string all = lines;
  bioesp_string_free(lines);
  for (size_t at = 0, end; (end = all.find('\n', at)) != std::string::npos; at = end + 1)
    embeddings_.tokens.push_back(all.substr(at, end - at));
}

void Generation::load_controlnets() {
  controlnets_.skipped = json::array();
  for (const bool folders : {true, false}) {
    for (const auto& f : listing(cfg_.controlnets, folders, controlnets_.skipped)) {
      const std::string e = f.extension().string();
      if (!folders && e != ".safetensors" && e != ".pth" && e != ".ckpt") continue;
      bioesp_controlnet* net = nullptr;
      if (bioesp_controlnet_load(model_, f.c_str(), &net) != BIOESP_OK)
        skip(controlnets_.skipped, f.filename().string(), bioesp_last_error());
      else
        controlnets_.nets.emplace(f.filename().string(), ControlNets::Net(net, bioesp_controlnet_free));
    }
  }
}

std::map<std::string, fs::path> Generation::loras(json& skipped) {
  std::map<std::string, fs::path> out;
  for (const auto& d : listing(cfg_.trainings, true, skipped)) {
    const fs::path f = d / "pytorch_lora_weights.safetensors";
    std::error_code ec;
    if (fs::is_regular_file(f, ec)) out[d.filename().string()] = f;
  }
  if (cfg_.loras.empty()) return out;
  for (const auto& f : listing(cfg_.loras, false, skipped)) {
    const std::string e = f.extension().string();
    if (e == ".safetensors" || e == ".ckpt" || e == ".pt" || e == ".bin") out[f.filename().string()] = f;
  }
  return out;
}

Settings Generation::settings_of(const json& j) {
  Settings s;
  s.prompt = text_field(j, "prompt");
  if (s.prompt.empty()) throw HttpError(400, say("need_prompt"));
  s.images = int_field(j, "images", 1, 1, rules::max_images);
  const double seed = number_field(j, "seed", -1, -1, 4294967295.0);
  s.seed = seed < 0 ? random_seed() : static_cast<uint64_t>(seed);
  Fields options(BIOESP_OPTIONS_GENERATE);
  options.take(j);
  s.options = options.values();
  s.lora = text_field(j, "lora");
  json skipped;
  if (!s.lora.empty() && !loras(skipped).count(s.lora)) throw HttpError(400, say("no_lora", {{"name", s.lora}}));
  s.lora_scale = number_field(j, "lora_scale", 1.0, -4, 4);
  s.init = text_field(j, "init");
  if (!s.init.empty()) gallery_.picture(s.init);
  s.drawing = drawing_of(j, s);
  return s;
}

Drawing Generation::drawing_of(const json& j, const Settings& s) {
  Drawing d;
  d.file = drawings_.take(j, "drawing");
  if (d.file.empty()) {
    for (const char* k : kDrawingKeys)
      if (j.contains(k) && !j[k].is_null() && j[k] != "") throw HttpError(400, say("needs_drawing", {{"field", field_name(k)}}));
    return d;
  }
  d.use = text_field(j, "drawing_use");
  if (d.use != "control" && d.use != "mask")
    throw HttpError(400, say("must_be_one_of", {{"field", field_name("drawing_use")}, {"choices", "control, mask"}}));
  if (d.use == "mask") {
    if (s.init.empty()) throw HttpError(400, say("mask_needs_init"));
    return d;
  }
  if (controlnets_.nets.empty()) throw HttpError(400, say("no_controlnets"));
  d.controlnet = text_field(j, "controlnet");
  if (d.controlnet.empty()) d.controlnet = controlnets_.nets.begin()->first;
  if (!controlnets_.nets.count(d.controlnet)) throw HttpError(400, say("no_controlnet", {{"name", d.controlnet}}));
  d.scale = number_field(j, "control_scale", 1.0, 0, 2);
  d.start = number_field(j, "control_start", 0.0, 0, 1);
  d.end = number_field(j, "control_end", 1.0, 0, 1);
  if (!(d.start < d.end)) throw HttpError(400, say("control_window"));
  return d;
}

std::string Generation::generate(const json& request) {
  refuse_unknown(request, {BIOESP_OPTIONS_GENERATE}, kGenerateKeys);
  return submit(settings_of(request), nullptr);
}

std::string Generation::animate(const json& request) {
  refuse_unknown(request, {BIOESP_OPTIONS_ANIMATE, BIOESP_OPTIONS_ANIMATION}, {"from", "to", "format"});
  auto a = std::make_unique<Animation>();
  a->from = text_field(request, "from");
  a->to = text_field(request, "to");
  const json from = gallery_.entry(a->from), to = gallery_.entry(a->to);
  Fields options(BIOESP_OPTIONS_ANIMATE), file(BIOESP_OPTIONS_ANIMATION);
  if (!from.contains("prompt_syntax")) options.set("prompt_syntax", "plain");  // drawn before the studio read weights
  options.take(from);
  options.take(request);
  file.take(request);
  a->options = options.values();
  a->file = file.values();
  a->format = choice_field(request, "format", {"gif", "mp4", "webm"});
  a->prompts = {from["prompt"].get<std::string>(), to["prompt"].get<std::string>()};  // entry() checked them
  a->seeds = {from["seed"].get<uint64_t>(), to["seed"].get<uint64_t>()};
  json first = from;
  first["images"] = 1;
  first["seed"] = 0;
  first["init"] = "";  // animations start from noise, without a drawing
  first.erase("drawing");
  for (const char* k : kDrawingKeys) first.erase(k);
  json skipped;
  if (first.contains("lora") && !loras(skipped).count(first["lora"].get<std::string>()))
    first["lora"] = "";  // a LoRA deleted since: the animation is drawn without it
  return submit(settings_of(first), std::move(a));
}

std::string Generation::submit(Settings s, std::unique_ptr<Animation> animation) {
  auto run = std::make_shared<Run>();
  run->gen = this;
  run->s = std::move(s);
  run->animation = std::move(animation);
  const auto pictures = [](const Run& r) { return r.animation ? size_t{1} : static_cast<size_t>(r.s.images); };
  std::lock_guard<std::mutex> lock(m_);
  size_t queued = pictures(*run);
  for (const auto* q : {&waiting_, &submitted_})
    for (const auto& r : *q) queued += pictures(*r);
  if (waiting_.size() + submitted_.size() >= rules::max_queued_runs)
    throw HttpError(429, say("too_many_queued", {{"max", std::to_string(rules::max_queued_runs)}}));
  if (queued > rules::max_queued_pictures)
    throw HttpError(429, say("too_many_pictures", {{"max", std::to_string(rules::max_queued_pictures)}}));
  run->id = "g" + std::to_string(++counter_);
  waiting_.push_back(run);
  bus_.publish("job", run_json(*run, "queued"));
  dispatch();
  cv_.notify_all();
  return run->id;
}

void Generation::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(m_);
  auto has = [&](const auto& r) { return r->id == id; };
  auto w = std::find_if(waiting_.begin(), waiting_.end(), has);
  if (w != waiting_.end()) {
    bus_.publish("job", run_json(**w, "cancelled"));
    waiting_.erase(w);
    return;
  }
  auto s = std::find_if(submitted_.begin(), submitted_.end(), has);
  if (s != submitted_.end()) {
    (*s)->cancel = true;
    for (auto& p : (*s)->pictures) bioesp_job_cancel(p->job);
    return;
  }
  if (alone_ && alone_->id == id) {
    alone_->cancel = true;
    return;
  }
  throw HttpError(404, say("no_job", {{"id", id}}));
}

json Generation::running() {
  std::lock_guard<std::mutex> lock(m_);
  const auto& run = !submitted_.empty() ? submitted_.front() : alone_;
  if (!run) return nullptr;
  json j = run_json(*run, "running");
  for (const auto& p : run->pictures) {
    bioesp_job_state state;
    uint64_t step = 0, total = 0;
    if (bioesp_job_poll(p->job, &state, &step, &total) == BIOESP_OK && state != BIOESP_JOB_DONE) {
      j["image"] = p->index;
      j["step"] = step;
      j["steps"] = total;
      break;
    }
  }
  return j;
}

std::string Generation::preview(const std::string& id) {
  Images latest(nullptr, bioesp_images_free);
  {
    std::lock_guard<std::mutex> lock(m_);
    auto run = std::find_if(submitted_.begin(), submitted_.end(), [&](const auto& r) { return r->id == id; });
    for (size_t i = 0; run != submitted_.end() && !latest && i < (*run)->pictures.size(); ++i) {
      bioesp_job* job = (*run)->pictures[i]->job;
      bioesp_job_state state;
      bioesp_images* set = nullptr;
      if (bioesp_job_poll(job, &state, nullptr, nullptr) == BIOESP_OK && state == BIOESP_JOB_RUNNING &&
          bioesp_job_preview(job, &set, nullptr) == BIOESP_OK)
        latest.reset(set);
    }
  }
  if (!latest) throw HttpError(404, say("no_preview", {{"id", id}}));
  // The library writes images to files (atomically): the PNG goes through a temporary one.
  const fs::path file = fs::temp_directory_path() / ("bioesp-studio-preview-" + std::to_string(::getpid()) + "-" +
                                                     std::to_string(++previews_) + ".png");
  if (bioesp_images_save(latest.get(), 0, file.c_str(), nullptr) != BIOESP_OK) throw std::runtime_error(last_error("preview"));
  std::string png = read_file(file);
  fs::remove(file);
  return png;
}

json Generation::run_json(const Run& run, const char* state) {
  json out{{"id", run.id}, {"kind", run.animation ? "animate" : "generate"}, {"state", state}, {"image", 0},
           {"images", run.animation ? 1 : run.s.images}};
  if (std::string(state) != "running") out["settings"] = settings_json(run.s);  // not with every step
  return out;
}

// A LoRA file and its time, then its strength: two runs with the same key draw alike.
std::string Generation::lora_key(const Settings& s) {
  if (s.lora.empty()) return "";
  json skipped;
  const auto files = loras(skipped);
  auto it = files.find(s.lora);
  if (it == files.end()) return "missing " + s.lora;
  std::error_code ec;
  const auto time = fs::last_write_time(it->second, ec).time_since_epoch().count();
  return it->second.string() + "@" + std::to_string(time) + ":" + number_text(s.lora_scale);
}

void Generation::dispatch() {
  while (!quit_ && !alone_ && !waiting_.empty() && !waiting_.front()->animation && lora_key(waiting_.front()->s) == attached_) {
    start(*waiting_.front());
    submitted_.push_back(waiting_.front());
    waiting_.pop_front();
  }
}

// One job per picture, in the library's queue behind the ones before.
void Generation::start(Run& run) {
  const Settings& s = run.s;
  const char* prompt = s.prompt.c_str();
  Fields options(BIOESP_OPTIONS_GENERATE);
  options.take(s.options);
  auto& go = options.as<bioesp_generate_options>();
  go.prompts = &prompt;
  go.num_prompts = 1;
  go.progress = on_progress;
  go.preview_every = 1;  // the job keeps the latest for the page (GET /api/jobs/ID/preview)
  // The job keeps a copy of each picture.
  Images init(nullptr, bioesp_images_free), drawn(nullptr, bioesp_images_free);
  bioesp_image init_image{}, drawing{};
  if (!s.init.empty()) {  // img2img at the picture's own size
    if (!load_picture(gallery_.dir() / s.init, init, init_image, run.error)) return;
    go.init_image = &init_image;
    go.width = go.height = 0;
  }
  bioesp_control control;
  bioesp_control_init(&control);
  const Drawing& d = s.drawing;
  if (!d.file.empty() && !load_picture(drawings_.path(d.file), drawn, drawing, run.error)) return;
  if (d.use == "mask") go.mask = &drawing;
  if (d.use == "control") {  // black lines on white: the scribble pre-processor makes them the net's
    control.controlnet = controlnets_.nets.at(d.controlnet).get();
    control.image = &drawing;
    control.preprocess = "scribble";
    control.scale = static_cast<float>(d.scale);
    control.start = static_cast<float>(d.start);
    control.end = static_cast<float>(d.end);
    go.controls = &control;
    go.num_controls = 1;
  }
  for (int i = 0; i < s.images; ++i) {
    auto p = std::make_unique<Picture>();
    p->run = &run;
    p->index = i;
    go.seed = s.seed + static_cast<uint64_t>(i);
    go.progress_user = p.get();
    if (bioesp_generate_async(model_, &go, &p->job) != BIOESP_OK) {
      run.error = last_error("generation");
      for (auto& q : run.pictures) bioesp_job_cancel(q->job);
      return;
    }
    run.pictures.push_back(std::move(p));
  }
}

// On the library's worker thread: the picture's progress for every page.
int Generation::on_progress(void* user, const bioesp_progress* p) {
  auto* pic = static_cast<Picture*>(user);
  const int64_t t = now_ms();
  if (p->current == p->total || t - pic->last_event >= 100) {
    pic->last_event = t;
    json j = run_json(*pic->run, "running");
    j["image"] = pic->index;
    j["step"] = p->current;
    j["steps"] = p->total;
    pic->run->gen->bus_.publish("job", j);
  }
  return 0;  // cancelling is bioesp_job_cancel's
}

void Generation::follow() {
  for (;;) {
    std::shared_ptr<Run> run;
    bool submitted = false;
    {
      std::unique_lock<std::mutex> lock(m_);
      cv_.wait(lock, [&] { return quit_ || !submitted_.empty() || !waiting_.empty(); });
      if (quit_) return;
      submitted = !submitted_.empty();
      if (submitted) run = submitted_.front();
      else run = alone_ = waiting_.front(), waiting_.pop_front();  // it needs the model alone
    }
    contained(run->id.c_str(), [&] { submitted ? finish(*run) : alone(*run); });
    std::lock_guard<std::mutex> lock(m_);
    if (!submitted) {
      alone_.reset();
    } else {
      submitted_.pop_front();
      for (auto& p : run->pictures) bioesp_job_free(p->job);  // done: no one reaches them any more
    }
    dispatch();
  }
}

// Waits for the run's pictures in order, saving each as it comes.
void Generation::finish(Run& run) {
  std::string error = run.error;
  for (auto& p : run.pictures) {
    int finished = 0;
    bioesp_job_wait(p->job, -1, &finished);
    bioesp_images* taken = nullptr;
    const bioesp_status st = bioesp_job_take(p->job, &taken);
    Images images(taken, bioesp_images_free);
    try {
      if (st == BIOESP_OK) {
        bioesp_image img;
        img.struct_size = sizeof img;
        bioesp_images_get(taken, 0, &img);
        json entry = settings_json(run.s);
        entry["images"] = 1;
        entry["seed"] = run.s.seed + static_cast<uint64_t>(p->index);
        entry["width"] = img.width;
        entry["height"] = img.height;
        entry["model"] = cfg_.model;
        entry["job"] = run.id;
        gallery_.save_picture(taken, std::to_string(now_ms()) + "-" + run.id + "-" + std::to_string(p->index), entry, run.id);
      } else if (st != BIOESP_ERR_CANCELLED && error.empty()) {
        error = last_error("generation");
      }
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
    }
    if (!error.empty())
      for (auto& q : run.pictures) bioesp_job_cancel(q->job);  // the rest would fail alike
  }
  json j = run_json(run, run.cancel ? "cancelled" : error.empty() ? "done" : "failed");
  if (!run.cancel && !error.empty()) j["error"] = error;
  bus_.publish("job", j);
}

// With no job in the library: the run's LoRA is attached, then an animation is drawn here, or
// the run's jobs join the queue.
void Generation::alone(Run& run) {
  std::string state = "done", error;
  try {
    if (run.cancel) state = "cancelled";
    else use_lora(run.s);
    if (run.animation && !run.cancel) draw_animation(run);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (run.cancel) state = "cancelled";
  else if (!error.empty()) state = "failed";
  std::lock_guard<std::mutex> lock(m_);
  if (run.animation || state != "done") {
    json j = run_json(run, state.c_str());
    if (state == "failed") j["error"] = error;
    bus_.publish("job", j);
    return;
  }
  start(run);
  submitted_.push_back(alone_);
}

void Generation::use_lora(const Settings& s) {
  if (s.lora.empty()) {
    if (!attached_.empty() && bioesp_model_remove_lora(model_, "studio") != BIOESP_OK) throw std::runtime_error(last_error("LoRA"));
  } else {
    json skipped;
    const auto files = loras(skipped);
    auto it = files.find(s.lora);
    if (it == files.end()) throw std::runtime_error(say("no_lora", {{"name", s.lora}}));
    const std::string key = lora_key(s), file = key.substr(0, key.rfind(':'));
    const std::string was = attached_.substr(0, attached_.rfind(':'));
    const float scale = static_cast<float>(s.lora_scale);
    if (file != was && bioesp_model_add_lora(model_, it->second.c_str(), scale, "studio") != BIOESP_OK) {
      const std::string why = last_error("LoRA " + s.lora);
      bioesp_model_remove_lora(model_, "studio");  // whatever was attached, none is now
      std::lock_guard<std::mutex> lock(m_);
      attached_.clear();
      throw std::runtime_error(why);
    }
    if (file == was && bioesp_model_set_lora_scale(model_, "studio", scale) != BIOESP_OK) throw std::runtime_error(last_error("LoRA strength"));
  }
  const std::string key = lora_key(s);
  std::lock_guard<std::mutex> lock(m_);
  attached_ = key;
}

int Generation::on_animation_progress(void* user, const bioesp_progress* p) {
  auto* run = static_cast<Run*>(user);
  const int64_t t = now_ms();
  if (p->current == p->total || t - run->last_event >= 100) {
    run->last_event = t;
    json j = run_json(*run, "running");
    j["step"] = p->current;
    j["steps"] = p->total;
    run->gen->bus_.publish("job", j);
  }
  return run->cancel ? 1 : 0;
}

// The frames (progress counts denoising steps over all of them), then the file and its entry.
void Generation::draw_animation(Run& run) {
  const Settings& s = run.s;
  const Animation& a = *run.animation;
  std::vector<const char*> prompts;
  for (const auto& p : a.prompts) prompts.push_back(p.c_str());
  Fields options(BIOESP_OPTIONS_ANIMATE), file(BIOESP_OPTIONS_ANIMATION);
  options.take(a.options);
  file.take(a.file);
  options.set_list("prompts", prompts.data(), prompts.size());
  options.set_list("seeds", a.seeds.data(), a.seeds.size());
  auto& ao = options.as<bioesp_animate_options>();
  ao.progress = on_animation_progress;
  ao.progress_user = &run;
  bioesp_images* drawn = nullptr;
  const bioesp_status st = bioesp_animate(model_, &ao, &drawn);
  if (st == BIOESP_ERR_CANCELLED) return;
  if (st != BIOESP_OK) throw std::runtime_error(last_error("animation"));
  Images frames(drawn, bioesp_images_free);
  size_t count = 0;
  bioesp_images_count(drawn, &count);
  json entry = a.options;
  entry.update(a.file);
  // "frames": those drawn (pingpong adds the way back)
  entry.update(json{{"prompts", a.prompts}, {"seeds", a.seeds}, {"from", a.from}, {"to", a.to}, {"frames", count},
                    {"format", a.format}, {"lora", s.lora}, {"lora_scale", s.lora_scale}, {"model", cfg_.model}});
  gallery_.save_animation(drawn, std::to_string(now_ms()) + "-" + run.id + "." + a.format, file.as<bioesp_animation_options>(),
                          entry, run.id);
}

}  // namespace studio
