// lib/core/threads: the core count from fake topologies (hyperthreads, affinity masks, cgroup
// quotas) and the budget that splits the cores between jobs running at once.
#include "core/threads.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp::threads;

namespace {

// `n` logical CPUs, `per_core` hyperthreads to a core (Linux numbers siblings 0,4 / 1,5 … on
// many machines: CPU c is on core c % (n / per_core)).
CpuFacts machine(int n, int per_core) {
  CpuFacts f;
  const int cores = n / per_core;
  for (int c = 0; c < n; ++c) {
    f.allowed.push_back(c);
    std::string siblings;
    for (int s = c % cores; s < n; s += cores) siblings += (siblings.empty() ? "" : ",") + std::to_string(s);
    f.core_of[c] = siblings;
  }
  f.logical = n;
  return f;
}

void test_physical_cores(void** state) {
  (void)state;
  assert_int_equal(physical_cores(machine(2, 1)), 2);  // two real cores
  assert_int_equal(physical_cores(machine(2, 2)), 1);  // two hyperthreads of one core
  assert_int_equal(physical_cores(machine(16, 2)), 8);
  CpuFacts masked = machine(16, 2);
  masked.allowed = {0, 8, 1};  // taskset: both threads of core 0, one of core 1
  assert_int_equal(physical_cores(masked), 2);
  CpuFacts unknown = machine(4, 1);
  unknown.core_of.clear();  // no sysfs: each allowed CPU counts alone
  assert_int_equal(physical_cores(unknown), 4);
  CpuFacts nothing;  // no mask either: the logical count
  nothing.logical = 3;
  assert_int_equal(physical_cores(nothing), 3);
  nothing.logical = 0;
  assert_int_equal(physical_cores(nothing), 1);
}

void test_quota(void** state) {
  (void)state;
  assert_true(cpu_max_cpus("max 100000") == 0);
  assert_true(cpu_max_cpus("150000 100000") == 1.5);
  assert_true(cpu_max_cpus("") == 0);
  assert_true(cpu_max_cpus("junk 100000") == 0);
  assert_true(cpu_max_cpus("100000 0") == 0);
  CpuFacts f = machine(16, 2);
  f.quota = 1.5;  // a quota of 1.5 CPUs: 2 threads use it, 1 would leave half idle
  assert_int_equal(physical_cores(f), 2);
  f.quota = 4;
  assert_int_equal(physical_cores(f), 4);
  f.quota = 0.2;
  assert_int_equal(physical_cores(f), 1);
  f.quota = 64;  // a quota above the cores does not add any
  assert_int_equal(physical_cores(f), 8);
}

void test_real_machine(void** state) {
  (void)state;
  const CpuFacts f = read_cpu_facts();
  assert_true(!f.allowed.empty());
  const int n = physical_cores(f);
  assert_true(n >= 1 && n <= static_cast<int>(f.allowed.size()));
}

void test_budget_shares(void** state) {
  (void)state;
  Budget b;
  auto a = b.join(0);
  assert_int_equal(b.grant(a, 4), 4);  // alone: every core
  auto c = b.join(0);
  assert_int_equal(b.grant(c, 4), 1);  // a holds 4: only one while a still runs with them
  assert_int_equal(b.grant(a, 4), 2);  // a's next step gives back its half
  assert_int_equal(b.grant(c, 4), 2);
  assert_int_equal(b.held(), 4);
  auto d = b.join(0);  // 4 cores, 3 jobs: 2, 1, 1 in the order they came
  assert_int_equal(b.grant(d, 4), 1);
  assert_int_equal(b.held(), 5);  // until c's next step
  assert_int_equal(b.grant(c, 4), 1);
  assert_int_equal(b.grant(a, 4), 2);
  assert_int_equal(b.held(), 4);
  b.leave(a);
  assert_int_equal(b.grant(c, 4), 2);  // c is first now: 2 and 2
  assert_int_equal(b.grant(d, 4), 2);
  assert_int_equal(b.held(), 4);
  b.leave(c);
  b.leave(d);
  assert_int_equal(b.held(), 0);
}

void test_budget_asked(void** state) {
  (void)state;
  Budget b;
  auto fixed = b.join(3);
  assert_int_equal(b.grant(fixed, 2), 3);  // asked for: honoured as given, even past the cores
  auto share = b.join(0);
  assert_int_equal(b.grant(share, 2), 1);  // nothing left: one
  b.leave(fixed);
  assert_int_equal(b.grant(share, 2), 2);
  auto one = b.join(1);
  assert_int_equal(b.grant(one, 2), 1);
  assert_int_equal(b.grant(share, 2), 1);
  assert_int_equal(b.held(), 2);
  // More jobs than cores: one each.
  auto extra = b.join(0);
  assert_int_equal(b.grant(extra, 2), 1);
  assert_int_equal(b.grant(share, 2), 1);
  assert_int_equal(b.held(), 3);
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_physical_cores), cmocka_unit_test(test_quota),
                                     cmocka_unit_test(test_real_machine), cmocka_unit_test(test_budget_shares),
                                     cmocka_unit_test(test_budget_asked)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
