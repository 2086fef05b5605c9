#include "connections.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>

#include "files.h"
#include "rules.h"
#include "strings.h"
#include "studio.h"

namespace studio {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDrain = std::chrono::seconds(2);

// One client connection. The polling thread owns it, except while a worker serves its request.
struct Conn {
  // reading: waiting for a request (or sending an answer); serving: a worker has it; events: an
  // event stream; draining: answered and shut for writing, reading what the client still sends
  // (so that closing does not reset the connection before the client has read the answer).
  enum class State { reading, serving, events, draining };
  int fd = -1;
  std::string peer_ip, local_ip;
  int peer_port = 0, local_port = 0;
  State state = State::reading;
  std::string in;       // received, not yet served
  std::string request;  // the complete request a worker serves; cleared once its answer is sent
  std::string out;      // to send, from `sent`
  size_t sent = 0;
  Clock::time_point request_deadline, send_deadline, drain_deadline, last_sent;
  int served = 0;
  bool close_after = false;  // once `out` is sent
  bool continued = false;    // "100 Continue" sent for the request being read
  bool wants_events = false;
  uint64_t after = 0;        // event streams: the last event sent
  bool pending() const { return sent < out.size(); }
};

thread_local Conn* t_serving = nullptr;
thread_local std::atomic<size_t>* t_streams = nullptr;
thread_local std::atomic<size_t>* t_unsent = nullptr;

// httplib reads the request from memory and writes its answer to memory.
class BufferedStream final : public httplib::Stream {
 public:
  explicit BufferedStream(Conn& c) : c_(c) {}
  bool is_readable() const override { return at_ < c_.request.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* p, size_t n) override {
    n = std::min(n, c_.request.size() - at_);
    std::memcpy(p, c_.request.data() + at_, n);
    at_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* p, size_t n) override {
    c_.out.append(p, n);
    return static_cast<ssize_t>(n);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = c_.peer_ip, port = c_.peer_port; }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip = c_.local_ip, port = c_.local_port; }
  socket_t socket() const override { return c_.fd; }

 private:
  Conn& c_;
  size_t at_ = 0;
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// Where the head ends (past its blank line), or npos.
size_t head_end(const std::string& in) {
  const size_t crlf = in.find("\n\r\n"), lf = in.find("\n\n");
  return std::min(crlf == std::string::npos ? crlf : crlf + 3, lf == std::string::npos ? lf : lf + 2);
}

// What the connections need from a request's head: how long its body is and how it is sent;
// httplib parses the rest. The head is passed on without its Expect line (the connection has
// answered it).
struct Head {
  uint64_t length = 0;  // Content-Length
  int lengths = 0;
  bool bad_length = false, encoded = false, malformed = false, expect_continue = false;
  std::string lang, passed_on;
};

Head read_head(std::string_view text) {
  Head h;
  size_t at = text.find('\n') + 1;  // past the request line
  h.passed_on = text.substr(0, at);
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size() - 1);
    const std::string_view line = text.substr(at, end + 1 - at), content = trim(line);
    at = end + 1;
    const size_t colon = content.find(':');
    if (content.empty()) {
      h.passed_on += line;  // the blank line
      break;
    }
    if (line[0] == ' ' || line[0] == '\t' || colon == std::string_view::npos) {
      h.malformed = true;  // a folded or nameless line
      continue;
    }
    const std::string_view name = trim(content.substr(0, colon)), value = trim(content.substr(colon + 1));
    if (iequals(name, "Content-Length")) {
      ++h.lengths;
      h.bad_length |= value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string_view::npos;
      if (!h.bad_length) h.length = std::stoull(std::string(value));
    } else if (iequals(name, "Transfer-Encoding")) {
      h.encoded = true;
    } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
      h.expect_continue = true;
      continue;
    } else if (iequals(name, "X-Bioesp-Lang")) {
      h.lang = value;
    }
    h.passed_on += line;
  }
  return h;
}

std::string refusal(int status, const char* reason, const std::string& message) {
  const std::string body = json_text(json{{"error", message}});
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

void names(int fd, Conn& c) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  const int flags = NI_NUMERICHOST | NI_NUMERICSERV;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
      getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, port, sizeof port, flags) == 0)
    c.peer_ip = host, c.peer_port = std::atoi(port);
  len = sizeof a;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 &&
      getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, port, sizeof port, flags) == 0)
    c.local_ip = host, c.local_port = std::atoi(port);
}

}  // namespace

struct Connections::Impl {
  Serve serve;
  Events events;
  int listener = -1, waker = -1;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> streams{0};
  std::atomic<size_t> unsent{0};             // summed by the polling thread after each round
  std::vector<std::unique_ptr<Conn>> conns;  // the polling thread's
  Clock::time_point accept_paused_until;

  std::mutex m;
  std::condition_variable cv;
  std::deque<Conn*> ready;    // complete requests, for the workers
  std::vector<Conn*> served;  // answered, back to the polling thread
  bool quit = false;

  void loop();
  void work();
  void serve_one(Conn& c);
  void take_served();
  void feed();
  void feed_one(Conn& c);
  void accept_all();
  bool make_room();
  void expire(Clock::time_point now);
  void handle(Conn& c, short revents);
  bool receive(Conn& c);
  void parse(Conn& c);
  void send_some(Conn& c);
  void refuse(Conn& c, int status, const char* reason, const std::string& message);
  void close(Conn& c);
};

Connections::Connections(Serve serve, Events events) : impl_(std::make_unique<Impl>()) {
  impl_->serve = std::move(serve);
  impl_->events = std::move(events);
  impl_->waker = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->waker < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

Connections::~Connections() {
  for (auto& c : impl_->conns)
    if (c->fd >= 0) ::close(c->fd);
  if (impl_->listener >= 0) ::close(impl_->listener);
  ::close(impl_->waker);
}

int Connections::bind(const std::string& host, int port) {
  addrinfo hints{}, *found = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (const int e = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found))
    throw std::runtime_error("cannot listen on " + host + ": " + gai_strerror(e));
  std::string why = "no address";
  for (addrinfo* a = found; a && impl_->listener < 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    const int yes = 1;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) == 0 && ::bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::listen(fd, 128) == 0) {
      impl_->listener = fd;
    } else {
      why = std::strerror(errno);
      if (fd >= 0) ::close(fd);
    }
  }
  freeaddrinfo(found);
  if (impl_->listener < 0) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " + why);
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

void Connections::run() {
  std::vector<std::thread> workers;
  for (int i = 0; i < rules::workers; ++i) workers.emplace_back([this] { contained("a worker", [this] { impl_->work(); }); });
  contained("connections", [this] { impl_->loop(); });
  {
    std::lock_guard<std::mutex> lock(impl_->m);
    impl_->quit = true;
  }
  impl_->cv.notify_all();
  for (auto& w : workers) w.join();
}

void Connections::stop() {
  impl_->stopping = true;
  wake();
}

void Connections::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(impl_->waker, &one, sizeof one);  // full: a wake is pending anyway
}

size_t Connections::unsent() { return t_unsent ? t_unsent->load() : 0; }

bool Connections::follow_events(uint64_t after) {
  if (!t_serving || t_streams->fetch_add(1) >= rules::max_event_streams) {
    if (t_serving) --*t_streams;
    return false;
  }
  t_serving->wants_events = true;
  t_serving->after = after;
  return true;
}

void Connections::Impl::loop() {
  std::vector<pollfd> fds;
  std::vector<Conn*> polled;
  while (!stopping) {
    const auto now = Clock::now();
    fds.assign({{listener, static_cast<short>(now >= accept_paused_until ? POLLIN : 0), 0}, {waker, POLLIN, 0}});
    polled.clear();
    for (auto& c : conns) {
      if (c->state == Conn::State::serving) continue;
      short want = c->pending() ? POLLOUT : 0;
      if (!c->pending() || c->state != Conn::State::reading) want |= POLLIN;
      fds.push_back({c->fd, want, 0});
      polled.push_back(c.get());
    }
    if (::poll(fds.data(), fds.size(), 250) < 0) {
      if (errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // ENOMEM: try again
      continue;
    }
    if (fds[1].revents) {
      uint64_t n;
      [[maybe_unused]] ssize_t r = ::read(waker, &n, sizeof n);
      take_served();
      feed();
    }
    for (size_t i = 0; i < polled.size(); ++i)
      if (fds[i + 2].revents && polled[i]->fd >= 0) handle(*polled[i], fds[i + 2].revents);
    if (fds[0].revents & POLLIN) accept_all();
    expire(Clock::now());
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const auto& c) { return c->fd < 0; }), conns.end());
    size_t waiting = 0;
    for (const auto& c : conns)
      if (c->state != Conn::State::serving) waiting += c->out.size() - c->sent;
    unsent = waiting;
  }
}

void Connections::Impl::work() {
  for (;;) {
    Conn* c = nullptr;
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return quit || !ready.empty(); });
      if (ready.empty()) return;
      c = ready.front();
      ready.pop_front();
    }
    serve_one(*c);
    {
      std::lock_guard<std::mutex> lock(m);
      served.push_back(c);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(waker, &one, sizeof one);
  }
}

void Connections::Impl::serve_one(Conn& c) {
  BufferedStream stream(c);
  const bool last = ++c.served >= rules::keep_alive_requests;
  bool close = false;
  t_serving = &c;
  t_streams = &streams;
  t_unsent = &unsent;
  try {
    serve(stream, last, &close);
  } catch (const std::exception& e) {  // httplib answers a handler's exception; this is httplib's own
    std::fprintf(stderr, "bioesp studio: serving a request: %s\n", e.what());
    c.out = refusal(500, "Internal Server Error", e.what());
    close = true;
  } catch (...) {
    c.out = refusal(500, "Internal Server Error", "internal error");
    close = true;
  }
  if (close && c.wants_events) {  // a stream whose answer failed
    c.wants_events = false;
    --streams;
  }
  t_serving = nullptr;
  c.close_after = last || close;
}

void Connections::Impl::take_served() {
  std::vector<Conn*> back;
  {
    std::lock_guard<std::mutex> lock(m);
    back.swap(served);
  }
  const auto now = Clock::now();
  for (Conn* c : back) {
    c->state = c->wants_events ? Conn::State::events : Conn::State::reading;
    if (c->wants_events) c->close_after = false;  // a stream ends when the page leaves
    c->send_deadline = c->last_sent = now;
    c->send_deadline += std::chrono::seconds(rules::write_seconds);
    send_some(*c);
  }
}

void Connections::Impl::feed() {
  for (auto& c : conns)
    if (c->fd >= 0 && c->state == Conn::State::events) feed_one(*c);
}

// Sends the stream's new events as far as its client takes them, in pieces of at most
// rules::max_event_backlog: the next is taken from the log only once the last is sent, so a page
// catching up on many gets them as it reads, and one that does not read holds one piece until its
// write deadline closes it (its EventSource reconnects from the last event it has).
void Connections::Impl::feed_one(Conn& c) {
  while (c.fd >= 0 && !c.pending()) {
    std::string text = events(&c.after, rules::max_event_backlog);
    if (text.empty()) return;
    c.out = std::move(text);
    c.sent = 0;
    c.send_deadline = Clock::now() + std::chrono::seconds(rules::write_seconds);
    send_some(c);
  }
}

void Connections::Impl::accept_all() {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        if (!make_room()) accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
      }
      return;
    }
    if (conns.size() >= rules::max_connections && !make_room()) {
      const std::string busy = refusal(503, "Service Unavailable", say("busy", {{"max", std::to_string(rules::max_connections)}}));
      [[maybe_unused]] ssize_t n = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      continue;
    }
    const int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    names(fd, *c);
    c->request_deadline = Clock::now() + std::chrono::seconds(rules::request_seconds);
    conns.push_back(std::move(c));
  }
}

// Closes the connection that has waited longest for a request that has not come.
bool Connections::Impl::make_room() {
  Conn* oldest = nullptr;
  for (auto& c : conns)
    if (c->fd >= 0 && c->state == Conn::State::reading && !c->pending() && (!oldest || c->request_deadline < oldest->request_deadline))
      oldest = c.get();
  if (oldest) close(*oldest);
  return oldest != nullptr;
}

void Connections::Impl::expire(Clock::time_point now) {
  for (auto& c : conns) {
    if (c->fd < 0 || c->state == Conn::State::serving) continue;
    if (c->state == Conn::State::draining) {
      if (now >= c->drain_deadline) close(*c);
    } else if (c->pending()) {
      if (now >= c->send_deadline) close(*c);  // a client that does not take its answer
    } else if (c->state == Conn::State::events) {
      if (now - c->last_sent >= std::chrono::seconds(rules::event_heartbeat_seconds)) {
        c->out = ": still here\n\n";
        c->sent = 0;
        c->send_deadline = now + std::chrono::seconds(rules::write_seconds);
        send_some(*c);
      }
    } else if (now >= c->request_deadline) {
      use_language("");
      if (c->in.empty()) close(*c);  // idle between requests
      else refuse(*c, 408, "Request Timeout", say("too_slow", {{"seconds", std::to_string(rules::request_seconds)}}));
    }
  }
}

void Connections::Impl::handle(Conn& c, short revents) {
  if (revents & (POLLERR | POLLNVAL)) return close(c);
  if (revents & (POLLOUT | POLLHUP)) {
    send_some(c);  // after a hang-up the send fails and closes
    if (c.fd >= 0 && c.state == Conn::State::events && !c.pending()) feed_one(c);
  }
  if (c.fd < 0 || !(revents & (POLLIN | POLLHUP))) return;
  if (c.state == Conn::State::reading && c.pending()) return;  // the answer first
  const bool open = receive(c);
  if (c.state == Conn::State::reading) {
    if (!open) c.close_after = true;  // the client sent all it will: answer what is complete, then close
    parse(c);
    if (!open && c.state == Conn::State::reading && !c.pending() && c.fd >= 0) close(c);
  } else {
    c.in.clear();  // event streams and draining connections have nothing more to read
    if (!open) close(c);
  }
}

bool Connections::Impl::receive(Conn& c) {
  char buf[16384];
  while (c.in.size() <= rules::max_head + rules::max_body) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (c.state != Conn::State::reading) c.in.clear();
    } else if (n == 0) {
      return false;
    } else if (errno != EINTR) {
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
  return true;
}

void Connections::Impl::parse(Conn& c) {
  if (c.fd < 0 || c.state != Conn::State::reading || c.pending()) return;
  c.in.erase(0, std::min(c.in.find_first_not_of("\r\n"), c.in.size()));  // blank lines between requests
  const size_t end = head_end(c.in);
  const size_t max_head = rules::max_head;
  if (end == std::string::npos ? c.in.size() > max_head : end > max_head) {
    use_language("");
    return refuse(c, 431, "Request Header Fields Too Large", say("head_too_large", {{"max", std::to_string(max_head)}}));
  }
  if (end == std::string::npos) return;
  const Head h = read_head(std::string_view(c.in).substr(0, end));
  use_language(h.lang);
  if (h.malformed) return refuse(c, 400, "Bad Request", say("malformed"));
  if (h.encoded) return refuse(c, 411, "Length Required", say("length_required"));
  if (h.bad_length || h.lengths > 1) return refuse(c, 400, "Bad Request", say("bad_length"));
  if (h.length > rules::max_body)
    return refuse(c, 413, "Payload Too Large", say("body_too_large", {{"max", std::to_string(rules::max_body)}}));
  if (c.in.size() < end + h.length) {
    if (h.expect_continue && !c.continued) {
      c.continued = true;
      c.out = "HTTP/1.1 100 Continue\r\n\r\n";
      c.sent = 0;
      c.send_deadline = Clock::now() + std::chrono::seconds(rules::write_seconds);
      send_some(c);
    }
    return;
  }
  c.request = h.passed_on + c.in.substr(end, h.length);
  c.in.erase(0, end + h.length);
  c.continued = false;
  c.state = Conn::State::serving;
  {
    std::lock_guard<std::mutex> lock(m);
    ready.push_back(&c);
  }
  cv.notify_one();
}

void Connections::Impl::send_some(Conn& c) {
  while (c.pending()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      c.last_sent = Clock::now();
      c.send_deadline = c.last_sent + std::chrono::seconds(rules::write_seconds);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else if (n < 0 && errno != EINTR) {
      return close(c);
    }
  }
  c.out.clear();
  c.sent = 0;
  if (!c.request.empty()) {  // an answer: the next request's time starts now
    c.request.clear();
    c.request_deadline = Clock::now() + std::chrono::seconds(rules::request_seconds);
  }
  if (c.close_after && c.state != Conn::State::draining) {
    ::shutdown(c.fd, SHUT_WR);
    c.state = Conn::State::draining;
    c.drain_deadline = Clock::now() + kDrain;
    c.in.clear();
  } else if (c.state == Conn::State::reading) {
    parse(c);  // a request that came right behind the last one
  }
}

void Connections::Impl::refuse(Conn& c, int status, const char* reason, const std::string& message) {
  c.in.clear();
  c.out = refusal(status, reason, message);
  c.sent = 0;
  c.close_after = true;
  c.send_deadline = Clock::now() + std::chrono::seconds(rules::write_seconds);
  send_some(c);
}

void Connections::Impl::close(Conn& c) {
  if (c.fd < 0) return;
  ::close(c.fd);
  c.fd = -1;
  if (c.wants_events) --streams;
}

}  // namespace studio
