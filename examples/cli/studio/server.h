// The studio's web server: the page (built into the program) and its JSON API, routed by
// cpp-httplib behind the studio's own connections (connections.h).
//
// Safe by default: when it listens on loopback it answers only requests addressed to a loopback
// name (against DNS rebinding), and a request names exactly one Host; POSTs must be JSON from the
// studio's own origin (no cross-site form can start work); files are served by name from the
// studio's folders only, and only pictures.
#pragma once
#include <memory>
#include <string>

namespace studio {

struct Config;
class EventBus;
class Gallery;
class Generation;
class Datasets;
class Training;

struct Parts {
  const Config& cfg;
  EventBus& bus;
  Gallery& gallery;
  Generation& generation;
  Datasets& datasets;
  Training& training;
};

class Server {
 public:
  explicit Server(Parts parts);
  ~Server();
  // Listens on the configured host and port; returns the port.
  int bind();
  // Serves until stop() (from any thread).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace studio
