// Data-parallel training across processes on PyTorch's own distributed engine, c10d: the ranks
// meet through a TCPStore that rank 0 hosts (torchrun's env:// rendezvous) and communicate
// through a process group — Gloo, or NCCL for CUDA where the build has it. A rank that dies,
// freezes or fails makes the others stop with an error that names it.
#pragma once

#include <torch/torch.h>

#include "train/distributed_options.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bioesp::train {

// The backends this build has: "gloo", "gloo, nccl", or "" when it cannot train across processes.
std::string distributed_backends();

// This process's membership of a run of world_size > 1 processes.
class Group {
 public:
  // Joins a run of o.world_size > 1 processes: every rank must arrive within the timeout, each
  // rank once. A world of one joins nothing, and every call below answers for it alone.
  Group(const DistributedOptions& o, const torch::Device& device);
  // Rank 0 lets its rendezvous go only once the others have left it.
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int size() const;
  // Refuses to go on unless every rank has the same `settings` (lines of text), naming the first
  // line that differs.
  void agree(const std::string& settings);
  // The mean over the ranks.
  double average(double value);
  // Whether any rank says yes.
  bool any(bool value);
  // Every rank's tensor (equal shapes), in rank order.
  std::vector<torch::Tensor> gather(const torch::Tensor& t);
  // Rank 0's values of these tensors, in place on every rank.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Rank 0 runs `work` (a checkpoint, a validation picture) while the others wait for it without
  // a deadline, as long as it is alive.
  void rank0_alone(const std::function<void()>& work);
  // Tells the others why this rank stops (best effort), before its error goes up.
  void announce_failure(const std::string& why);

 private:
  friend class GradientAverage;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Averages the gradients of the trained tensors across the ranks, as DDP does: in buckets (the
// first of 1 MiB so communication starts early, then 25 MiB) in the tensors' dtype, each bucket
// all-reduced as soon as the backward pass has produced all of its gradients, while the rest of
// the backward pass runs; buckets go in the same order on every rank.
class GradientAverage {
 public:
  GradientAverage(Group& group, const std::vector<torch::Tensor>& params);
  ~GradientAverage();
  GradientAverage(const GradientAverage&) = delete;
  GradientAverage& operator=(const GradientAverage&) = delete;
  // The next backward pass averages (the optimizer step's last micro-batch; the earlier ones only
  // accumulate, as DDP's no_sync).
  void arm();
  // After that backward pass: waits for every bucket and leaves the averages in .grad (a tensor no
  // rank computed a gradient for keeps none). Returns the seconds spent waiting.
  double finish();
  // Whether there is anything to average (more than one process).
  bool active() const { return impl_ != nullptr; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bioesp::train
