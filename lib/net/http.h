// HTTP through libcurl for the remote archives: polite (a descriptive User-Agent), robust
// (retries with exponential backoff and jitter on 408/429/5xx and dropped connections, honouring
// Retry-After), resumable (downloads go to a .part file continued with Range), cancellable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/weights.h"

namespace bioesp::net {

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names; the last value wins
  std::string header(const std::string& name) const;
};

// A request beyond a plain GET: the Hub's API posts JSON and NDJSON, uploads with PUT, and reads
// redirects itself.
struct Request {
  std::string method = "GET";             // GET, HEAD, POST or PUT
  std::string url;
  std::vector<std::string> headers;       // "Name: value"; never logged (they carry tokens)
  std::string body;                       // POST / PUT from memory, unless body_file is set
  std::string body_file;                  // PUT streamed from [offset, offset + size) of a file
  uint64_t body_offset = 0, body_size = 0;
  bool follow_redirects = true;
};

struct RetryPolicy {
  int max_retries = 6;
  double base_delay = 1.0;   // seconds; doubles each retry, with ±50 % jitter
  double max_delay = 120.0;
};

class Client {
 public:
  // cancelled() is polled during transfers and waits; when true, calls throw BIOESP_ERR_CANCELLED.
  Client(std::string user_agent, RetryPolicy retry, std::function<bool()> cancelled, io::Logger log);
  // GET; retried while the status is 408, 429 or 5xx or the connection fails. Other statuses are
  // returned for the caller to judge.
  Response get(const std::string& url);
  // Any request, retried as get().
  Response send(const Request& request);
  // Downloads into `part` (appending to what it holds, via Range), retrying as get() does;
  // `on_bytes` sees the file's size as it grows. Throws BIOESP_ERR_NETWORK for a final failure.
  // `headers` as Request::headers.
  void download(const std::string& url, const std::string& part, const std::function<void(uint64_t)>& on_bytes,
                const std::vector<std::string>& headers = {});
  // Sleeps, waking early to throw when cancelled.
  void wait(double seconds);
  // The delay before retry `attempt` (0-based), or the server's Retry-After when it gave one.
  double delay(int attempt, const Response* r);
  const std::string& user_agent() const { return ua_; }

 private:
  std::string ua_;
  RetryPolicy retry_;
  std::function<bool()> cancelled_;
  io::Logger log_;
  uint64_t jitter_state_;
};

// "bioesp/<version> (<contact>) libcurl/<version>", as Wikimedia's User-Agent policy asks.
std::string user_agent(const std::string& contact);
std::string url_encode(const std::string& s);

}  // namespace bioesp::net
