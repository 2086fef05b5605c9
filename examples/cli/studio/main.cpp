// `bioesp studio`: its options, the model, then the studio's parts (see studio.h) until SIGINT,
// SIGTERM or SIGHUP, which stop it cleanly (a running training writes a checkpoint first).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "datasets.h"
#include "events.h"
#include "gallery.h"
#include "generation.h"
#include "options.h"
#include "server.h"
#include "studio.h"
#include "training.h"

extern "C" {
#include "../cli.h"
}

namespace studio {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string last_error(const std::string& what) {
  const char* e = bioesp_last_error();
  return what + ": " + (e && *e ? e : "unknown error");
}

void contained(const char* what, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bioesp studio: %s: %s\n", what, e.what());
  } catch (...) {
    std::fprintf(stderr, "bioesp studio: %s: an unknown exception\n", what);
  }
}

namespace {

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

// The model's own size, read from a diffusers folder's configs (0 when not a folder).
int native_size(const std::string& model) {
  const json unet = read_json(fs::path(model) / "unet" / "config.json"), vae = read_json(fs::path(model) / "vae" / "config.json");
  if (!unet.is_object() || !vae.is_object() || !unet.contains("sample_size") || !unet["sample_size"].is_number_integer()) return 0;
  const json blocks = vae.contains("block_out_channels") ? vae["block_out_channels"] : json::array({1, 1, 1, 1});
  if (!blocks.is_array() || blocks.empty() || blocks.size() > 8) return 0;
  return unet["sample_size"].get<int>() << (blocks.size() - 1);
}

bool loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

// 0 when the options are good; else the exit status, after saying why.
int parse(int argc, char** argv, Config& c) {
  const char* env_model = std::getenv("BIOESP_MODEL");
  if (env_model && *env_model) c.model = env_model;
  std::string datasets, loras, embeddings, controlnets;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    long n;
    if (a == "--model" && has) c.model = argv[++i];
    else if (a == "--dir" && has) c.dir = argv[++i];
    else if (a == "--datasets" && has) datasets = argv[++i];
    else if (a == "--loras" && has) loras = argv[++i];
    else if (a == "--embeddings" && has) embeddings = argv[++i];
    else if (a == "--controlnets" && has) controlnets = argv[++i];
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
    } else if (a == "--weight-storage" && has) {
      c.weight_storage = argv[++i];
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
  c.gallery = c.dir / "gallery";
  c.trainings = c.dir / "trainings";
  c.downloads = c.dir / "downloads";
  c.datasets = datasets.empty() ? c.dir / "datasets" : fs::path(datasets);
  c.loras = loras.empty() ? c.dir / "loras" : fs::path(loras);
  c.embeddings = embeddings.empty() ? c.dir / "embeddings" : fs::path(embeddings);
  c.controlnets = controlnets.empty() ? c.dir / "controlnets" : fs::path(controlnets);
  return 0;
}

int serve(Config& c) {
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.device = c.device;
  mo.threads = c.threads;
  // By name, as the command line sets it: the table checks the choice.
  if (!c.weight_storage.empty() &&
      bioesp_option_set(BIOESP_OPTIONS_MODEL, &mo, "weight_storage", c.weight_storage.c_str()) != BIOESP_OK)
    return fail_with("--weight-storage");
  std::fprintf(stderr, "bioesp studio: loading %s\n", c.model.c_str());
  bioesp_model* model = nullptr;
  if (bioesp_model_load(c.model.c_str(), &mo, &model) != BIOESP_OK) return fail_with("loading the model");
  std::unique_ptr<bioesp_model, void (*)(bioesp_model*)> owned(model, bioesp_model_free);  // after the parts
  c.native_size = native_size(c.model);
  if (!c.loras.empty()) fs::create_directories(c.loras);
  fs::create_directories(c.embeddings);
  fs::create_directories(c.controlnets);

  EventBus bus;
  Gallery gallery(c.gallery, bus);
  Training training(c, bus);
  Datasets datasets(c, bus);
  Generation generation(c, model, bus, gallery);
  Server server({c, bus, gallery, generation, datasets, training});
  const int port = server.bind();
  std::thread watch([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  const std::string shown = c.host.find(':') != std::string::npos ? "[" + c.host + "]" : c.host;
  const std::string url = "http://" + (shown == "0.0.0.0" || shown == "[::]" ? std::string("127.0.0.1") : shown) + ":" +
                          std::to_string(port) + "/";
  std::printf("bioesp studio: %s\n", url.c_str());
  std::fflush(stdout);
  if (c.open) open_browser(url);
  if (c.remote) std::fprintf(stderr, "bioesp studio: open to other machines on %s (no password)\n", c.host.c_str());
  server.run();
  g_stop = true;
  watch.join();
  std::fprintf(stderr, "bioesp studio: stopped\n");
  return 0;
}

}  // namespace
}  // namespace studio

extern "C" int cmd_studio(int argc, char** argv) {
  if (argc == 1 && std::strcmp(argv[0], "--options") == 0) {  // what GET /api/options answers, without a model
    std::printf("%s\n", studio::options_listing().dump(1).c_str());
    return 0;
  }
  studio::Config c;
  if (const int bad = studio::parse(argc, argv, c)) return bad;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = studio::on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // the terminal closed: stop as on SIGTERM, not die mid-step
  signal(SIGPIPE, SIG_IGN);
  try {
    return studio::serve(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bioesp studio: %s\n", e.what());
    return 1;
  }
}
