// The CPU memory cache (lib/runtime/cpu_memory): blocks reused inside a scope, returned after it,
// LibTorch's own allocator outside it.
#include <torch/torch.h>

#include "runtime/blas.h"
#include "runtime/cpu_memory.h"

#include <dlfcn.h>
extern "C" {
#include "support/testutil.h"
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp;

static void test_reuses_blocks_inside_a_scope(void** state) {
  (void)state;
  const auto before = runtime::cpu_memory_stats();
  {
    runtime::CpuMemoryScope scope;
    const void* first = nullptr;
    {
      auto t = torch::ones({3, 1024, 1024});  // 12 MiB: a huge-page sized block
      first = t.data_ptr();
      assert_true(runtime::cpu_memory_stats().mapped_bytes >= before.mapped_bytes + t.nbytes());
    }
    assert_true(runtime::cpu_memory_stats().cached_bytes >= size_t{12} << 20);
    auto again = torch::empty({3, 1024, 1024});
    assert_ptr_equal(again.data_ptr(), first);  // the same block, no fresh pages
    auto smaller = torch::zeros({1024, 1024});  // 4 MiB: too small for a 12 MiB block
    assert_ptr_not_equal(smaller.data_ptr(), first);
    const auto inside = runtime::cpu_memory_stats();
    assert_true(inside.hits > before.hits);
    assert_true(inside.misses >= before.misses + 2);
  }
  const auto after = runtime::cpu_memory_stats();
  assert_int_equal(after.cached_bytes, 0);
  assert_int_equal(after.mapped_bytes, before.mapped_bytes);  // everything went back
}

static void test_small_blocks_and_no_scope_are_libtorchs(void** state) {
  (void)state;
  const auto before = runtime::cpu_memory_stats();
  { auto big = torch::ones({4, 1024, 1024}); }  // no scope: not cached
  {
    runtime::CpuMemoryScope scope;
    auto small = torch::ones({128, 1024});  // 512 KiB
    assert_true(small.sum().item<float>() == 128 * 1024);
  }
  const auto after = runtime::cpu_memory_stats();
  assert_int_equal(after.misses, before.misses);
  assert_int_equal(after.mapped_bytes, before.mapped_bytes);
}

static void test_mapped_memory_stays_near_the_peak_in_use(void** state) {
  (void)state;
  runtime::CpuMemoryScope scope;
  { auto a = torch::empty({8, 1024, 1024}); }  // 32 MiB cached
  const size_t cached = runtime::cpu_memory_stats().cached_bytes;
  assert_true(cached >= size_t{32} << 20);
  auto b = torch::empty({5, 1024, 1024});  // 20 MiB: would waste too much of the 32 MiB block
  // Mapping 20 MiB beside the free 32 MiB would exceed the peak in use (32 MiB) by more than an
  // eighth: the free block went back to the system first.
  const auto now = runtime::cpu_memory_stats();
  assert_true(now.cached_bytes < cached);
  assert_true(now.mapped_bytes <= (size_t{36} << 20));
}

static void test_tensors_outlive_the_scope(void** state) {
  (void)state;
  torch::Tensor kept;
  {
    runtime::CpuMemoryScope scope;
    kept = torch::full({4, 1024, 1024}, 2.0f);
  }
  assert_true(kept.eq(2).all().item<bool>());
  const size_t mapped = runtime::cpu_memory_stats().mapped_bytes;
  kept = torch::Tensor();  // freed after the scope: unmapped at once
  assert_true(runtime::cpu_memory_stats().mapped_bytes < mapped);
  assert_int_equal(runtime::cpu_memory_stats().cached_bytes, 0);
}

// A pthreads OpenBLAS ends with one thread of its own; an OpenMP one follows LibTorch's threads.
static void test_blas_keeps_no_pool_of_its_own(void** state) {
  (void)state;
  runtime::settle_blas_threads();
  const int parallel = runtime::blas_parallelism();
  print_message("openblas_get_parallel: %d\n", parallel);
  auto threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (parallel == 1) {
    assert_non_null(threads);
    assert_int_equal(threads(), 1);
  }
  // The products still run and agree with a plain sum.
  auto a = torch::rand({256, 256}), b = torch::rand({256, 256});
  assert_true(torch::allclose(torch::mm(a, b), (a.unsqueeze(2) * b.unsqueeze(0)).sum(1), 1e-4, 1e-4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reuses_blocks_inside_a_scope),
      cmocka_unit_test(test_small_blocks_and_no_scope_are_libtorchs),
      cmocka_unit_test(test_mapped_memory_stays_near_the_peak_in_use),
      cmocka_unit_test(test_tensors_outlive_the_scope),
      cmocka_unit_test(test_blas_keeps_no_pool_of_its_own),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
