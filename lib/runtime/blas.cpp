#include "runtime/blas.h"

#include <dlfcn.h>

#include <mutex>

namespace bioesp::runtime {

int blas_parallelism() {
  // Looked up at run time: the library links LibTorch, which links whichever BLAS the system has.
  auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  return get ? get() : -1;
}

void settle_blas_threads() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (blas_parallelism() != 1) return;
    if (auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  });
}

}  // namespace bioesp::runtime
