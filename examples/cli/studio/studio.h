// bioesp studio: the workshop's generator, gallery, datasets and LoRA training as a local web
// application over the public C API (bioesp.h) alone. Its rooms, one file each:
//   main.cpp         the command line, the model, start and stop
//   server.cpp       routes, the Host/Origin/JSON rules, the page and its files
//   connections.cpp  sockets in front of cpp-httplib: deadlines, size caps, event streams
//   events.cpp       the numbered event log the pages follow
//   generation.cpp   pictures and animations on the library's jobs, LoRAs
//   gallery.cpp      saved pictures and animations with their settings
//   drawings.cpp     the page's canvas drawings (a ControlNet's scribble, a mask), checked and kept
//   datasets.cpp     dataset folders, their credits, a dataset from Wikimedia Commons
//   training.cpp     LoRA trainings: start, progress, stop, resume
//   options.cpp      the library's options table: requests set options by field name, and
//                    GET /api/options (bioesp studio --options) lists every field for the page
//   request.cpp      the studio's own request fields read with their types and ranges
//   strings.cpp      the words of both languages (strings.en.json, strings.es.json)
//   files.cpp        safe names, confined paths, listings, atomic writes
//   rules.h          the studio's service limits, and its narrower ranges and own defaults for
//                    fields of the options table
#pragma once
#include <bioesp.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace studio {

struct Config {
  std::string model, host = "127.0.0.1", lang, commons_api, contact;
  int port = 7860;
  int threads = 0;
  std::string weight_storage;  // the model option's text ("f16", …); empty: its default
  bioesp_device device = BIOESP_DEVICE_CPU;
  bool remote = false, open = false;
  int native_size = 0;  // the model's own picture size (0: not known)
  std::filesystem::path dir = "bioesp-studio", gallery, trainings, downloads, datasets, loras, embeddings, controlnets;
};

int64_t now_ms();
// "what: <the library's last error on this thread>"
std::string last_error(const std::string& what);
// Runs a thread's body: whatever it throws is reported on stderr and stops there, never the
// studio (each body answers its own failures first; this is the last resort).
void contained(const char* what, const std::function<void()>& body);

}  // namespace studio
