// Large CPU tensors kept for reuse during a generation or a training run.
//
// glibc hands every block above its mmap threshold (at most 32 MiB) back to the kernel when it is
// freed, so each UNet step faults in gigabytes of fresh zeroed pages again: on a 2-core host a
// third of a full-size step went to page faults. While a CpuMemoryScope lives, blocks of 1 MiB or
// more come from this cache: freed, they stay mapped and serve the next request of about their
// size, and the last scope to end unmaps them. Blocks of 4 MiB or more are asked for as
// transparent huge pages. Outside scopes (loading weights) LibTorch's own allocator serves.
#pragma once

#include <cstddef>

namespace bioesp::runtime {

class CpuMemoryScope {
 public:
  CpuMemoryScope();
  ~CpuMemoryScope();
  CpuMemoryScope(const CpuMemoryScope&) = delete;
  CpuMemoryScope& operator=(const CpuMemoryScope&) = delete;
};

// What the cache holds now: blocks mapped and free for reuse (for tests and bench).
struct CpuMemoryStats {
  size_t cached_bytes = 0;  // free, still mapped
  size_t mapped_bytes = 0;  // in use or cached
  size_t hits = 0, misses = 0;
};
CpuMemoryStats cpu_memory_stats();

}  // namespace bioesp::runtime
