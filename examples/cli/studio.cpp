// bioesp studio: the workshop's generator, gallery, datasets and LoRA training as a local web
// application. It serves the page in examples/cli/studio/ (built into the program) and a JSON API
// over the public C API only; progress travels as server-sent events.
//
// Safe by default: it listens on 127.0.0.1 and answers only requests addressed to that name
// (against DNS rebinding); POSTs must be JSON from the studio's own origin (no cross-site form can
// start work); bodies are capped; files are served by name from the studio's folders only, and
// only pictures.
#include <bioesp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

extern "C" {
#include "cli.h"
int cmd_studio(int argc, char** argv);
}

namespace fs = std::filesystem;
using nlohmann::json;

extern "C" const unsigned char bioesp_studio_index_html[], bioesp_studio_app_js[], bioesp_studio_style_css[];
extern "C" const size_t bioesp_studio_index_html_size, bioesp_studio_app_js_size, bioesp_studio_style_css_size;

namespace {

// The library's one list of schedulers.
const std::vector<std::string>& schedulers() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    size_t count = 0;
    bioesp_scheduler_count(&count);
    for (size_t i = 0; i < count; ++i) {
      const char* name = nullptr;
      if (bioesp_scheduler_name(i, &name) == BIOESP_OK) n.emplace_back(name);
    }
    return n;
  }();
  return names;
}
constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxQueued = 32;
constexpr size_t kMaxText = 2000;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// The desktop's browser (xdg-open), detached (forked twice, so no child is left to reap); the
// URL is printed either way.
void open_browser(const std::string& url) {
  const pid_t child = fork();
  if (child == 0) {
    if (fork() == 0) {
      execlp("xdg-open", "xdg-open", url.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    _exit(0);
  }
  if (child > 0) waitpid(child, nullptr, 0);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A request that cannot be served as asked: an HTTP status and a message for the page.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};

// The page's language for this request's messages: its X-Bioesp-Lang header ("es"), else English.
thread_local bool t_spanish = false;

std::string say(const std::string& en, const std::string& es) { return t_spanish ? es : en; }

// A request field as the page labels it.
std::string field(const std::string& key) {
  static const std::map<std::string, std::string> es = {
      {"prompt", "descripción"}, {"negative_prompt", "descripción negativa"}, {"images", "imágenes"},
      {"steps", "pasos"}, {"guidance", "guía"}, {"width", "ancho"}, {"height", "alto"}, {"seed", "semilla"},
      {"scheduler", "muestreador"}, {"lora_scale", "fuerza del LoRA"}, {"init", "imagen de partida"},
      {"strength", "cuánto cambia"}, {"frames", "cuadros"}, {"fps", "cuadros por segundo"},
      {"format", "formato"}, {"from", "inicio"}, {"to", "final"}, {"source", "fuente"},
      {"value", "nombre o texto"}, {"limit", "cuántas imágenes"}, {"size", "tamaño"}, {"crop", "recorte"},
      {"name", "nombre"}, {"caption", "descripción"}, {"dataset", "conjunto de datos"}, {"rank", "rango"},
      {"learning_rate", "tasa de aprendizaje"}, {"resolution", "resolución"}, {"batch_size", "lote"},
      {"validation_prompt", "descripción de validación"}, {"validation_every", "validar cada"},
      {"checkpoint_every", "punto de control cada"}};
  auto it = es.find(key);
  return t_spanish && it != es.end() ? it->second : key;
}

std::string last_error(const std::string& what) {
  const char* e = bioesp_last_error();
  return what + ": " + (e && *e ? e : "unknown error");
}

// Writes through a temporary file, flushed to disk and renamed, so that neither a reader nor a
// crash ever finds half a file (as the library writes its own).
void write_atomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f && std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (f && std::fclose(f) != 0) ok = false;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path.string() + ": " + why);
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One path component a client may name: no separators, no "." or "..", no hidden files.
bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > 255 || s[0] == '.') return false;
  for (unsigned char c : s)
    if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f) return false;
  return true;
}

// root/rel when every component of rel is a safe name and the real path (links followed) stays
// under root; otherwise empty.
fs::path confined(const fs::path& root, const std::string& rel) {
  std::stringstream ss(rel);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (!safe_name(part)) return {};
  fs::path p = root / rel;
  std::error_code ec;
  fs::path real = fs::weakly_canonical(p, ec), base = fs::weakly_canonical(root, ec);
  if (ec) return {};
  const std::string r = real.string(), b = base.string() + "/";
  return r.compare(0, b.size(), b) == 0 ? real : fs::path{};
}

// The only files the studio serves: pictures and animations, by their extension; else nullptr.
const char* media_type(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  if (e == ".png") return "image/png";
  if (e == ".jpg" || e == ".jpeg") return "image/jpeg";
  if (e == ".gif") return "image/gif";
  if (e == ".mp4") return "video/mp4";
  if (e == ".webm") return "video/webm";
  return nullptr;
}

// The folders under root a page may name (datasets, trainings), sorted.
std::vector<fs::path> subfolders(const fs::path& root) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator(root, ec))
    if (d.is_directory() && safe_name(d.path().filename().string())) dirs.push_back(d.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

bool is_picture(const fs::path& p) {
  const char* t = media_type(p);
  return t && (std::strcmp(t, "image/png") == 0 || std::strcmp(t, "image/jpeg") == 0);
}

// Events for every open page: a numbered log the /api/events streams follow.
class EventBus {
 public:
  void publish(const std::string& type, json data) {
    std::lock_guard<std::mutex> lock(m_);
    data["type"] = type;
    events_.emplace_back(next_++, data.dump());
    while (events_.size() > 2000) events_.pop_front();
    cv_.notify_all();
  }
  uint64_t last() {
    std::lock_guard<std::mutex> lock(m_);
    return next_ - 1;
  }
  // The events after `after`, waiting up to `wait` for one; false once closed.
  bool next(uint64_t after, std::chrono::milliseconds wait, std::vector<std::pair<uint64_t, std::string>>* out) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait_for(lock, wait, [&] { return closed_ || next_ - 1 > after; });
    for (const auto& e : events_)
      if (e.first > after) out->push_back(e);
    return !closed_;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::string>> events_;
  uint64_t next_ = 1;
  bool closed_ = false;
};

struct Settings {
  std::string prompt, negative_prompt, scheduler, lora;
  std::string init;  // a gallery picture to start from (img2img), or none
  int images = 1, steps = 25, width = 0, height = 0;
  double guidance = 7.5, lora_scale = 1.0, strength = 0.6;
  uint64_t seed = 0;
};

// A morph between two gallery pictures: their prompts and seeds are the keyframes; the other
// settings are the first picture's.
struct Animation {
  std::string from, to, format = "gif";
  std::vector<std::string> prompts;
  std::vector<uint64_t> seeds;
  int frames = 16;
  double fps = 8;
  bool pingpong = false;
};

struct GenJob {
  std::string id;
  Settings s;
  std::unique_ptr<Animation> animation;  // set: an animation job
  std::atomic<bool> cancel{false};
  int image = 0;            // the image being drawn, from 0
  int64_t last_event = 0;   // ms; progress events at most every 100 ms
};

struct TrainRun {
  std::string name;
  fs::path out;
  json settings;
  std::atomic<bool> cancel{false};
  std::vector<std::pair<int, double>> pending;  // loss points not yet published
  std::set<std::string> validation;             // validation pictures already announced
  int64_t last_event = 0;
  std::string stage;
};

// Building a dataset from Wikimedia Commons: fetch into downloads/NAME, then prepare into the
// datasets folder.
struct FetchRun {
  std::string name;
  json settings;
  std::atomic<bool> cancel{false};
  int64_t last_event = 0;
  std::vector<std::string> skipped;  // why files were left out, and retries (the log), capped
};

struct Config {
  std::string model, host = "127.0.0.1", lang, commons_api, contact;
  int port = 7860;
  fs::path dir = "bioesp-studio", datasets, loras;
  bool remote = false, open = false;
  int threads = 0;
  bioesp_device device = BIOESP_DEVICE_CPU;
};

class Studio {
 public:
  explicit Studio(Config c) : cfg_(std::move(c)) {
    gallery_ = cfg_.dir / "gallery";
    animations_ = gallery_ / "animations";
    trainings_ = cfg_.dir / "trainings";
    downloads_ = cfg_.dir / "downloads";
    fs::create_directories(animations_);
    fs::create_directories(trainings_);
    fs::create_directories(cfg_.datasets);
    if (!cfg_.loras.empty()) fs::create_directories(cfg_.loras);
  }

  ~Studio() {
    {
      std::lock_guard<std::mutex> lock(jobs_m_);
      quit_ = true;
      for (auto& j : queue_) j->cancel = true;
      if (current_) current_->cancel = true;
      jobs_cv_.notify_all();
    }
    if (worker_.joinable()) worker_.join();
    {
      std::lock_guard<std::mutex> lock(train_m_);
      if (training_) training_->cancel = true;  // the trainer writes a checkpoint first: resumable
    }
    if (trainer_.joinable()) trainer_.join();
    {
      std::lock_guard<std::mutex> lock(fetch_m_);
      if (fetching_) fetching_->cancel = true;
    }
    if (fetcher_.joinable()) fetcher_.join();
    if (model_) bioesp_model_free(model_);
  }

  int run() {
    bioesp_model_options mo;
    bioesp_model_options_init(&mo);
    mo.device = cfg_.device;
    mo.threads = cfg_.threads;
    std::fprintf(stderr, "bioesp studio: loading %s\n", cfg_.model.c_str());
    if (bioesp_model_load(cfg_.model.c_str(), &mo, &model_) != BIOESP_OK) return fail_with("loading the model");
    worker_ = std::thread([this] { work(); });

    httplib::Server svr;
    svr.set_payload_max_length(kMaxBody);
    svr.set_read_timeout(10, 0);
    svr.new_task_queue = [] { return new httplib::ThreadPool(16); };  // event streams hold a thread each
    routes(svr);
    int port = cfg_.port;
    if (port == 0) {
      port = svr.bind_to_any_port(cfg_.host);
      if (port < 0) port = 0;
    } else if (!svr.bind_to_port(cfg_.host, port)) {
      port = 0;
    }
    if (port <= 0) {
      std::fprintf(stderr, "bioesp studio: cannot listen on %s:%d\n", cfg_.host.c_str(), cfg_.port);
      return 1;
    }
    port_ = port;
    std::thread watch([&] {
      while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      bus_.close();
      svr.stop();
    });
    const std::string shown = cfg_.host.find(':') != std::string::npos ? "[" + cfg_.host + "]" : cfg_.host;
    const std::string url = "http://" + (shown == "0.0.0.0" || shown == "[::]" ? std::string("127.0.0.1") : shown) + ":" +
                            std::to_string(port) + "/";
    std::printf("bioesp studio: %s\n", url.c_str());
    std::fflush(stdout);
    if (cfg_.open) open_browser(url);
    if (cfg_.remote) std::fprintf(stderr, "bioesp studio: open to other machines on %s (no password)\n", cfg_.host.c_str());
    svr.listen_after_bind();
    g_stop = true;
    watch.join();
    std::fprintf(stderr, "bioesp studio: stopped\n");
    return 0;
  }

 private:
  // --- HTTP --------------------------------------------------------------------------------

  // Loopback-only studios answer only to loopback names; POSTs must be JSON from this origin.
  httplib::Server::HandlerResponse screen(const httplib::Request& req, httplib::Response& res) {
    t_spanish = req.get_header_value("X-Bioesp-Lang") == "es";
    const std::string host = req.get_header_value("Host");
    if (!cfg_.remote) {
      const std::string p = ":" + std::to_string(port_);
      const bool bare = port_ == 80 && (host == "127.0.0.1" || host == "localhost" || host == "[::1]");
      if (!bare && host != "127.0.0.1" + p && host != "localhost" + p && host != "[::1]" + p) {
        reply_error(res, 403, say("this studio answers only on 127.0.0.1 (start it with --host to open it)", "este estudio solo responde en 127.0.0.1 (--host lo abre a otras máquinas)"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (req.method == "POST" || req.method == "DELETE") {
      const std::string origin = req.get_header_value("Origin");
      if (!origin.empty() && origin != "http://" + host) {
        reply_error(res, 403, say("requests from other sites are refused", "no se aceptan pedidos de otros sitios"));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (req.method == "POST" && req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
        reply_error(res, 415, say("send JSON (Content-Type: application/json)", "envía JSON (Content-Type: application/json)"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    return httplib::Server::HandlerResponse::Unhandled;
  }

  static void reply_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(json{{"error", message}}.dump(), "application/json");
  }

  static void reply(httplib::Response& res, const json& j, int status = 200) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(j.dump(), "application/json");
  }

  template <typename F>
  static httplib::Server::Handler guarded(F f) {
    return [f](const httplib::Request& req, httplib::Response& res) {
      t_spanish = req.get_header_value("X-Bioesp-Lang") == "es";  // this handler's thread
      try {
        f(req, res);
      } catch (const HttpError& e) {
        reply_error(res, e.status, e.what());
      } catch (const json::exception& e) {
        reply_error(res, 400, say("bad JSON: ", "JSON inválido: ") + e.what());
      } catch (const std::exception& e) {
        reply_error(res, 500, e.what());
      }
    };
  }

  static json body_of(const httplib::Request& req) {
    json j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw HttpError(400, say("the body is not a JSON object", "el cuerpo no es un objeto JSON"));
    return j;
  }

  static void serve_asset(httplib::Server& svr, const char* path, const unsigned char* data, size_t size, const char* type) {
    svr.Get(path, [=](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");
      if (std::strcmp(type, "text/html; charset=utf-8") == 0)
        res.set_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; object-src 'none'; frame-ancestors 'none'");
      res.set_content(reinterpret_cast<const char*>(data), size, type);
    });
  }

  void routes(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) { return screen(req, res); });
    serve_asset(svr, "/", bioesp_studio_index_html, bioesp_studio_index_html_size, "text/html; charset=utf-8");
    serve_asset(svr, "/app.js", bioesp_studio_app_js, bioesp_studio_app_js_size, "text/javascript; charset=utf-8");
    serve_asset(svr, "/style.css", bioesp_studio_style_css, bioesp_studio_style_css_size, "text/css; charset=utf-8");

    svr.Get("/api/info", guarded([this](const httplib::Request&, httplib::Response& res) { reply(res, info()); }));
    svr.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) { events(req, res); });
    svr.Post("/api/generate", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, json{{"id", submit(settings_of(body_of(req)))}}, 202);
    }));
    svr.Post("/api/animate", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, json{{"id", submit_animation(body_of(req))}}, 202);
    }));
    svr.Get("/api/animations", guarded([this](const httplib::Request&, httplib::Response& res) { reply(res, animations()); }));
    svr.Delete(R"(/api/animations/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      remove_animation(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));
    svr.Post(R"(/api/jobs/([A-Za-z0-9-]+)/cancel)", guarded([this](const httplib::Request& req, httplib::Response& res) {
      cancel_job(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));
    svr.Get("/api/gallery", guarded([this](const httplib::Request&, httplib::Response& res) { reply(res, gallery()); }));
    svr.Delete(R"(/api/gallery/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      remove_picture(req.matches[1]);
      reply(res, json{{"ok", true}});
    }));
    svr.Get("/api/datasets", guarded([this](const httplib::Request&, httplib::Response& res) { reply(res, datasets()); }));
    svr.Get(R"(/api/datasets/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, dataset(req.matches[1]));
    }));
    svr.Post("/api/datasets/fetch", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, json{{"name", start_fetch(body_of(req))}}, 202);
    }));
    svr.Post("/api/datasets/fetch/cancel", guarded([this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(fetch_m_);
      if (!fetching_) throw HttpError(409, say("no download is running", "no hay ninguna descarga en curso"));
      fetching_->cancel = true;
      reply(res, json{{"ok", true}});
    }));
    svr.Get("/api/trainings", guarded([this](const httplib::Request&, httplib::Response& res) { reply(res, trainings()); }));
    svr.Get(R"(/api/trainings/([^/]+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, training(req.matches[1]));
    }));
    svr.Post("/api/train", guarded([this](const httplib::Request& req, httplib::Response& res) {
      reply(res, json{{"name", start_training(body_of(req))}}, 202);
    }));
    svr.Post("/api/train/cancel", guarded([this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(train_m_);
      if (!training_) throw HttpError(409, say("no training is running", "no hay ningún entrenamiento en curso"));
      training_->cancel = true;
      reply(res, json{{"ok", true}});
    }));
    svr.Get(R"(/files/(gallery|datasets|trainings)/(.+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
      const std::string area = req.matches[1];
      const fs::path root = area == "gallery" ? gallery_ : area == "datasets" ? cfg_.datasets : trainings_;
      const fs::path p = confined(root, req.matches[2]);
      if (p.empty() || !media_type(p) || !fs::is_regular_file(p)) throw HttpError(404, say("no such picture", "no existe esa imagen"));
      res.set_header("Cache-Control", "no-cache");
      res.set_content(read_file(p), media_type(p));
    }));
  }

  // Follows the event log from ?after=N (or Last-Event-ID after a reconnect).
  void events(const httplib::Request& req, httplib::Response& res) {
    uint64_t after = bus_.last();
    std::string from = req.get_header_value("Last-Event-ID");
    if (from.empty() && req.has_param("after")) from = req.get_param_value("after");
    if (!from.empty()) after = std::strtoull(from.c_str(), nullptr, 10);
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider("text/event-stream", [this, after](size_t, httplib::DataSink& sink) mutable {
      std::vector<std::pair<uint64_t, std::string>> batch;
      if (!bus_.next(after, std::chrono::seconds(15), &batch)) {
        sink.done();
        return true;
      }
      std::string text = batch.empty() ? ": still here\n\n" : "";
      for (const auto& e : batch) {
        text += "id: " + std::to_string(e.first) + "\ndata: " + e.second + "\n\n";
        after = e.first;
      }
      return sink.write(text.data(), text.size());
    });
  }

  // --- Generation --------------------------------------------------------------------------

  json info() {
    json loras = json::array();
    for (const auto& [name, path] : lora_files()) loras.push_back(name);
    json running = nullptr;
    {
      std::lock_guard<std::mutex> lock(jobs_m_);
      if (current_) running = job_json(*current_, "running");
    }
    std::string train_name;
    {
      std::lock_guard<std::mutex> lock(train_m_);
      if (training_) train_name = training_->name;
    }
    return json{{"version", bioesp_version_string()},
                {"model", cfg_.model},
                {"native_size", native_size()},
                {"schedulers", schedulers()},
                {"loras", loras},
                {"lang", cfg_.lang},
                {"event", bus_.last()},
                {"running", running},
                {"training", train_name.empty() ? json(nullptr) : json(train_name)}};
  }

  // The model's own size, read from a diffusers folder's configs (0 when not a folder).
  int native_size() {
    try {
      const fs::path m = cfg_.model;
      json unet = json::parse(read_file(m / "unet" / "config.json"));
      json vae = json::parse(read_file(m / "vae" / "config.json"));
      const size_t blocks = vae.value("block_out_channels", json::array({1, 1, 1, 1})).size();
      return unet.value("sample_size", 64) * (1 << (blocks - 1));
    } catch (const std::exception&) {
      return 0;
    }
  }

  // The LoRAs a page may pick, by name: trained here, or files in --loras.
  std::map<std::string, fs::path> lora_files() {
    std::map<std::string, fs::path> out;
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(trainings_, ec)) {
      fs::path f = d.path() / "pytorch_lora_weights.safetensors";
      if (fs::is_regular_file(f)) out[d.path().filename().string()] = f;
    }
    if (!cfg_.loras.empty())
      for (const auto& d : fs::directory_iterator(cfg_.loras, ec)) {
        const std::string e = d.path().extension().string();
        if (d.is_regular_file() && (e == ".safetensors" || e == ".ckpt" || e == ".pt" || e == ".bin"))
          out[d.path().filename().string()] = d.path();
      }
    return out;
  }

  static std::string text_field(const json& j, const char* key) {
    if (!j.contains(key) || j[key].is_null()) return "";
    if (!j[key].is_string()) throw HttpError(400, field(key) + say(" must be text", ": debe ser texto"));
    std::string s = j[key];
    if (s.size() > kMaxText) throw HttpError(400, field(key) + say(" is longer than 2000 bytes", ": más de 2000 bytes"));
    return s;
  }

  static double number_field(const json& j, const char* key, double fallback, double lo, double hi) {
    if (!j.contains(key) || j[key].is_null() || (j[key].is_string() && j[key].get<std::string>().empty())) return fallback;
    double v;
    if (j[key].is_number()) v = j[key].get<double>();
    else if (j[key].is_string()) {
      const std::string s = j[key];
      char* end;
      v = std::strtod(s.c_str(), &end);
      if (*end) throw HttpError(400, field(key) + say(" must be a number", ": debe ser un número"));
    } else {
      throw HttpError(400, field(key) + say(" must be a number", ": debe ser un número"));
    }
    if (!(v >= lo && v <= hi)) {
      std::ostringstream m;
      m << field(key) << say(" must be between ", ": debe estar entre ") << lo << say(" and ", " y ") << hi;
      throw HttpError(400, m.str());
    }
    return v;
  }

  static int size_field(const json& j, const char* key) {
    const int v = static_cast<int>(number_field(j, key, 0, 0, 2048));
    if (v % 8) throw HttpError(400, field(key) + say(" must be a multiple of 8", ": debe ser múltiplo de 8"));
    return v;
  }

  Settings settings_of(const json& j) {
    Settings s;
    s.prompt = text_field(j, "prompt");
    if (s.prompt.empty()) throw HttpError(400, say("write a prompt", "escribe una descripción"));
    s.negative_prompt = text_field(j, "negative_prompt");
    s.images = static_cast<int>(number_field(j, "images", 1, 1, 16));
    s.steps = static_cast<int>(number_field(j, "steps", 25, 1, 500));
    s.guidance = number_field(j, "guidance", 7.5, 0, 30);
    s.width = size_field(j, "width");
    s.height = size_field(j, "height");
    const double seed = number_field(j, "seed", -1, -1, 4294967295.0);
    s.seed = seed < 0 ? random_seed() : static_cast<uint64_t>(seed);
    s.scheduler = text_field(j, "scheduler");
    if (!s.scheduler.empty() && std::find(schedulers().begin(), schedulers().end(), s.scheduler) == schedulers().end())
      throw HttpError(400, say("unknown scheduler ", "muestreador desconocido: ") + s.scheduler);
    s.lora = text_field(j, "lora");
    if (!s.lora.empty() && !lora_files().count(s.lora)) throw HttpError(400, say("no LoRA named ", "no hay ningún LoRA llamado ") + s.lora);
    s.lora_scale = number_field(j, "lora_scale", 1.0, -4, 4);
    s.init = text_field(j, "init");
    if (!s.init.empty()) {
      const fs::path p = confined(gallery_, s.init);
      if (p.empty() || !is_picture(p) || !fs::is_regular_file(p)) throw HttpError(400, say("no gallery picture ", "no está en la galería: ") + s.init);
    }
    s.strength = number_field(j, "strength", 0.6, 0.01, 1);
    return s;
  }

  static json settings_json(const Settings& s) {
    return json{{"prompt", s.prompt}, {"negative_prompt", s.negative_prompt}, {"images", s.images},
                {"steps", s.steps}, {"guidance", s.guidance}, {"width", s.width}, {"height", s.height},
                {"seed", s.seed}, {"scheduler", s.scheduler}, {"lora", s.lora}, {"lora_scale", s.lora_scale},
                {"init", s.init}, {"strength", s.strength}};
  }

  static json job_json(const GenJob& j, const char* state) {
    json out{{"id", j.id}, {"kind", j.animation ? "animate" : "generate"}, {"state", state}, {"image", j.image},
             {"images", j.animation ? 1 : j.s.images}};
    if (std::strcmp(state, "running") != 0) out["settings"] = settings_json(j.s);  // not with every step
    return out;
  }

  std::string submit(const Settings& s, std::unique_ptr<Animation> animation = nullptr) {
    auto job = std::make_shared<GenJob>();
    job->s = s;
    job->animation = std::move(animation);
    {
      std::lock_guard<std::mutex> lock(jobs_m_);
      if (queue_.size() >= kMaxQueued) throw HttpError(429, say("too many queued runs; wait or cancel some", "demasiados pedidos en cola; espera o cancela alguno"));
      job->id = "g" + std::to_string(++job_counter_);
      queue_.push_back(job);
      jobs_cv_.notify_all();
    }
    bus_.publish("job", job_json(*job, "queued"));
    return job->id;
  }

  void cancel_job(const std::string& id) {
    std::shared_ptr<GenJob> removed;
    {
      std::lock_guard<std::mutex> lock(jobs_m_);
      if (current_ && current_->id == id) {
        current_->cancel = true;
        return;
      }
      auto it = std::find_if(queue_.begin(), queue_.end(), [&](const auto& j) { return j->id == id; });
      if (it == queue_.end()) throw HttpError(404, say("no running or queued job ", "no hay ningún trabajo en curso o en cola: ") + id);
      removed = *it;
      queue_.erase(it);
    }
    bus_.publish("job", job_json(*removed, "cancelled"));
  }

  static int on_progress(void* user, const bioesp_progress* p) {
    auto* self = static_cast<std::pair<Studio*, GenJob*>*>(user);
    GenJob& job = *self->second;
    const int64_t t = now_ms();
    if (p->current == p->total || t - job.last_event >= 100) {
      job.last_event = t;
      json j = job_json(job, "running");
      j["step"] = p->current;
      j["steps"] = p->total;
      self->first->bus_.publish("job", j);
    }
    return job.cancel || g_stop ? 1 : 0;
  }

  void work() {
    for (;;) {
      std::shared_ptr<GenJob> job;
      {
        std::unique_lock<std::mutex> lock(jobs_m_);
        jobs_cv_.wait(lock, [&] { return quit_ || !queue_.empty(); });
        if (quit_) return;
        job = queue_.front();
        queue_.pop_front();
        current_ = job;
      }
      std::string state = "done", error;
      try {
        use_lora(job->s);
        if (job->animation) animate(*job);
        for (job->image = 0; !job->animation && job->image < job->s.images; ++job->image) {
          if (job->cancel) break;
          draw(*job);
        }
        if (job->cancel) state = "cancelled";
      } catch (const std::exception& e) {
        state = job->cancel ? "cancelled" : "failed";
        error = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(jobs_m_);
        current_.reset();
      }
      json j = job_json(*job, state.c_str());
      if (!error.empty() && state == "failed") j["error"] = error;
      bus_.publish("job", j);
    }
  }

  // The picked LoRA is attached as "studio" (loaded again only when the file changes).
  void use_lora(const Settings& s) {
    if (s.lora.empty()) {
      if (!lora_.empty() && bioesp_model_remove_lora(model_, "studio") != BIOESP_OK) throw std::runtime_error(last_error("LoRA"));
      lora_.clear();
      return;
    }
    const auto files = lora_files();
    auto it = files.find(s.lora);
    if (it == files.end()) throw std::runtime_error("no LoRA named " + s.lora);
    const std::string key = it->second.string() + "@" + std::to_string(fs::last_write_time(it->second).time_since_epoch().count());
    if (key != lora_) {
      if (bioesp_model_add_lora(model_, it->second.c_str(), static_cast<float>(s.lora_scale), "studio") != BIOESP_OK)
        throw std::runtime_error(last_error("LoRA " + s.lora));
      lora_ = key;
    } else if (bioesp_model_set_lora_scale(model_, "studio", static_cast<float>(s.lora_scale)) != BIOESP_OK) {
      throw std::runtime_error(last_error("LoRA scale"));
    }
  }

  // One image (seed + its index, so each picture can be drawn again alone), saved to the gallery
  // as PNG (settings in its text chunks) and a JSON file with everything the page can reuse.
  void draw(GenJob& job) {
    const Settings& s = job.s;
    const char* prompt = s.prompt.c_str();
    bioesp_generate_options go;
    bioesp_generate_options_init(&go);
    go.prompts = &prompt;
    go.num_prompts = 1;
    go.negative_prompt = s.negative_prompt.c_str();
    go.steps = s.steps;
    go.guidance = static_cast<float>(s.guidance);
    go.seed = s.seed + static_cast<uint64_t>(job.image);
    go.scheduler = s.scheduler.empty() ? nullptr : s.scheduler.c_str();
    go.width = s.width;
    go.height = s.height;
    std::pair<Studio*, GenJob*> user{this, &job};
    go.progress = on_progress;
    go.progress_user = &user;
    // img2img: the picture's own size; it stays loaded until the generation is done.
    std::unique_ptr<bioesp_images, void (*)(bioesp_images*)> init(nullptr, bioesp_images_free);
    bioesp_image init_image;
    if (!s.init.empty()) {
      bioesp_images* loaded = nullptr;
      if (bioesp_images_load((gallery_ / s.init).c_str(), &loaded) != BIOESP_OK) throw std::runtime_error(last_error(s.init));
      init.reset(loaded);
      init_image.struct_size = sizeof init_image;
      bioesp_images_get(loaded, 0, &init_image);
      go.init_image = &init_image;
      go.strength = static_cast<float>(s.strength);
      go.width = go.height = 0;
    }
    bioesp_images* images = nullptr;
    if (bioesp_generate(model_, &go, &images) != BIOESP_OK) throw std::runtime_error(last_error("generation"));
    std::unique_ptr<bioesp_images, void (*)(bioesp_images*)> owned(images, bioesp_images_free);
    bioesp_image img;
    img.struct_size = sizeof img;
    bioesp_images_get(images, 0, &img);

    const std::string name = std::to_string(now_ms()) + "-" + job.id + "-" + std::to_string(job.image);
    const fs::path png = gallery_ / (name + ".png");
    if (bioesp_images_save(images, 0, png.c_str(), nullptr) != BIOESP_OK) throw std::runtime_error(last_error("saving"));
    json entry = settings_json(s);
    entry["images"] = 1;
    entry["seed"] = go.seed;
    entry["width"] = img.width;
    entry["height"] = img.height;
    entry["model"] = cfg_.model;
    entry["file"] = name + ".png";
    entry["created"] = now_ms();
    entry["job"] = job.id;
    write_atomically(gallery_ / (name + ".json"), entry.dump(2) + "\n");
    bus_.publish("image", json{{"job", job.id}, {"entry", entry}});
  }

  // The JSON files saved beside pictures (or animations) in `dir`, newest first, whose file is
  // still there.
  json saved_entries(const fs::path& dir, size_t limit) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& d : fs::directory_iterator(dir, ec))
      if (d.path().extension() == ".json" && d.path().filename().string()[0] != '.') files.push_back(d.path());
    std::sort(files.rbegin(), files.rend());
    json out = json::array();
    for (const auto& f : files) {
      if (out.size() >= limit) break;
      json e = json::parse(read_file(f), nullptr, false);
      if (e.is_object() && fs::is_regular_file(gallery_ / e.value("file", ""))) out.push_back(e);
    }
    return out;
  }

  json gallery() { return saved_entries(gallery_, 500); }

  // A gallery picture's saved settings.
  json entry_of(const std::string& file) {
    const fs::path p = confined(gallery_, file);
    if (p.empty() || !is_picture(p) || !fs::is_regular_file(p)) throw HttpError(400, say("no gallery picture ", "no está en la galería: ") + file);
    fs::path meta = p;
    meta.replace_extension(".json");
    json e = json::parse(read_file(meta), nullptr, false);
    if (!e.is_object()) throw HttpError(400, file + say(" has no saved settings", " no tiene su configuración guardada"));
    return e;
  }

  std::string submit_animation(const json& j) {
    auto a = std::make_unique<Animation>();
    a->from = text_field(j, "from");
    a->to = text_field(j, "to");
    const json from = entry_of(a->from), to = entry_of(a->to);
    a->frames = static_cast<int>(number_field(j, "frames", 16, 2, 240));
    a->fps = number_field(j, "fps", 8, 1, 60);
    a->pingpong = j.value("pingpong", false);
    a->format = text_field(j, "format");
    if (a->format.empty()) a->format = "gif";
    if (a->format != "gif" && a->format != "mp4" && a->format != "webm") throw HttpError(400, say("format: gif, mp4 or webm", "formato: gif, mp4 o webm"));
    a->prompts = {from.value("prompt", ""), to.value("prompt", "")};
    a->seeds = {from.value("seed", uint64_t(0)), to.value("seed", uint64_t(0))};
    json first = from;
    first["images"] = 1;
    first["seed"] = 0;
    first["init"] = "";  // animations start from noise
    if (!first.value("lora", std::string()).empty() && !lora_files().count(first.value("lora", std::string())))
      first["lora"] = "";  // a LoRA deleted since: the animation is drawn without it
    Settings s = settings_of(first);
    return submit(s, std::move(a));
  }

  // The frames (progress counts denoising steps over all of them), written as GIF, MP4 or WebM
  // to gallery/animations/ with a JSON file of their settings.
  void animate(GenJob& job) {
    const Settings& s = job.s;
    const Animation& a = *job.animation;
    std::vector<const char*> prompts;
    for (const auto& p : a.prompts) prompts.push_back(p.c_str());
    bioesp_animate_options ao;
    bioesp_animate_options_init(&ao);
    ao.prompts = prompts.data();
    ao.num_prompts = prompts.size();
    ao.seeds = a.seeds.data();
    ao.num_seeds = a.seeds.size();
    ao.frames = a.frames;
    ao.pingpong = a.pingpong;
    ao.negative_prompt = s.negative_prompt.c_str();
    ao.steps = s.steps;
    ao.guidance = static_cast<float>(s.guidance);
    ao.scheduler = s.scheduler.empty() ? nullptr : s.scheduler.c_str();
    ao.width = s.width;
    ao.height = s.height;
    std::pair<Studio*, GenJob*> user{this, &job};
    ao.progress = on_progress;
    ao.progress_user = &user;
    bioesp_images* frames = nullptr;
    if (bioesp_animate(model_, &ao, &frames) != BIOESP_OK) throw std::runtime_error(last_error("animation"));
    std::unique_ptr<bioesp_images, void (*)(bioesp_images*)> owned(frames, bioesp_images_free);
    size_t count = 0;
    bioesp_images_count(frames, &count);
    const std::string name = std::to_string(now_ms()) + "-" + job.id + "." + a.format;
    bioesp_animation_options opt;
    bioesp_animation_options_init(&opt);
    opt.fps = a.fps;
    if (bioesp_images_save_animation(frames, (animations_ / name).c_str(), &opt) != BIOESP_OK)
      throw std::runtime_error(last_error("saving the animation"));
    json entry = settings_json(s);
    entry.erase("images");
    entry.erase("seed");
    entry.erase("prompt");
    entry["prompts"] = a.prompts;
    entry["seeds"] = a.seeds;
    entry["from"] = a.from;
    entry["to"] = a.to;
    entry["frames"] = count;
    entry["fps"] = a.fps;
    entry["pingpong"] = a.pingpong;
    entry["format"] = a.format;
    entry["file"] = "animations/" + name;
    entry["model"] = cfg_.model;
    entry["created"] = now_ms();
    write_atomically(animations_ / (name + ".json"), entry.dump(2) + "\n");
    bus_.publish("animation", json{{"job", job.id}, {"entry", entry}});
  }

  json animations() { return saved_entries(animations_, 200); }

  void remove_animation(const std::string& file) {
    const fs::path p = confined(animations_, file);
    if (p.empty() || !media_type(p) || is_picture(p) || !fs::is_regular_file(p)) throw HttpError(404, say("no such animation", "no existe esa animación"));
    fs::path meta = p;
    meta += ".json";
    fs::remove(meta);
    fs::remove(p);
    bus_.publish("removed", json{{"file", "animations/" + file}});
  }

  void remove_picture(const std::string& file) {
    if (!safe_name(file) || fs::path(file).extension() != ".png") throw HttpError(400, say("not a gallery picture", "no es una imagen de la galería"));
    const fs::path png = confined(gallery_, file);
    if (png.empty() || !fs::exists(png)) throw HttpError(404, say("no such picture", "no existe esa imagen"));
    fs::path meta = png;
    meta.replace_extension(".json");
    fs::remove(meta);
    fs::remove(png);
    bus_.publish("removed", json{{"file", file}});
  }

  // --- Datasets ----------------------------------------------------------------------------

  json datasets() {
    json out = json::array();
    std::error_code ec;
    for (const auto& d : subfolders(cfg_.datasets)) {
      size_t n = 0;
      for (const auto& f : fs::directory_iterator(d, ec))
        if (f.is_regular_file() && is_picture(f.path())) ++n;
      if (n) out.push_back(json{{"name", d.filename().string()}, {"images", n}, {"manifest", fs::exists(d / "manifest.jsonl")}});
    }
    return out;
  }

  // A dataset's pictures with caption, author and license (manifest.jsonl, else <image>.txt).
  json dataset(const std::string& name) {
    const fs::path dir = confined(cfg_.datasets, name);
    if (dir.empty() || !fs::is_directory(dir)) throw HttpError(404, say("no dataset named ", "no hay ningún conjunto de datos llamado ") + name);
    std::map<std::string, json> manifest;
    std::istringstream lines(read_file(dir / "manifest.jsonl"));
    std::string line;
    while (std::getline(lines, line)) {
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("file") && j["file"].is_string()) manifest[j["file"]] = j;
    }
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir, ec))
      if (f.is_regular_file() && is_picture(f.path()) && safe_name(f.path().filename().string()))
        files.push_back(f.path().filename().string());
    std::sort(files.begin(), files.end());
    json items = json::array();
    for (const auto& f : files) {
      json item{{"file", f}};
      auto it = manifest.find(f);
      if (it != manifest.end())
        for (const char* k : {"caption", "author", "license", "license_url", "page_url", "title", "credit"})
          if (it->second.contains(k) && it->second[k].is_string()) item[k] = it->second[k];
      if (!item.contains("caption")) {
        fs::path txt = dir / f;
        txt.replace_extension(".txt");
        if (fs::is_regular_file(txt)) {
          std::string c = read_file(txt);
          while (!c.empty() && (c.back() == '\n' || c.back() == '\r')) c.pop_back();
          item["caption"] = c;
        }
      }
      items.push_back(item);
    }
    return json{{"name", name}, {"items", items}, {"attribution", fs::exists(dir / "ATTRIBUTION.md")}};
  }

  // A new dataset from Commons: a category, an upload campaign or a search; licenses and
  // restrictions as bioesp fetch checks them; credits kept in the manifest and ATTRIBUTION.md.
  std::string start_fetch(const json& j) {
    const std::string source = text_field(j, "source"), value = text_field(j, "value");
    if (source != "category" && source != "campaign" && source != "search") throw HttpError(400, say("source: category, campaign or search", "fuente: categoría, campaña o búsqueda"));
    if (value.empty()) throw HttpError(400, say("name a category, campaign or search", "escribe una categoría, campaña o búsqueda"));
    std::string name = text_field(j, "name");
    if (name.empty()) {
      for (unsigned char c : value) name += std::isalnum(c) || c >= 0x80 ? static_cast<char>(c) : '-';
      if (name.size() > 60) name.resize(60);
      while (!name.empty() && static_cast<unsigned char>(name.back()) >= 0x80) name.pop_back();  // no half letter
    }
    if (!safe_name(name)) throw HttpError(400, say("a dataset's name cannot contain / or start with a dot", "el nombre de un conjunto no puede tener / ni empezar con un punto"));
    if (fs::exists(cfg_.datasets / name)) throw HttpError(409, say("a dataset named " + name + " exists; choose another name", "ya existe un conjunto llamado " + name + "; elige otro nombre"));
    std::string crop = text_field(j, "crop");
    if (crop.empty()) crop = "center";
    if (crop != "center" && crop != "attention" && crop != "pad") throw HttpError(400, say("crop: center, attention or pad", "recorte: center, attention o pad"));
    int size = size_field(j, "size");
    if (size == 0) size = native_size() > 0 ? native_size() : 512;
    if (size < 64) throw HttpError(400, say("size must be at least 64", "el tamaño debe ser al menos 64"));
    auto run = std::make_shared<FetchRun>();
    run->name = name;
    run->settings = json{{"source", source}, {"value", value}, {"limit", static_cast<int>(number_field(j, "limit", 50, 1, 5000))},
                         {"size", size}, {"crop", crop}, {"caption", text_field(j, "caption")},
                         {"species", j.value("species", true)}};
    std::lock_guard<std::mutex> lock(fetch_m_);
    if (fetching_) throw HttpError(409, say("dataset " + fetching_->name + " is being made; one at a time", "se está armando el conjunto " + fetching_->name + "; uno a la vez"));
    fetching_ = run;
    if (fetcher_.joinable()) fetcher_.join();  // the last one's thread, finished
    bus_.publish("fetch", json{{"name", name}, {"state", "starting"}, {"settings", run->settings}});
    fetcher_ = std::thread([this, run] { fetch(*run); });
    return name;
  }

  static int on_fetch(void* user, const bioesp_progress* p) {
    auto* self = static_cast<std::pair<Studio*, FetchRun*>*>(user);
    FetchRun& run = *self->second;
    const int64_t t = now_ms();
    if (p->current == p->total || t - run.last_event >= 200) {
      run.last_event = t;
      self->first->bus_.publish("fetch", json{{"name", run.name}, {"state", "running"}, {"stage", p->stage},
                                              {"current", p->current}, {"total", p->total}, {"item", p->item ? p->item : ""}});
    }
    return run.cancel || g_stop ? 1 : 0;
  }

  static void on_fetch_log(void* user, bioesp_log_level level, const char* message) {
    auto* self = static_cast<std::pair<Studio*, FetchRun*>*>(user);
    if (level < BIOESP_LOG_INFO || self->second->skipped.size() >= 500) return;
    self->second->skipped.push_back(message);
    self->first->bus_.publish("fetch", json{{"name", self->second->name}, {"state", "running"}, {"note", message}});
  }

  void fetch(FetchRun& run) {
    const json& s = run.settings;
    const std::string value = s["value"], source = s["source"], crop = s["crop"], caption = s["caption"];
    const std::string raw = (downloads_ / run.name).string(), out = (cfg_.datasets / run.name).string();
    std::pair<Studio*, FetchRun*> user{this, &run};
    bioesp_fetch_options fo;
    bioesp_fetch_options_init(&fo);
    fo.source = source == "category" ? BIOESP_SOURCE_CATEGORY : source == "campaign" ? BIOESP_SOURCE_CAMPAIGN : BIOESP_SOURCE_SEARCH;
    fo.value = value.c_str();
    fo.limit = s["limit"];
    fo.contact = cfg_.contact.empty() ? nullptr : cfg_.contact.c_str();
    fo.api = cfg_.commons_api.empty() ? nullptr : cfg_.commons_api.c_str();
    fo.out = raw.c_str();
    fo.progress = on_fetch;
    fo.progress_user = &user;
    fo.log = on_fetch_log;
    fo.log_user = &user;
    size_t downloaded = 0, skipped = 0, prepared = 0, dropped = 0;
    json j{{"name", run.name}};
    bioesp_status st = bioesp_fetch(&fo, &downloaded, &skipped);
    if (st == BIOESP_OK) {
      bioesp_prepare_options po;
      bioesp_prepare_options_init(&po);
      po.in = raw.c_str();
      po.out = out.c_str();
      po.size = s["size"];
      po.crop = crop.c_str();
      po.caption = caption.empty() ? nullptr : caption.c_str();
      po.caption_from_metadata = s["species"].get<bool>();
      po.progress = on_fetch;
      po.progress_user = &user;
      po.log = on_fetch_log;
      po.log_user = &user;
      st = bioesp_prepare(&po, &prepared, &dropped);
    }
    if (st == BIOESP_OK) j["state"] = "done";
    else if (st == BIOESP_ERR_CANCELLED) j["state"] = "stopped";
    else j["state"] = "failed", j["error"] = last_error("dataset");
    j["downloaded"] = downloaded, j["skipped"] = skipped, j["prepared"] = prepared;
    j["notes"] = run.skipped;
    std::lock_guard<std::mutex> lock(fetch_m_);  // who asks after this event finds it finished
    bus_.publish("fetch", j);
    fetching_.reset();
  }

  // --- Training ----------------------------------------------------------------------------

  static int on_train(void* user, const bioesp_train_progress* p) {
    auto* self = static_cast<std::pair<Studio*, TrainRun*>*>(user);
    TrainRun& run = *self->second;
    if (std::strcmp(p->stage, "train") == 0) run.pending.emplace_back(p->step, p->loss);
    const int64_t t = now_ms();
    if (run.stage != p->stage || p->step == p->total || t - run.last_event >= 200) {
      run.last_event = t;
      run.stage = p->stage;
      json j{{"name", run.name}, {"state", "running"}, {"stage", p->stage}, {"step", p->step}, {"total", p->total},
             {"eta", p->eta_seconds}, {"seconds_per_step", p->seconds_per_step}, {"learning_rate", p->learning_rate}};
      self->first->publish_training(run, j);
    }
    return run.cancel || g_stop ? 1 : 0;
  }

  // Sends the loss points gathered since the last event, and validation pictures that appeared.
  void publish_training(TrainRun& run, json j) {
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

  static std::vector<std::string> validation_pictures(const fs::path& out) {
    std::vector<std::string> v;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(out / "validation", ec))
      if (f.is_regular_file() && f.path().extension() == ".png") v.push_back(f.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

  std::string start_training(const json& j) {
    const std::string data = text_field(j, "dataset");
    const fs::path data_dir = confined(cfg_.datasets, data);
    if (data.empty() || data_dir.empty() || !fs::is_directory(data_dir)) throw HttpError(400, say("pick a dataset", "elige un conjunto de datos"));
    std::string name = text_field(j, "name");
    if (name.empty()) name = data + "-" + std::to_string(now_ms() / 1000);
    if (!safe_name(name)) throw HttpError(400, say("a training's name cannot contain / or start with a dot", "el nombre de un entrenamiento no puede tener / ni empezar con un punto"));
    const bool resume = j.value("resume", false);
    const fs::path out = trainings_ / name;
    if (resume && !fs::is_directory(out / "checkpoints")) throw HttpError(409, say("training " + name + " has no checkpoint to resume from", "el entrenamiento " + name + " no tiene un punto de control desde donde seguir"));
    if (!resume && fs::exists(out)) throw HttpError(409, say("a training named " + name + " exists: resume it or choose another name", "ya existe un entrenamiento llamado " + name + ": continúalo o elige otro nombre"));

    json settings = resume && fs::exists(out / "studio.json") ? json::parse(read_file(out / "studio.json")) : json::object();
    if (!resume) {
      settings = json{{"dataset", data},
                      {"prompt", text_field(j, "prompt")},
                      {"steps", static_cast<int>(number_field(j, "steps", 200, 1, 100000))},
                      {"rank", static_cast<int>(number_field(j, "rank", 4, 1, 256))},
                      {"learning_rate", number_field(j, "learning_rate", 1e-4, 1e-7, 1)},
                      {"resolution", size_field(j, "resolution")},
                      {"batch_size", static_cast<int>(number_field(j, "batch_size", 1, 1, 64))},
                      {"seed", static_cast<uint64_t>(number_field(j, "seed", 0, 0, 4294967295.0))},
                      {"validation_prompt", text_field(j, "validation_prompt")},
                      {"validation_every", static_cast<int>(number_field(j, "validation_every", 50, 0, 100000))},
                      {"checkpoint_every", static_cast<int>(number_field(j, "checkpoint_every", 50, 0, 100000))},
                      {"train_text_encoder", j.value("train_text_encoder", false)},
                      {"model", cfg_.model}};
      if (settings["prompt"].get<std::string>().empty()) settings["prompt"] = "criatura especulativa colombiana";
      if (settings["resolution"] == 0) settings["resolution"] = native_size() > 0 ? native_size() : 512;
    }
    auto run = std::make_shared<TrainRun>();
    run->name = name;
    run->out = out;
    run->settings = settings;
    {
      std::lock_guard<std::mutex> lock(train_m_);
      if (training_) throw HttpError(409, say("training " + training_->name + " is running; one at a time", "el entrenamiento " + training_->name + " está en curso; uno a la vez"));
      fs::create_directories(out);
      if (!resume) write_atomically(out / "studio.json", settings.dump(2) + "\n");
      for (const auto& v : validation_pictures(out)) run->validation.insert(v);
      training_ = run;
      if (trainer_.joinable()) trainer_.join();  // the last run's thread, finished
      bus_.publish("train", json{{"name", name}, {"state", "starting"}, {"settings", settings}, {"points", json::array()},
                                 {"validation", json::array()}});
      trainer_ = std::thread([this, run, resume] { train(*run, resume); });
    }
    return name;
  }

  void train(TrainRun& run, bool resume) {
    const json& s = run.settings;
    const std::string data = (cfg_.datasets / s.value("dataset", "")).string(), prompt = s.value("prompt", ""),
                      vprompt = s.value("validation_prompt", ""), out = run.out.string();
    bioesp_train_options o;
    bioesp_train_options_init(&o);
    o.model = cfg_.model.c_str();
    o.data = data.c_str();
    o.prompt = prompt.c_str();
    o.steps = s.value("steps", 200);
    o.rank = s.value("rank", 4);
    o.learning_rate = s.value("learning_rate", 1e-4f);
    o.resolution = s.value("resolution", 512);
    o.batch_size = s.value("batch_size", 1);
    o.seed = s.value("seed", uint64_t(0));
    o.validation_prompt = vprompt.empty() ? nullptr : vprompt.c_str();
    o.validation_every = s.value("validation_every", 0);
    o.checkpoint_every = s.value("checkpoint_every", 0);
    o.train_text_encoder = s.value("train_text_encoder", false);
    o.resume = resume;
    o.device = cfg_.device;
    o.threads = cfg_.threads;
    o.out = out.c_str();
    std::pair<Studio*, TrainRun*> user{this, &run};
    o.progress = on_train;
    o.progress_user = &user;
    char* result = nullptr;
    const bioesp_status st = bioesp_train(&o, &result);
    bioesp_string_free(result);
    json j{{"name", run.name}};
    if (st == BIOESP_OK) j["state"] = "done";
    else if (st == BIOESP_ERR_CANCELLED) j["state"] = "stopped";
    else j["state"] = "failed", j["error"] = last_error("training");
    std::lock_guard<std::mutex> lock(train_m_);  // who asks after this event finds it finished
    publish_training(run, j);
    training_.reset();
  }

  json run_summary(const fs::path& dir) {
    const std::string name = dir.filename().string();
    json settings = json::parse(read_file(dir / "studio.json"), nullptr, false);
    json log = json::array();
    std::istringstream lines(read_file(dir / "train_log.jsonl"));
    std::string line;
    while (std::getline(lines, line)) {
      json l = json::parse(line, nullptr, false);
      if (l.is_object() && l.contains("step") && l.contains("loss")) log.push_back({l["step"], l["loss"]});
    }
    std::string state = fs::exists(dir / "pytorch_lora_weights.safetensors") ? "done"
                        : fs::is_directory(dir / "checkpoints")            ? "stopped"
                                                                           : "new";
    {
      std::lock_guard<std::mutex> lock(train_m_);
      if (training_ && training_->name == name) state = "running";
    }
    return json{{"name", name}, {"state", state}, {"settings", settings.is_discarded() ? json(nullptr) : settings},
                {"log", log}, {"validation", validation_pictures(dir)}};
  }

  json trainings() {
    json out = json::array();
    for (const auto& d : subfolders(trainings_)) {
      json r = run_summary(d);
      r.erase("log");
      out.push_back(r);
    }
    return out;
  }

  json training(const std::string& name) {
    const fs::path dir = confined(trainings_, name);
    if (dir.empty() || !fs::is_directory(dir)) throw HttpError(404, say("no training named ", "no hay ningún entrenamiento llamado ") + name);
    return run_summary(dir);
  }

  Config cfg_;
  fs::path gallery_, animations_, trainings_, downloads_;
  int port_ = 0;
  bioesp_model* model_ = nullptr;
  EventBus bus_;

  std::mutex jobs_m_;
  std::condition_variable jobs_cv_;
  std::deque<std::shared_ptr<GenJob>> queue_;
  std::shared_ptr<GenJob> current_;
  uint64_t job_counter_ = 0;
  bool quit_ = false;
  std::thread worker_;
  std::string lora_;  // the file (and its time) attached as "studio"; only the worker touches it

  std::mutex fetch_m_;
  std::shared_ptr<FetchRun> fetching_;  // the running one
  std::thread fetcher_;

  std::mutex train_m_;
  std::shared_ptr<TrainRun> training_;  // the running one
  std::thread trainer_;
};

bool loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

}  // namespace

int cmd_studio(int argc, char** argv) {
  Config c;
  const char* env_model = std::getenv("BIOESP_MODEL");
  if (env_model && *env_model) c.model = env_model;
  std::string datasets, loras;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    long n;
    if (a == "--model" && has) c.model = argv[++i];
    else if (a == "--dir" && has) c.dir = argv[++i];
    else if (a == "--datasets" && has) datasets = argv[++i];
    else if (a == "--loras" && has) loras = argv[++i];
    else if (a == "--host" && has) c.host = argv[++i];
    else if (a == "--lang" && has) c.lang = argv[++i];
    else if (a == "--open") c.open = true;
    else if (a == "--contact" && has) c.contact = argv[++i];
    else if (a == "--commons-api" && has) c.commons_api = argv[++i];
    else if (a == "--port" && has) {
      if (!parse_long("--port", argv[++i], &n) || n < 0 || n > 65535) return 2;
      c.port = static_cast<int>(n);
    } else if (a == "--threads" && has) {
      if (!parse_long("--threads", argv[++i], &n) || n < 0) return 2;
      c.threads = static_cast<int>(n);
    } else if (a == "--device" && has) {
      const std::string d = argv[++i];
      if (d != "cpu" && d != "cuda") return std::fprintf(stderr, "bioesp studio: --device cpu|cuda\n"), 2;
      c.device = d == "cuda" ? BIOESP_DEVICE_CUDA : BIOESP_DEVICE_CPU;
    } else {
      std::fprintf(stderr, "bioesp studio: unknown option %s (see bioesp --help)\n", a.c_str());
      return 2;
    }
  }
  if (c.lang != "" && c.lang != "es" && c.lang != "en") return std::fprintf(stderr, "bioesp studio: --lang es|en\n"), 2;
  if (c.model.empty() && bioesp_embedded_model()) c.model = bioesp_embedded_model();
  if (c.model.empty()) return std::fprintf(stderr, "bioesp studio: name a model with --model or BIOESP_MODEL\n"), 2;
  c.remote = !loopback(c.host);
  c.datasets = datasets.empty() ? c.dir / "datasets" : fs::path(datasets);
  c.loras = loras.empty() ? c.dir / "loras" : fs::path(loras);

  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    Studio studio(c);
    return studio.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bioesp studio: %s\n", e.what());
    return 1;
  }
}
