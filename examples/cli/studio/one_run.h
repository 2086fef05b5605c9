// One run at a time on its own thread (a dataset from Commons, a training): the running one can
// be asked to stop, and its thread is joined before the next starts and when the owner goes. Run
// has a `name` and an atomic `cancel`; its work ends with finish(), under the lock, so that whoever
// asks after its last event finds it finished.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "request.h"
#include "strings.h"
#include "studio.h"

namespace studio {

template <typename Run>
class OneRun {
 public:
  ~OneRun() {
    cancel_running();
    if (thread_.joinable()) thread_.join();
  }

  // Runs work() on a thread unless a run is going (409 with `busy`: "{name} is running").
  template <typename Work, typename Started>
  void start(std::shared_ptr<Run> run, const char* busy, Started started, Work work) {
    std::lock_guard<std::mutex> lock(m_);
    if (running_) throw HttpError(409, say(busy, {{"name", running_->name}}));
    if (thread_.joinable()) thread_.join();  // the last one's, finished
    started();
    running_ = run;
    try {
      thread_ = std::thread([run, work] { contained(run->name.c_str(), [&] { work(*run); }); });
    } catch (...) {
      running_.reset();
      throw;
    }
  }

  // Asks the running one to stop (409 with `none` when there is none).
  void cancel(const char* none) {
    std::lock_guard<std::mutex> lock(m_);
    if (!running_) throw HttpError(409, say(none));
    running_->cancel = true;
  }

  std::string running() {
    std::lock_guard<std::mutex> lock(m_);
    return running_ ? running_->name : "";
  }

  // The run's last words (its final event), said under the lock; then no run is going.
  template <typename Last>
  void finish(Last last) {
    std::lock_guard<std::mutex> lock(m_);
    last();
    running_.reset();
  }

 private:
  void cancel_running() {
    std::lock_guard<std::mutex> lock(m_);
    if (running_) running_->cancel = true;
  }

  std::mutex m_;
  std::shared_ptr<Run> running_;
  std::thread thread_;
};

}  // namespace studio
