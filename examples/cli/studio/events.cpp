#include "events.h"

#include "files.h"

namespace studio {

namespace {
constexpr size_t kKept = 2000;
}

void EventBus::publish(const std::string& type, nlohmann::json data) {
  data["type"] = type;
  {
    std::lock_guard<std::mutex> lock(m_);
    events_.emplace_back(next_++, json_text(data));
    while (events_.size() > kKept) events_.pop_front();
  }
  if (notify_) notify_();
}

uint64_t EventBus::last() {
  std::lock_guard<std::mutex> lock(m_);
  return next_ - 1;
}

std::string EventBus::since(uint64_t* after) {
  std::lock_guard<std::mutex> lock(m_);
  std::string text;
  if (events_.empty()) return text;
  // The ids are consecutive: the first new one is at after + 1 - front.
  const uint64_t first = events_.front().first;
  for (size_t i = *after + 1 > first ? *after + 1 - first : 0; i < events_.size(); ++i) {
    text += "id: " + std::to_string(events_[i].first) + "\ndata: " + events_[i].second + "\n\n";
    *after = events_[i].first;
  }
  return text;
}

}  // namespace studio
