// Intra-op threads: how many cores this process may use, and a process-wide budget that splits
// them between the jobs running at once (LibTorch's count is per calling thread under OpenMP, so
// two generations on two threads that each took every core would oversubscribe the machine).
#pragma once

#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace bioesp::threads {

// What the system says about the CPUs this process may run on.
struct CpuFacts {
  std::vector<int> allowed;               // logical CPUs in the affinity mask
  std::map<int, std::string> core_of;     // logical CPU → its core (sysfs thread_siblings_list)
  double quota = 0;                       // CPUs the cgroup's cpu.max allows (quota / period); 0: no limit
  int logical = 0;                        // std::thread::hardware_concurrency, where no mask could be read
};

// A cgroup v2 cpu.max file ("QUOTA PERIOD" or "max PERIOD") as CPUs; 0 for no limit.
double cpu_max_cpus(const std::string& text);

// Physical cores among the allowed CPUs (two hyperthreads of one core count once; a CPU whose
// core is unknown counts alone), capped by the quota rounded up; at least 1.
int physical_cores(const CpuFacts& facts);

// The facts as sched_getaffinity, /sys/devices/system/cpu and the cgroup v2 hierarchy give them.
CpuFacts read_cpu_facts();

// The cores jobs share: OMP_NUM_THREADS when set (the user's word, as LibTorch reads it), else
// physical_cores(read_cpu_facts()) (read once).
int usable_cores();

// Splits `cores` between claims: a claim that asks for n threads gets n; the others share what is
// left, in the order they joined, at least one each. A claim changes its count only when its own
// thread asks (grant), so a newcomer takes only the cores free at that moment (at least one) and
// the others give theirs back at their next grant: the total stays within the cores, or the
// number of jobs where there are more jobs than cores, except while a job that joined beside
// others holding every core waits for their next grant (one denoising step at most).
class Budget {
 public:
  struct Claim {
    int asked = 0;  // 0: a share
    int held = 0;   // the count its thread runs with now
  };
  using Ticket = std::list<Claim>::iterator;

  Ticket join(int asked);
  void leave(Ticket t);
  // The count the claim's thread should run with from now on (and records it as held).
  int grant(Ticket t, int cores);
  // The sum of the counts held now.
  int held() const;

 private:
  mutable std::mutex m_;
  std::list<Claim> claims_;
};

// A job's share of the process-wide budget for as long as it lives, on the thread that made it:
// joins and sets this thread's intra-op count; apply() at each step follows the other jobs
// coming and going; the thread's earlier count comes back at the end.
class Share {
 public:
  explicit Share(int threads);  // threads > 0: exactly that many; 0: a share of usable_cores()
  ~Share();
  Share(const Share&) = delete;
  Share& operator=(const Share&) = delete;
  void apply();

 private:
  Budget::Ticket ticket_;
  int before_;
};

}  // namespace bioesp::threads
