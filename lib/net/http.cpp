#include "net/http.h"

#ifdef BIOESP_HAVE_NETWORK
#include <curl/curl.h>
#endif
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "io/file.h"

extern "C" const char* bioesp_version_string(void);

namespace bioesp::net {

#ifdef BIOESP_HAVE_NETWORK
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  Response* response = nullptr;
  const Request* request = nullptr;
  std::FILE* upload = nullptr;   // PUT from a file
  uint64_t upload_left = 0;
  size_t body_sent = 0;          // PUT from memory
  std::FILE* file = nullptr;
  uint64_t size = 0;
  const std::function<void(uint64_t)>* on_bytes = nullptr;
  const std::function<bool()>* cancelled = nullptr;
  bool write_failed = false;
  CURL* handle = nullptr;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) t->response->headers.clear();  // a new response (after a redirect)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
    t->response->headers[name] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (!t->file) {
    if (t->response->body.size() + bytes > (256u << 20)) return 0;  // API answers are small
    t->response->body.append(data, bytes);
    return bytes;
  }
  long status = 0;
  curl_easy_getinfo(t->handle, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 && status != 206) return bytes;  // an error page never lands in the file
  if (std::fwrite(data, 1, bytes, t->file) != bytes) {
    t->write_failed = true;
    return 0;
  }
  t->size += bytes;
  if (t->on_bytes && *t->on_bytes) (*t->on_bytes)(t->size);
  return bytes;
}

size_t on_read(char* out, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t room = size * n;
  if (t->upload) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(room, t->upload_left));
    size_t got = std::fread(out, 1, take, t->upload);
    if (got != take) return CURL_READFUNC_ABORT;
    t->upload_left -= got;
    return got;
  }
  const std::string& body = t->request->body;
  size_t take = std::min(room, body.size() - t->body_sent);
  std::memcpy(out, body.data() + t->body_sent, take);
  t->body_sent += take;
  return take;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->cancelled && *t->cancelled && (*t->cancelled)() ? 1 : 0;
}

bool retryable(long status) { return status == 408 || status == 429 || status >= 500; }

// What went wrong with a transfer, for logs and errors.
std::string failure(CURLcode rc, const char* err, long status) {
  if (rc != CURLE_OK) return err[0] ? err : curl_easy_strerror(rc);
  return "HTTP " + std::to_string(status);
}

// One request. `t.file`: the body goes there (the caller decides on Range); else into the response.
CURLcode perform(const Request& req, const std::string& ua, Transfer& t, uint64_t resume_from, char* errbuf) {
  global_init();
  CURL* c = curl_easy_init();
  if (!c) fail(BIOESP_ERR_OUT_OF_MEMORY, "libcurl");
  t.handle = c;
  t.request = &req;
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, ua.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);   // a stalled transfer fails after 60 s
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip for API answers
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (resume_from > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(resume_from));
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    uint64_t size = req.body.size();
    if (!req.body_file.empty()) {
      t.upload = std::fopen(req.body_file.c_str(), "rb");
      if (!t.upload || std::fseek(t.upload, static_cast<long>(req.body_offset), SEEK_SET) != 0) {
        if (t.upload) std::fclose(t.upload);
        curl_slist_free_all(headers);
        curl_easy_cleanup(c);
        fail(BIOESP_ERR_IO, "cannot read " + req.body_file);
      }
      size = t.upload_left = req.body_size;
    }
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.response->status);
  if (t.upload) std::fclose(t.upload);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return rc;
}

}  // namespace

std::string Response::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

Client::Client(std::string ua, RetryPolicy retry, std::function<bool()> cancelled, io::Logger log)
    : ua_(std::move(ua)), retry_(retry), cancelled_(std::move(cancelled)), log_(std::move(log)),
      jitter_state_(static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1) {}

void Client::wait(double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cancelled_ && cancelled_()) fail(BIOESP_ERR_CANCELLED, "cancelled");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (cancelled_ && cancelled_()) fail(BIOESP_ERR_CANCELLED, "cancelled");
}

double Client::delay(int attempt, const Response* r) {
  if (r) {
    std::string ra = r->header("retry-after");
    char* end = nullptr;
    double s = ra.empty() ? -1 : std::strtod(ra.c_str(), &end);
    if (s >= 0 && end && *end == 0) return std::min(s, retry_.max_delay);
  }
  jitter_state_ ^= jitter_state_ << 13, jitter_state_ ^= jitter_state_ >> 7, jitter_state_ ^= jitter_state_ << 17;
  const double jitter = 0.5 + (jitter_state_ % 1000) / 1000.0;  // 0.5 … 1.5
  return std::min(retry_.max_delay, retry_.base_delay * std::pow(2.0, attempt) * jitter);
}

Response Client::get(const std::string& url) {
  Request req;
  req.url = url;
  return send(req);
}

Response Client::send(const Request& req) {
  const std::string& url = req.url;
  for (int attempt = 0;; ++attempt) {
    Response r;
    Transfer t;
    t.response = &r;
    t.cancelled = &cancelled_;
    char err[CURL_ERROR_SIZE] = {};
    CURLcode rc = perform(req, ua_, t, 0, err);
    if (rc == CURLE_ABORTED_BY_CALLBACK) fail(BIOESP_ERR_CANCELLED, "cancelled");
    const bool failed = rc != CURLE_OK || retryable(r.status);
    if (!failed) return r;
    std::string why = failure(rc, err, r.status);
    if (attempt >= retry_.max_retries) {
      if (rc == CURLE_OK) return r;
      fail(BIOESP_ERR_NETWORK, url + ": " + why + " (after " + std::to_string(attempt + 1) + " tries)");
    }
    double d = delay(attempt, rc == CURLE_OK ? &r : nullptr);
    if (log_) log_(BIOESP_LOG_INFO, why + " from " + url + "; retrying in " + std::to_string(d).substr(0, 4) + " s");
    wait(d);
  }
}

void Client::download(const std::string& url, const std::string& part, const std::function<void(uint64_t)>& on_bytes,
                      const std::vector<std::string>& headers) {
  Request req;
  req.url = url;
  req.headers = headers;
  for (int attempt = 0;; ++attempt) {
    struct stat st {};
    uint64_t have = stat(part.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    std::FILE* f = std::fopen(part.c_str(), "ab");
    if (!f) fail(BIOESP_ERR_IO, "cannot write " + part + ": " + std::strerror(errno));
    Response r;
    Transfer t;
    t.response = &r;
    t.file = f;
    t.size = have;
    t.on_bytes = &on_bytes;
    t.cancelled = &cancelled_;
    char err[CURL_ERROR_SIZE] = {};
    CURLcode rc = perform(req, ua_, t, have, err);
    const bool closed = std::fclose(f) == 0;
    if (rc == CURLE_ABORTED_BY_CALLBACK) fail(BIOESP_ERR_CANCELLED, "cancelled");
    if (t.write_failed || !closed) fail(BIOESP_ERR_IO, "cannot write " + part + " (disk full?)");
    if (rc == CURLE_OK && (r.status == 200 || r.status == 206)) {
      if (r.status == 200 && have > 0) {
        // The server ignored Range and sent everything: keep only the fresh copy.
        std::FILE* whole = std::fopen(part.c_str(), "rb");
        std::string tmp;
        std::FILE* out = fdopen(io::create_temporary(part, "", &tmp), "wb");
        if (!whole || !out) fail(BIOESP_ERR_IO, "cannot rewrite " + part + ": " + std::strerror(errno));
        std::fseek(whole, static_cast<long>(have), SEEK_SET);
        char buf[1 << 16];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, whole)) > 0) std::fwrite(buf, 1, n, out);
        std::fclose(whole);
        if (std::fclose(out) != 0 || std::rename(tmp.c_str(), part.c_str()) != 0) fail(BIOESP_ERR_IO, "cannot rewrite " + part);
      }
      return;
    }
    if (rc == CURLE_OK && r.status == 416) {  // the part is already complete (or longer than the file)
      return;
    }
    if (rc == CURLE_OK && !retryable(r.status)) {
      std::remove(part.c_str());
      fail(BIOESP_ERR_NETWORK, url + ": HTTP " + std::to_string(r.status));
    }
    std::string why = failure(rc, err, r.status);
    if (attempt >= retry_.max_retries)
      fail(BIOESP_ERR_NETWORK, url + ": " + why + " (after " + std::to_string(attempt + 1) + " tries; the partial file is kept)");
    double d = delay(attempt, rc == CURLE_OK ? &r : nullptr);
    if (log_) log_(BIOESP_LOG_INFO, why + " downloading " + url + "; resuming in " + std::to_string(d).substr(0, 4) + " s");
    wait(d);
  }
}

std::string user_agent(const std::string& contact) {
  std::string ua = std::string("bioesp/") + bioesp_version_string();
  ua += " (" + (contact.empty() ? std::string("https://github.com/bioesp/bioesp") : contact) + ")";
  ua += " libcurl/" + std::string(curl_version_info(CURLVERSION_NOW)->version);
  return ua;
}

std::string url_encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

#else  // built without libcurl

std::string Response::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}
Client::Client(std::string ua, RetryPolicy retry, std::function<bool()> cancelled, io::Logger log)
    : ua_(std::move(ua)), retry_(retry), cancelled_(std::move(cancelled)), log_(std::move(log)), jitter_state_(1) {}
[[noreturn]] static void no_network() { fail(BIOESP_ERR_UNSUPPORTED, "bioesp was built without network support (libcurl)"); }
Response Client::get(const std::string&) { no_network(); }
Response Client::send(const Request&) { no_network(); }
void Client::download(const std::string&, const std::string&, const std::function<void(uint64_t)>&,
                      const std::vector<std::string>&) { no_network(); }
void Client::wait(double) {}
double Client::delay(int, const Response*) { return 0; }
std::string user_agent(const std::string&) { no_network(); }
std::string url_encode(const std::string& s) { return s; }

#endif
}  // namespace bioesp::net
