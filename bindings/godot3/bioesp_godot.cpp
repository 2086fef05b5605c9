// Godot 3 GDNative module over bioesp.h: BioespCreatures, a Node that grows creatures while
// the game runs. The engine's main thread never waits on bioesp: generations run as bioesp's
// async jobs (submitted, polled once per frame, taken when done), and the calls that block
// (loading a model, attaching LoRAs, freeing finished jobs and models) run on threads of this
// module. Results become Image/ImageTexture on the main thread, in _process, where every
// signal is emitted.
#include <gdnative_api_struct.gen.h>

#include <bioesp.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

const godot_gdnative_core_api_struct* api = nullptr;
const godot_gdnative_ext_nativescript_api_struct* nativescript = nullptr;

// ---------------------------------------------------------------------------------------------
// Godot values

std::string utf8(const godot_string& s) {
  godot_char_string c = api->godot_string_utf8(&s);
  std::string out(api->godot_char_string_get_data(&c), static_cast<size_t>(api->godot_char_string_length(&c)));
  api->godot_char_string_destroy(&c);
  return out;
}

// An owned godot_variant.
class Variant {
 public:
  Variant() { api->godot_variant_new_nil(&v_); }
  static Variant adopt(godot_variant v) {
    Variant out;
    api->godot_variant_destroy(&out.v_);
    out.v_ = v;
    return out;
  }
  static Variant of_int(int64_t i) {
    godot_variant v;
    api->godot_variant_new_int(&v, i);
    return adopt(v);
  }
  static Variant of_bool(bool b) {
    godot_variant v;
    api->godot_variant_new_bool(&v, b);
    return adopt(v);
  }
  static Variant of_string(const std::string& s) {
    godot_string g = api->godot_string_chars_to_utf8_with_len(s.data(), static_cast<godot_int>(s.size()));
    godot_variant v;
    api->godot_variant_new_string(&v, &g);
    api->godot_string_destroy(&g);
    return adopt(v);
  }
  // A Reference (Image, ImageTexture) is then held by this variant.
  static Variant of_object(godot_object* o) {
    godot_variant v;
    api->godot_variant_new_object(&v, o);
    return adopt(v);
  }
  Variant(Variant&& o) noexcept : v_(o.v_) { api->godot_variant_new_nil(&o.v_); }
  Variant& operator=(Variant&& o) noexcept {
    std::swap(v_, o.v_);
    return *this;
  }
  Variant(const Variant&) = delete;
  Variant& operator=(const Variant&) = delete;
  ~Variant() { api->godot_variant_destroy(&v_); }
  godot_variant* get() { return &v_; }
  godot_variant release() {
    godot_variant v = v_;
    api->godot_variant_new_nil(&v_);
    return v;
  }

 private:
  godot_variant v_;
};

godot_variant_type type_of(const godot_variant* v) { return api->godot_variant_get_type(v); }

std::string string_of(const godot_variant* v) {
  godot_string s = api->godot_variant_as_string(v);
  std::string out = utf8(s);
  api->godot_string_destroy(&s);
  return out;
}

const char* type_name(godot_variant_type t) {
  switch (t) {
    case GODOT_VARIANT_TYPE_NIL: return "null";
    case GODOT_VARIANT_TYPE_BOOL: return "bool";
    case GODOT_VARIANT_TYPE_INT: return "int";
    case GODOT_VARIANT_TYPE_REAL: return "float";
    case GODOT_VARIANT_TYPE_STRING: return "String";
    case GODOT_VARIANT_TYPE_DICTIONARY: return "Dictionary";
    case GODOT_VARIANT_TYPE_OBJECT: return "Object";
    default: return "another type";
  }
}

// self.method(args...), as GDScript calls it.
Variant call(godot_variant* self, const char* method, std::vector<godot_variant*> args) {
  godot_string name = api->godot_string_chars_to_utf8(method);
  godot_variant_call_error error;
  godot_variant r = api->godot_variant_call(self, &name, const_cast<const godot_variant**>(args.data()),
                                            static_cast<godot_int>(args.size()), &error);
  api->godot_string_destroy(&name);
  return Variant::adopt(r);
}

Variant construct(const char* class_name) { return Variant::of_object(api->godot_get_class_constructor(class_name)()); }

void print_error(const std::string& message) {
  api->godot_print_error(message.c_str(), "BioespCreatures", __FILE__, __LINE__);
}

// res:// and user:// paths as the file system's, for bioesp.
std::string globalize(const std::string& path) {
  if (path.rfind("res://", 0) != 0 && path.rfind("user://", 0) != 0) return path;
  auto settings = Variant::of_object(api->godot_global_get_singleton(const_cast<char*>("ProjectSettings")));
  auto p = Variant::of_string(path);
  auto r = call(settings.get(), "globalize_path", {p.get()});
  return string_of(r.get());
}

// An ImageTexture with bioesp's pixels (gray, RGB or RGBA, 8 bits a channel).
Variant texture_of(const bioesp_image& img) {
  const size_t n = size_t{img.width} * img.height * img.channels;
  godot_pool_byte_array bytes;
  api->godot_pool_byte_array_new(&bytes);
  api->godot_pool_byte_array_resize(&bytes, static_cast<godot_int>(n));
  godot_pool_byte_array_write_access* w = api->godot_pool_byte_array_write(&bytes);
  std::memcpy(api->godot_pool_byte_array_write_access_ptr(w), img.pixels, n);
  api->godot_pool_byte_array_write_access_destroy(w);
  godot_variant data_v;
  api->godot_variant_new_pool_byte_array(&data_v, &bytes);
  api->godot_pool_byte_array_destroy(&bytes);
  auto data = Variant::adopt(data_v);
  // Image.FORMAT_L8, FORMAT_RGB8, FORMAT_RGBA8.
  const int64_t format = img.channels == 4 ? 5 : img.channels == 3 ? 4 : 0;
  auto image = construct("Image");
  auto width = Variant::of_int(img.width), height = Variant::of_int(img.height), mipmaps = Variant::of_bool(false),
       fmt = Variant::of_int(format);
  call(image.get(), "create_from_data", {width.get(), height.get(), mipmaps.get(), fmt.get(), data.get()});
  auto texture = construct("ImageTexture");
  auto flags = Variant::of_int(7);  // Texture.FLAGS_DEFAULT: mipmaps, repeat (tiling textures), filter
  call(texture.get(), "create_from_image", {image.get(), flags.get()});
  return texture;
}

// ---------------------------------------------------------------------------------------------
// Settings: Dictionary entries named as bioesp_generate_options' fields, set through the
// library's options table (which parses and range-checks them as the command line's flags)

// A generate() call: its options own their strings.
struct Generation {
  int64_t id = 0;
  std::string prompt;
  const char* prompts[1] = {nullptr};
  std::map<std::string, std::string> texts;  // the settings' text, which string fields point to
  std::vector<uint8_t> init_pixels;          // init_image's, as RGBA
  bioesp_image init_image{};
  bioesp_generate_options options;
  std::map<std::string, std::pair<std::string, float>> loras;  // name → (file, scale), as at generate()
  std::string error;  // a refused setting: reported instead of running
  bioesp_job* job = nullptr;
  uint64_t reported = 0;  // progress steps signalled
  uint64_t previewed = 0;  // the step of the last preview signalled
  bool cancelled = false;

  Generation() { bioesp_generate_options_init(&options); }
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
};

// img2img's start: a Godot Image, copied as RGBA8 (the main thread's only pixel copy).
std::string set_init_image(Generation& g, const godot_variant* v) {
  godot_object* obj = type_of(v) == GODOT_VARIANT_TYPE_OBJECT ? api->godot_variant_as_object(v) : nullptr;
  auto source = Variant::of_object(obj);
  if (!obj || string_of(call(source.get(), "get_class", {}).get()) != "Image")
    return std::string("setting \"init_image\" must be an Image, not ") + type_name(type_of(v));
  auto image = call(source.get(), "duplicate", {});
  auto rgba8 = Variant::of_int(5);  // Image.FORMAT_RGBA8
  call(image.get(), "convert", {rgba8.get()});
  const int64_t w = api->godot_variant_as_int(call(image.get(), "get_width", {}).get());
  const int64_t h = api->godot_variant_as_int(call(image.get(), "get_height", {}).get());
  auto data = call(image.get(), "get_data", {});
  godot_pool_byte_array bytes = api->godot_variant_as_pool_byte_array(data.get());
  godot_pool_byte_array_read_access* r = api->godot_pool_byte_array_read(&bytes);
  const uint8_t* p = api->godot_pool_byte_array_read_access_ptr(r);
  g.init_pixels.assign(p, p + api->godot_pool_byte_array_size(&bytes));
  api->godot_pool_byte_array_read_access_destroy(r);
  api->godot_pool_byte_array_destroy(&bytes);
  if (w <= 0 || h <= 0 || g.init_pixels.size() != static_cast<size_t>(w * h * 4)) return "setting \"init_image\" is an empty Image";
  g.init_image = bioesp_image{sizeof(bioesp_image), static_cast<uint32_t>(w), static_cast<uint32_t>(h), 4, g.init_pixels.data()};
  return bioesp_option_set_list(BIOESP_OPTIONS_GENERATE, &g.options, "init_image", &g.init_image, 1) == BIOESP_OK
             ? ""
             : bioesp_last_error();
}

// The settable fields of bioesp_generate_options, for the message about an unknown one.
std::string known_settings() {
  std::string known;
  size_t n = 0;
  bioesp_option_count(BIOESP_OPTIONS_GENERATE, &n);
  for (size_t i = 0; i < n; ++i) {
    bioesp_option o{};
    o.struct_size = sizeof o;
    if (bioesp_option_at(BIOESP_OPTIONS_GENERATE, i, &o) == BIOESP_OK && !o.not_exposed)
      known += (known.empty() ? "" : ", ") + std::string(o.name);
  }
  return known;
}

// Sets one setting; "" or what is wrong with it. The value goes to the library as text: whole
// numbers, reals, bools and Strings as they are (the library refuses "many" steps by name).
std::string set_field(Generation& g, const std::string& key, const godot_variant* v) {
  if (key == "init_image") return set_init_image(g, v);
  bioesp_option o{};
  o.struct_size = sizeof o;
  if (bioesp_option_find(BIOESP_OPTIONS_GENERATE, key.c_str(), &o) != BIOESP_OK || key != o.name || o.not_exposed)
    return "unknown setting \"" + key + "\" (settings: " + known_settings() + ")";
  std::string text;
  char buf[32];
  switch (type_of(v)) {
    case GODOT_VARIANT_TYPE_INT: text = std::to_string(static_cast<long long>(api->godot_variant_as_int(v))); break;
    case GODOT_VARIANT_TYPE_REAL:
      std::snprintf(buf, sizeof buf, "%.17g", api->godot_variant_as_real(v));
      text = buf;
      break;
    case GODOT_VARIANT_TYPE_BOOL: text = api->godot_variant_as_bool(v) ? "1" : "0"; break;
    case GODOT_VARIANT_TYPE_STRING: text = string_of(v); break;
    default: return "setting \"" + key + "\" must be a number, a bool or a String, not " + type_name(type_of(v));
  }
  const char* kept = (g.texts[key] = text).c_str();  // string fields keep the pointer
  if (bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g.options, o.name, kept) != BIOESP_OK) return bioesp_last_error();
  return "";
}

// Every entry of the Dictionary; "" or the first refusal.
std::string read_settings(Generation& g, const godot_variant* settings) {
  if (type_of(settings) == GODOT_VARIANT_TYPE_NIL) return "";
  if (type_of(settings) != GODOT_VARIANT_TYPE_DICTIONARY)
    return std::string("settings must be a Dictionary, not ") + type_name(type_of(settings));
  godot_dictionary d = api->godot_variant_as_dictionary(settings);
  godot_array keys = api->godot_dictionary_keys(&d);
  std::string error;
  for (godot_int i = 0; i < api->godot_array_size(&keys) && error.empty(); ++i) {
    auto key = Variant::adopt(api->godot_array_get(&keys, i));
    auto value = Variant::adopt(api->godot_dictionary_get(&d, key.get()));
    error = type_of(key.get()) == GODOT_VARIANT_TYPE_STRING ? set_field(g, string_of(key.get()), value.get())
                                                             : "settings are named by Strings";
  }
  api->godot_array_destroy(&keys);
  api->godot_dictionary_destroy(&d);
  return error;
}

// ---------------------------------------------------------------------------------------------
// The reaper: a thread that finishes what a frame must not wait for (freeing jobs, which joins
// their workers; waiting for a model load or LoRA step of a freed node; freeing models).

class Reaper {
 public:
  void post(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(m_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    tasks_.push_back(std::move(task));
    changed_.notify_one();
  }
  // At library unload: finishes every task, then stops.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stopping_ = true;
      changed_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
    stopping_ = false;
  }
  ~Reaper() { stop(); }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
  std::mutex m_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> tasks_;
  std::thread thread_;
  bool stopping_ = false;
};

Reaper reaper;

// Job ids, unique in the process: one handler may serve several nodes.
int64_t next_job_id = 1;

// ---------------------------------------------------------------------------------------------
// BioespCreatures

// The node's model: touched by one blocking step at a time, or by the main thread between them.
struct ModelSlot {
  bioesp_model* model = nullptr;
  std::string error = "no model: call load_model() first";
  std::map<std::string, std::pair<std::string, float>> attached;  // LoRAs on the model
  ~ModelSlot() { bioesp_model_free(model); }
};

struct Event {
  enum Kind { Progress, Preview, Finished, Failed, ModelLoaded, ModelFailed } kind;
  explicit Event(Kind k, int64_t id = 0) : kind(k), job(id) {}
  int64_t job;
  uint64_t step = 0, total = 0;
  std::string text;
  bioesp_images* images = nullptr;
};

class Creatures {
 public:
  explicit Creatures(godot_object* owner) : owner_(owner) {}
  Creatures(const Creatures&) = delete;
  Creatures& operator=(const Creatures&) = delete;

  void load_model(const std::string& path, int threads) {
    Op op;
    op.load = true;
    op.path = path.empty() ? "" : globalize(path);
    op.threads = threads;
    ops_.push_back(std::move(op));
  }

  int64_t generate(const godot_variant* prompt, const godot_variant* settings) {
    auto g = std::make_unique<Generation>();
    g->id = next_job_id++;
    if (type_of(prompt) != GODOT_VARIANT_TYPE_STRING) g->error = std::string("the prompt must be a String, not ") + type_name(type_of(prompt));
    g->prompt = string_of(prompt);
    g->prompts[0] = g->prompt.c_str();
    g->options.prompts = g->prompts;
    g->options.num_prompts = 1;
    if (g->error.empty()) g->error = read_settings(*g, settings);
    g->loras = loras_;
    const int64_t id = g->id;
    Op op;
    op.generation = std::move(g);
    ops_.push_back(std::move(op));
    return id;
  }

  // Queued jobs end at the next frame; a running one within a denoising step.
  bool cancel(int64_t id) {
    if (running_ && running_->id == id) {
      running_->cancelled = true;
      if (running_->job) bioesp_job_cancel(running_->job);
      return true;
    }
    for (auto it = ops_.begin(); it != ops_.end(); ++it)
      if (it->generation && it->generation->id == id) {
        ops_.erase(it);
        pending_.push_back(failed(id, "cancelled"));
        return true;
      }
    return false;
  }

  void add_lora(const std::string& name, const std::string& path, float scale) { loras_[name] = {globalize(path), scale}; }
  bool set_lora_scale(const std::string& name, float scale) {
    auto it = loras_.find(name);
    if (it == loras_.end()) return false;
    it->second.second = scale;
    return true;
  }
  bool remove_lora(const std::string& name) { return loras_.erase(name) > 0; }

  // One frame: advances the work without waiting, then emits what happened.
  void process() {
    std::vector<Event> events;
    events.swap(pending_);
    advance(events);
    size_t i = 0;
    for (; i < events.size() && alive_; ++i) emit(events[i]);  // a handler may free the node
    for (; i < events.size(); ++i) bioesp_images_free(events[i].images);
  }

  // The node is being freed: its jobs are cancelled, and finished off the main thread.
  void shut_down() {
    alive_ = false;
    if (running_ && running_->job) bioesp_job_cancel(running_->job);
    auto running = std::move(running_);
    auto step = std::make_shared<std::future<std::string>>(std::move(step_));
    auto slot = std::move(slot_);
    reaper.post([running = std::shared_ptr<Generation>(std::move(running)), step, slot]() {
      if (step->valid()) step->wait();
      if (running) bioesp_job_free(running->job);
      // The slot (and its model) goes with the last reference, here.
    });
    ops_.clear();
  }

 private:
  struct Op {
    bool load = false;
    std::string path;
    int threads = 0;
    std::unique_ptr<Generation> generation;
  };

  static Event failed(int64_t id, std::string message) {
    Event e(Event::Failed, id);
    e.text = std::move(message);
    return e;
  }

  void advance(std::vector<Event>& events) {
    for (;;) {
      if (step_.valid()) {
        if (step_.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
        finish_step(step_.get(), events);
      } else if (running_) {
        if (!poll(*running_, events)) return;
        release(std::move(running_));
      } else if (!ops_.empty()) {
        Op op = std::move(ops_.front());
        ops_.pop_front();
        start(std::move(op), events);
      } else {
        return;
      }
    }
  }

  void start(Op op, std::vector<Event>& events) {
    if (op.load) {
      loading_ = op.path.empty() ? "the embedded model" : op.path;
      step_ = std::async(std::launch::async, [slot = slot_, path = op.path, threads = op.threads] {
        bioesp_model_free(slot->model);
        slot->model = nullptr;
        slot->attached.clear();
        const char* where = path.empty() ? bioesp_embedded_model() : path.c_str();
        if (!where) return slot->error = "the embedded model was not found beside libbioesp";
        bioesp_model_options o;
        bioesp_model_options_init(&o);
        o.threads = threads;
        if (bioesp_model_load(where, &o, &slot->model) != BIOESP_OK) return slot->error = bioesp_last_error();
        slot->error.clear();
        return std::string();
      });
      return;
    }
    auto g = std::move(op.generation);
    if (!g->error.empty()) return events.push_back(failed(g->id, g->error));
    if (!slot_->model) return events.push_back(failed(g->id, slot_->error));
    running_ = std::move(g);
    if (slot_->attached != running_->loras) {
      step_ = std::async(std::launch::async, [slot = slot_, wanted = running_->loras] { return attach(*slot, wanted); });
      return;
    }
    submit(events);
  }

  // Brings the model's LoRAs to `wanted` (on a blocking step's thread); "" or bioesp's message.
  static std::string attach(ModelSlot& slot, const std::map<std::string, std::pair<std::string, float>>& wanted) {
    for (auto it = slot.attached.begin(); it != slot.attached.end();) {
      auto w = wanted.find(it->first);
      if (w == wanted.end() || w->second.first != it->second.first) {
        bioesp_model_remove_lora(slot.model, it->first.c_str());
        it = slot.attached.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [name, lora] : wanted) {
      auto have = slot.attached.find(name);
      const bioesp_status s = have == slot.attached.end()
                                  ? bioesp_model_add_lora(slot.model, lora.first.c_str(), lora.second, name.c_str())
                                  : bioesp_model_set_lora_scale(slot.model, name.c_str(), lora.second);
      if (s != BIOESP_OK) return bioesp_last_error();
      slot.attached[name] = lora;
    }
    return "";
  }

  void finish_step(const std::string& error, std::vector<Event>& events) {
    if (!running_) {  // a model load
      Event e(error.empty() ? Event::ModelLoaded : Event::ModelFailed);
      e.text = error.empty() ? loading_ : error;
      events.push_back(std::move(e));
      return;
    }
    if (running_->cancelled || !error.empty()) {  // the LoRA step
      events.push_back(failed(running_->id, running_->cancelled ? "cancelled" : error));
      running_.reset();
      return;
    }
    submit(events);
  }

  void submit(std::vector<Event>& events) {
    if (running_->cancelled) {
      events.push_back(failed(running_->id, "cancelled"));
      running_.reset();
    } else if (bioesp_generate_async(slot_->model, &running_->options, &running_->job) != BIOESP_OK) {
      events.push_back(failed(running_->id, bioesp_last_error()));
      running_.reset();
    }
  }

  // Progress and the end of a running job, without waiting; true once it ended.
  static bool poll(Generation& g, std::vector<Event>& events) {
    bioesp_job_state state;
    uint64_t step = 0, total = 0;
    bioesp_job_poll(g.job, &state, &step, &total);
    for (; g.reported < step; ++g.reported) {
      Event e(Event::Progress, g.id);
      e.step = g.reported + 1;
      e.total = total;
      events.push_back(std::move(e));
    }
    // The job keeps its latest preview; a newer one than the last signalled is signalled.
    Event preview(Event::Preview, g.id);
    if (g.options.preview_every > 0 && bioesp_job_preview(g.job, &preview.images, &preview.step) == BIOESP_OK &&
        preview.images) {
      if (preview.step > g.previewed) {
        g.previewed = preview.step;
        events.push_back(std::move(preview));
      } else {
        bioesp_images_free(preview.images);
      }
    }
    if (state != BIOESP_JOB_DONE) return false;
    Event e(Event::Finished, g.id);
    const bioesp_status s = bioesp_job_take(g.job, &e.images);
    if (s != BIOESP_OK) e = failed(g.id, s == BIOESP_ERR_CANCELLED ? "cancelled" : bioesp_last_error());
    events.push_back(std::move(e));
    return true;
  }

  // A finished job's worker thread is joined off the main thread.
  static void release(std::unique_ptr<Generation> g) {
    bioesp_job* job = g->job;
    reaper.post([job] { bioesp_job_free(job); });
  }

  void emit(Event& e) {
    std::vector<Variant> args;
    const char* signal = "";
    switch (e.kind) {
      case Event::Progress:
        signal = "progress";
        args.push_back(Variant::of_int(e.job));
        args.push_back(Variant::of_int(static_cast<int64_t>(e.step)));
        args.push_back(Variant::of_int(static_cast<int64_t>(e.total)));
        break;
      case Event::Preview:
      case Event::Finished: {
        signal = e.kind == Event::Preview ? "preview" : "finished";
        bioesp_image img;
        img.struct_size = sizeof img;
        args.push_back(Variant::of_int(e.job));
        if (bioesp_images_get(e.images, 0, &img) == BIOESP_OK) {
          args.push_back(texture_of(img));
        } else {
          signal = "failed";
          args.push_back(Variant::of_string(bioesp_last_error()));
        }
        bioesp_images_free(e.images);
        e.images = nullptr;
        break;
      }
      case Event::Failed:
        signal = "failed";
        args.push_back(Variant::of_int(e.job));
        args.push_back(Variant::of_string(e.text));
        break;
      case Event::ModelLoaded:
        signal = "model_loaded";
        args.push_back(Variant::of_string(e.text));
        break;
      case Event::ModelFailed:
        signal = "model_failed";
        args.push_back(Variant::of_string(e.text));
        break;
    }
    auto self = Variant::of_object(owner_);
    auto name = Variant::of_string(signal);
    std::vector<godot_variant*> pointers{name.get()};
    for (auto& a : args) pointers.push_back(a.get());
    call(self.get(), "emit_signal", pointers);
  }

  godot_object* owner_;
  bool alive_ = true;
  std::deque<Op> ops_;                           // waiting, in call order
  std::unique_ptr<Generation> running_;          // in its LoRA step or its job
  std::future<std::string> step_;                // a blocking step: a model load or LoRAs
  std::string loading_;                          // what the model load in step_ loads
  std::shared_ptr<ModelSlot> slot_ = std::make_shared<ModelSlot>();
  std::map<std::string, std::pair<std::string, float>> loras_;  // for the next generate() calls
  std::vector<Event> pending_;                   // emitted at the next frame
};

// ---------------------------------------------------------------------------------------------
// NativeScript glue

using Holder = std::shared_ptr<Creatures>;

void* create(godot_object* owner, void*) { return new Holder(std::make_shared<Creatures>(owner)); }

void destroy(godot_object*, void*, void* user) {
  auto* holder = static_cast<Holder*>(user);
  (*holder)->shut_down();
  delete holder;
}

godot_variant nil() {
  godot_variant v;
  api->godot_variant_new_nil(&v);
  return v;
}

// Whether a method got between `least` and `most` arguments; if not, says so in Godot's log.
bool arguments(const char* method, int given, int least, int most) {
  if (given >= least && given <= most) return true;
  print_error(std::string(method) + ": " + std::to_string(given) + " arguments given, " + std::to_string(least) +
              (least == most ? "" : " to " + std::to_string(most)) + " expected");
  return false;
}

Creatures& self(void* user) { return **static_cast<Holder*>(user); }

godot_variant m_load_model(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("load_model", n, 1, 2)) return nil();
  // Options: {"threads": N}, LibTorch's CPU threads for the whole process (0: its choice).
  int threads = 0;
  if (n == 2 && type_of(a[1]) == GODOT_VARIANT_TYPE_DICTIONARY) {
    godot_dictionary d = api->godot_variant_as_dictionary(a[1]);
    godot_array keys = api->godot_dictionary_keys(&d);
    for (godot_int i = 0; i < api->godot_array_size(&keys); ++i) {
      auto key = Variant::adopt(api->godot_array_get(&keys, i));
      auto v = Variant::adopt(api->godot_dictionary_get(&d, key.get()));
      if (string_of(key.get()) == "threads" && type_of(v.get()) == GODOT_VARIANT_TYPE_INT)
        threads = static_cast<int>(api->godot_variant_as_int(v.get()));
      else
        print_error("load_model: unknown option \"" + string_of(key.get()) + "\" (options: threads, an int)");
    }
    api->godot_array_destroy(&keys);
    api->godot_dictionary_destroy(&d);
  }
  self(user).load_model(string_of(a[0]), threads);
  return nil();
}

godot_variant m_generate(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("generate", n, 1, 2)) return Variant::of_int(-1).release();
  Variant none;
  return Variant::of_int(self(user).generate(a[0], n == 2 ? a[1] : none.get())).release();
}

godot_variant m_cancel(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("cancel", n, 1, 1)) return Variant::of_bool(false).release();
  return Variant::of_bool(self(user).cancel(api->godot_variant_as_int(a[0]))).release();
}

godot_variant m_add_lora(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("add_lora", n, 2, 3)) return nil();
  self(user).add_lora(string_of(a[0]), string_of(a[1]), n == 3 ? static_cast<float>(api->godot_variant_as_real(a[2])) : 1.0f);
  return nil();
}

godot_variant m_set_lora_scale(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("set_lora_scale", n, 2, 2)) return Variant::of_bool(false).release();
  return Variant::of_bool(self(user).set_lora_scale(string_of(a[0]), static_cast<float>(api->godot_variant_as_real(a[1])))).release();
}

godot_variant m_remove_lora(godot_object*, void*, void* user, int n, godot_variant** a) {
  if (!arguments("remove_lora", n, 1, 1)) return Variant::of_bool(false).release();
  return Variant::of_bool(self(user).remove_lora(string_of(a[0]))).release();
}

godot_variant m_process(godot_object*, void*, void* user, int, godot_variant**) {
  Holder keep = *static_cast<Holder*>(user);  // the node may be freed by a signal's handler
  keep->process();
  return nil();
}

void method(void* handle, const char* name, godot_variant (*fn)(godot_object*, void*, void*, int, godot_variant**)) {
  godot_instance_method m{};
  m.method = fn;
  godot_method_attributes attr{GODOT_METHOD_RPC_MODE_DISABLED};
  nativescript->godot_nativescript_register_method(handle, "BioespCreatures", name, attr, m);
}

void signal(void* handle, const char* name, std::vector<std::pair<const char*, godot_variant_type>> params) {
  std::vector<godot_signal_argument> args(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    args[i] = godot_signal_argument{};
    args[i].name = api->godot_string_chars_to_utf8(params[i].first);
    args[i].type = params[i].second;
    args[i].hint_string = api->godot_string_chars_to_utf8("");
    api->godot_variant_new_nil(&args[i].default_value);
  }
  godot_signal s{};
  s.name = api->godot_string_chars_to_utf8(name);
  s.num_args = static_cast<int>(args.size());
  s.args = args.data();
  nativescript->godot_nativescript_register_signal(handle, "BioespCreatures", &s);
  api->godot_string_destroy(&s.name);
  for (auto& a : args) {
    api->godot_string_destroy(&a.name);
    api->godot_string_destroy(&a.hint_string);
    api->godot_variant_destroy(&a.default_value);
  }
}

}  // namespace

// The entry points Godot looks up by name (the build hides every other symbol).
#define BIOESP_GODOT_ENTRY extern "C" __attribute__((visibility("default"))) GDCALLINGCONV

BIOESP_GODOT_ENTRY void godot_gdnative_init(godot_gdnative_init_options* o) {
  api = o->api_struct;
  for (unsigned i = 0; i < api->num_extensions; ++i)
    if (api->extensions[i]->type == GDNATIVE_EXT_NATIVESCRIPT)
      nativescript = reinterpret_cast<const godot_gdnative_ext_nativescript_api_struct*>(api->extensions[i]);
}

BIOESP_GODOT_ENTRY void godot_gdnative_terminate(godot_gdnative_terminate_options*) { reaper.stop(); }

BIOESP_GODOT_ENTRY void godot_nativescript_init(void* handle) {
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) {
    print_error(std::string("libbioesp does not fit this module: ") + bioesp_last_error());
    return;
  }
  godot_instance_create_func c{};
  c.create_func = create;
  godot_instance_destroy_func d{};
  d.destroy_func = destroy;
  nativescript->godot_nativescript_register_class(handle, "BioespCreatures", "Node", c, d);
  method(handle, "load_model", m_load_model);
  method(handle, "generate", m_generate);
  method(handle, "cancel", m_cancel);
  method(handle, "add_lora", m_add_lora);
  method(handle, "set_lora_scale", m_set_lora_scale);
  method(handle, "remove_lora", m_remove_lora);
  method(handle, "_process", m_process);
  const auto INT = GODOT_VARIANT_TYPE_INT, STRING = GODOT_VARIANT_TYPE_STRING, OBJECT = GODOT_VARIANT_TYPE_OBJECT;
  signal(handle, "progress", {{"job", INT}, {"step", INT}, {"total", INT}});
  signal(handle, "preview", {{"job", INT}, {"texture", OBJECT}});
  signal(handle, "finished", {{"job", INT}, {"texture", OBJECT}});
  signal(handle, "failed", {{"job", INT}, {"message", STRING}});
  signal(handle, "model_loaded", {{"model", STRING}});
  signal(handle, "model_failed", {{"message", STRING}});
}
