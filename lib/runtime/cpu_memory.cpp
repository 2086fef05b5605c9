#include "runtime/cpu_memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>
#include <torch/version.h>

#include <atomic>
#include <cstdint>
#include <algorithm>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace bioesp::runtime {

namespace {

constexpr size_t kMinCached = size_t{1} << 20;  // smaller blocks stay with glibc, which reuses them
constexpr size_t kHuge = size_t{2} << 20;       // a transparent huge page
constexpr size_t kPage = 4096;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
size_t mapped_size(size_t n) { return n >= 2 * kHuge ? round_up(n, kHuge) : round_up(n, kPage); }

// One process-wide cache: LibTorch has one CPU allocator.
struct Cache {
  std::mutex mutex;
  std::atomic<int> scopes{0};  // changed under the mutex, read without it
  std::unordered_map<void*, size_t> live;  // pointer → mapped size, in use
  std::multimap<size_t, void*> free;      // mapped size → pointer, kept for reuse
  CpuMemoryStats stats;
  size_t peak_live = 0;  // the most bytes in use at once since the outermost scope began
  c10::Allocator* fallback = nullptr;     // LibTorch's own, for small blocks
};
Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

void* map_pages(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

// Huge-page sized blocks start on a huge-page boundary, or the kernel backs them with small pages.
void* map_block(size_t size) {
  if (size % kHuge != 0) return map_pages(size);
  auto* raw = static_cast<char*>(map_pages(size + kHuge));
  auto* p = reinterpret_cast<char*>(round_up(reinterpret_cast<uintptr_t>(raw), kHuge));
  if (p > raw) munmap(raw, p - raw);
  if (p + size < raw + size + kHuge) munmap(p + size, raw + size + kHuge - (p + size));
  madvise(p, size, MADV_HUGEPAGE);  // advice only: failure is harmless
  return p;
}

// Unmaps free blocks, largest first, until `want` bytes went back or none are left.
void release_locked(Cache& c, size_t want) {
  size_t released = 0;
  while (released < want && !c.free.empty()) {
    auto it = std::prev(c.free.end());
    munmap(it->second, it->first);
    released += it->first;
    c.stats.cached_bytes -= it->first;
    c.stats.mapped_bytes -= it->first;
    c.free.erase(it);
  }
}

void release_block(void* p) {
  Cache& c = cache();
  std::unique_lock<std::mutex> lock(c.mutex);
  auto it = c.live.find(p);
  if (it == c.live.end()) {  // not ours: a small block of the fallback allocator
    lock.unlock();
    c.fallback->raw_deleter()(p);
    return;
  }
  const size_t size = it->second;
  c.live.erase(it);
  if (c.scopes > 0) {
    c.free.emplace(size, p);
    c.stats.cached_bytes += size;
  } else {
    c.stats.mapped_bytes -= size;
    munmap(p, size);
  }
}

class CachingAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return take(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release_block; }

 private:
  static c10::DataPtr take(size_t n) {
    Cache& c = cache();
    // Small blocks, and all of them outside a generation or training run (the model's weights),
    // are LibTorch's own; release_block hands back what it does not know.
    if (n < kMinCached || c.scopes.load() == 0) return c.fallback->allocate(n);
    const size_t size = mapped_size(n);
    std::lock_guard<std::mutex> lock(c.mutex);
    // The smallest free block that fits without wasting more than an eighth of itself.
    auto it = c.free.lower_bound(size);
    if (it != c.free.end() && it->first - size <= it->first / 8) {
      void* p = it->second;
      c.live.emplace(p, it->first);
      c.stats.cached_bytes -= it->first;
      c.free.erase(it);
      ++c.stats.hits;
      return {p, p, &release_block, c10::Device(c10::kCPU)};
    }
    // A miss. What is mapped stays within an eighth above the most ever in use at once, so that
    // blocks of sizes no longer asked for (the prompt's, the first step's) do not pile up: at
    // 512 px a quarter kept 0.2 GB more resident for no fewer misses.
    const size_t live = c.stats.mapped_bytes - c.stats.cached_bytes + size;
    c.peak_live = std::max(c.peak_live, live);
    const size_t limit = c.peak_live + c.peak_live / 8;
    if (c.stats.mapped_bytes + size > limit) release_locked(c, c.stats.mapped_bytes + size - limit);
    void* p = map_block(size);
    c.live.emplace(p, size);
    c.stats.mapped_bytes += size;
    ++c.stats.misses;
    return {p, p, &release_block, c10::Device(c10::kCPU)};
  }
};

void install() {
  static std::once_flag once;
  std::call_once(once, [] {
    cache().fallback = c10::GetDefaultCPUAllocator();
    static CachingAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
  });
}

}  // namespace

CpuMemoryScope::CpuMemoryScope() {
  install();
  std::lock_guard<std::mutex> lock(cache().mutex);
  ++cache().scopes;
}

CpuMemoryScope::~CpuMemoryScope() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (--c.scopes == 0) {
    release_locked(c, c.stats.cached_bytes);
    c.peak_live = 0;
  }
}

CpuMemoryStats cpu_memory_stats() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().stats;
}

}  // namespace bioesp::runtime
