// What a run across processes is told: its place among them and where they meet (train/
// distributed.h runs it). No LibTorch here: the options table checks its choices too.
#pragma once

#include <string>
#include <vector>

namespace bioesp::train {

struct DistributedOptions {
  int world_size = 1;     // processes in the run; 1: this one alone
  int rank = 0;           // this one's place, 0 to world_size − 1; rank 0 writes everything
  int local_rank = 0;     // its place on this machine: with CUDA, the GPU it takes
  std::string master_addr = "127.0.0.1";  // where rank 0 hosts the rendezvous
  int master_port = 29500;
  std::string backend = "auto";  // gloo, nccl, or auto: nccl for CUDA where built, else gloo
  double timeout = 1800;  // seconds, as torch.distributed's default: to join, and per collective
};

// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) over `o`; one
// that is set but not a number in range is an error naming it.
DistributedOptions from_environment(DistributedOptions o);

// Refuses impossible settings by name (a rank outside the world, a port outside 1–65535, an
// unknown backend, a timeout that is not a positive number of seconds).
void validate(const DistributedOptions& o);

// The backend names: auto (nccl for CUDA where built, else gloo), gloo, nccl.
const std::vector<std::string>& backend_names();

}  // namespace bioesp::train
