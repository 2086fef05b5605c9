#include "events.h"

#include "files.h"

namespace studio {

namespace {
constexpr size_t kKept = 2000;
}

void EventBus::on_publish(std::function<void()> f) {
  std::lock_guard<std::mutex> lock(m_);
  notify_ = std::move(f);
}

void EventBus::publish(const std::string& type, nlohmann::json data) {
  data["type"] = type;
  std::string text = json_text(data);
  std::lock_guard<std::mutex> lock(m_);
  events_.emplace_back(next_++, std::move(text));
  while (events_.size() > kKept) events_.pop_front();
  if (notify_) notify_();
}

uint64_t EventBus::last() {
  std::lock_guard<std::mutex> lock(m_);
  return next_ - 1;
}

std::string EventBus::since(uint64_t* after, size_t budget) {
  std::lock_guard<std::mutex> lock(m_);
  std::string text;
  if (events_.empty()) return text;
  // The ids are consecutive: the first new one is at after + 1 - front.
  const uint64_t first = events_.front().first;
  for (size_t i = *after + 1 > first ? *after + 1 - first : 0; i < events_.size(); ++i) {
    std::string one = "id: " + std::to_string(events_[i].first) + "\ndata: " + events_[i].second + "\n\n";
    if (!text.empty() && text.size() + one.size() > budget) break;
    text += one;
    *after = events_[i].first;
  }
  return text;
}

}  // namespace studio
