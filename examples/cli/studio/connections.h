// The studio's sockets, in front of cpp-httplib. httplib's own server gives every connection a
// pool thread for as long as it stays open and reads with a per-read timeout only, so 16 idle
// event streams or slow clients held every thread, and a chunked body escaped the size cap.
// Here one thread polls every socket: a request reaches httplib (its parsing, routing and
// answers, on a few worker threads) only once it has wholly arrived within its deadline and caps,
// and event streams stay with the polling thread, so no client can hold a thread. rules.h holds
// the limits: header and body sizes (any Transfer-Encoding is refused with 411: a JSON API needs
// none), a deadline for each request and for each write, connections and event streams open.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace httplib {
class Stream;
}

namespace studio {

class Connections {
 public:
  // Serves one complete request read from `stream`, writing the answer to it (httplib's
  // process_request); `last`: the connection closes after it; *close: it must close anyway.
  using Serve = std::function<void(httplib::Stream& stream, bool last, bool* close)>;
  // The events after *after as text to send, about `budget` bytes at most (one event at least),
  // moving *after past them.
  using Events = std::function<std::string(uint64_t* after, size_t budget)>;

  Connections(Serve serve, Events events);
  ~Connections();

  // Listens on host:port (0: any free port); returns the port. Throws with the reason.
  int bind(const std::string& host, int port);
  // Serves until stop().
  void run();
  // From any thread.
  void stop();
  // New events to send (from any thread).
  void wake();

  // From a request handler: after its answer's head, this request's connection stays open as an
  // event stream that follows the events after `after`. False when rules::max_event_streams are
  // open (the handler then refuses).
  static bool follow_events(uint64_t after);
  // From a request handler: the bytes of answers that clients have not taken yet (a handler about
  // to answer with a large file checks it against rules::max_unsent).
  static size_t unsent();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace studio
