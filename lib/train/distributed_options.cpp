#include "train/distributed_options.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "core/error.h"

namespace bioesp::train {

namespace {

// An environment variable as a whole number in [lo, hi]; `fallback` when unset.
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  errno = 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || errno || n < lo || n > hi)
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(name) + "=" + v + " is not a whole number from " + std::to_string(lo) +
                                          " to " + std::to_string(hi));
  return static_cast<int>(n);
}

}  // namespace

DistributedOptions from_environment(DistributedOptions o) {
  o.world_size = env_int("WORLD_SIZE", o.world_size, 1, 1 << 16);
  o.rank = env_int("RANK", o.rank, 0, o.world_size - 1);
  const int local_size = env_int("LOCAL_WORLD_SIZE", o.world_size, 1, o.world_size);
  o.local_rank = env_int("LOCAL_RANK", o.local_rank, 0, local_size - 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  o.master_port = env_int("MASTER_PORT", o.master_port, 1, 65535);
  return o;
}

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names{"auto", "gloo", "nccl"};
  return names;
}

void validate(const DistributedOptions& o) {
  auto bad = [](const std::string& m) { fail(BIOESP_ERR_INVALID_ARGUMENT, m); };
  if (o.world_size < 1) bad("the world size must be at least 1");
  if (o.rank < 0 || o.rank >= o.world_size)
    bad("rank " + std::to_string(o.rank) + " is not one of 0 to " + std::to_string(o.world_size - 1));
  if (o.local_rank < 0) bad("the local rank must be at least 0");
  if (o.master_port < 1 || o.master_port > 65535) bad("master port " + std::to_string(o.master_port) + " is not one of 1 to 65535");
  if (o.master_addr.empty()) bad("no master address given");
  const auto& names = backend_names();
  if (std::find(names.begin(), names.end(), o.backend) == names.end())
    bad("backend '" + o.backend + "' is not gloo, nccl or auto");
  if (!(o.timeout > 0) || o.timeout > 1e7) bad("the timeout must be a positive number of seconds");
}

}  // namespace bioesp::train
