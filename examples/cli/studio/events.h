// Events for every open page: a numbered log of the last ones (the job, image, train, fetch and
// removed events the page follows), written as server-sent events. A page that reconnects names
// the last one it saw (Last-Event-ID) and misses nothing the log still holds.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace studio {

class EventBus {
 public:
  // Called after every publish, from the publishing thread, under the log's lock (the connections
  // wake up for it); an empty one stops the calls (the connections are going).
  void on_publish(std::function<void()> f);

  void publish(const std::string& type, nlohmann::json data);
  uint64_t last();
  // The events after *after as server-sent-event text ("id: N\ndata: {...}\n\n" each), as many
  // as fit in `budget` bytes (one at least), moving *after to the last one given.
  std::string since(uint64_t* after, size_t budget);

 private:
  std::mutex m_;
  std::deque<std::pair<uint64_t, std::string>> events_;
  uint64_t next_ = 1;
  std::function<void()> notify_;
};

}  // namespace studio
