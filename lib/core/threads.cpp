#include "core/threads.h"

#include "runtime/blas.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace bioesp::threads {

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::vector<int> affinity() {
  for (int n = 1024; n <= 1 << 20; n *= 4) {
    cpu_set_t* set = CPU_ALLOC(n);
    const size_t size = CPU_ALLOC_SIZE(n);
    std::vector<int> cpus;
    const bool ok = sched_getaffinity(0, size, set) == 0;
    if (ok)
      for (int c = 0; c < n; ++c)
        if (CPU_ISSET_S(c, size, set)) cpus.push_back(c);
    CPU_FREE(set);
    if (ok) return cpus;
    if (errno != EINVAL) break;  // EINVAL: the kernel's mask is larger than this one
  }
  return {};
}

// The tightest cpu.max from the process's cgroup up to the root (v2: "0::/path" in /proc/self/cgroup).
double cgroup_quota() {
  std::ifstream in("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return 0;
  double quota = 0;
  for (;;) {
    const double q = cpu_max_cpus(first_line("/sys/fs/cgroup" + path + "/cpu.max"));
    if (q > 0 && (quota == 0 || q < quota)) quota = q;
    if (path.empty() || path == "/") break;
    path = path.substr(0, path.find_last_of('/'));
  }
  return quota;
}

// OMP_NUM_THREADS's first level ("4" or "4,2"); 0 when unset or not a positive number.
int omp_num_threads() {
  const char* v = std::getenv("OMP_NUM_THREADS");
  if (!v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end != v && (*end == '\0' || *end == ',') && n > 0 && n < 1 << 16 ? static_cast<int>(n) : 0;
}

// The process-wide budget the jobs share.
Budget& budget() {
  static Budget b;
  return b;
}

}  // namespace

double cpu_max_cpus(const std::string& text) {
  std::istringstream in(text);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  return *end == '\0' && q > 0 ? q / period : 0;
}

int physical_cores(const CpuFacts& facts) {
  std::set<std::string> cores;
  for (int cpu : facts.allowed) {
    auto it = facts.core_of.find(cpu);
    cores.insert(it != facts.core_of.end() && !it->second.empty() ? it->second : "cpu" + std::to_string(cpu));
  }
  int n = cores.empty() ? facts.logical : static_cast<int>(cores.size());
  if (facts.quota > 0) n = std::min(n, static_cast<int>(std::ceil(facts.quota - 1e-9)));
  return std::max(1, n);
}

CpuFacts read_cpu_facts() {
  CpuFacts f;
  f.allowed = affinity();
  for (int cpu : f.allowed)
    f.core_of[cpu] = first_line("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
  f.quota = cgroup_quota();
  f.logical = static_cast<int>(std::thread::hardware_concurrency());
  return f;
}

int usable_cores() {
  static const int machine = physical_cores(read_cpu_facts());
  const int env = omp_num_threads();
  return env > 0 ? env : machine;
}

Budget::Ticket Budget::join(int asked) {
  std::lock_guard<std::mutex> lock(m_);
  return claims_.insert(claims_.end(), Claim{asked, 0});
}

void Budget::leave(Ticket t) {
  std::lock_guard<std::mutex> lock(m_);
  claims_.erase(t);
}

int Budget::grant(Ticket t, int cores) {
  std::lock_guard<std::mutex> lock(m_);
  if (t->asked > 0) return t->held = t->asked;
  int fixed = 0, shares = 0, index = -1, others = 0;
  for (auto c = claims_.begin(); c != claims_.end(); ++c) {
    if (c->asked > 0) fixed += c->asked;
    else if (c == t) index = shares++;
    else ++shares;
    if (c != t) others += c->held;
  }
  const int left = cores - fixed;
  const int fair = left <= 0 ? 1 : std::max(1, left / shares + (index < left % shares ? 1 : 0));
  return t->held = std::max(1, std::min(fair, cores - others));
}

int Budget::held() const {
  std::lock_guard<std::mutex> lock(m_);
  int n = 0;
  for (const auto& c : claims_) n += c.held;
  return n;
}

Share::Share(int threads) : ticket_(budget().join(threads)), before_(at::get_num_threads()) {
  runtime::settle_blas_threads();  // a pthreads OpenBLAS would spin beside these threads
  apply();
}

Share::~Share() {
  budget().leave(ticket_);
  if (at::get_num_threads() != before_) at::set_num_threads(before_);
}

void Share::apply() {
  // get_num_threads first: a thread's first call reads LibTorch's process-wide default over
  // whatever was set on it before.
  const int n = budget().grant(ticket_, usable_cores());
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace bioesp::threads
