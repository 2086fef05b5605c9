// The scheduler classes; make_scheduler() is the way to build them.
#pragma once

#include <deque>

#include "sched/scheduler.h"

namespace bioesp::sched {

// PNDM with skip_prk_steps: linear multistep (PLMS), SD 1.x's default.
class PNDM : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_timesteps(int steps) override;
  torch::Tensor step(const torch::Tensor& eps, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  torch::Tensor prev_sample(const torch::Tensor& sample, int64_t t, int64_t prev, const torch::Tensor& eps) const;
  std::deque<torch::Tensor> ets_;
  torch::Tensor cur_sample_;
  int counter_ = 0;
};

// DDIM (eta 0), and DDPM's ancestral sampler.
class DDIM : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_timesteps(int steps) override;
  torch::Tensor step(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

class DDPM : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_timesteps(int steps) override;
  torch::Tensor step(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

// Shared by the sigma-parameterised schedulers: σ per step (with a final σ), scaled inputs.
class SigmaScheduler : public Scheduler {
 public:
  using Scheduler::Scheduler;
  torch::Tensor add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step) override;
  const std::vector<double>& sigmas() const { return sigmas_; }
  torch::Tensor predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const override;

 protected:
  // x0 predicted from the model output at step index i (σ-space).
  torch::Tensor predict_x0(const torch::Tensor& out, int64_t i, const torch::Tensor& sample) const;
  double final_sigma() const;
  std::vector<double> sigmas_;  // float32 values, steps + 1
};

class Euler : public SigmaScheduler {
 public:
  Euler(SchedulerConfig c, bool ancestral) : SigmaScheduler(std::move(c)), ancestral_(ancestral) {}
  void set_timesteps(int steps) override;
  torch::Tensor scale_model_input(const torch::Tensor& sample, int64_t step) override;
  torch::Tensor step(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
  double init_noise_sigma() const override;

 private:
  bool ancestral_;
};

// Multistep solvers in λ = log(α/σ): DPM-Solver++ (2M) and UniPC (bh2).
class MultistepScheduler : public SigmaScheduler {
 public:
  using SigmaScheduler::SigmaScheduler;
  void set_timesteps(int steps) override;
  void set_begin_index(int64_t begin) override;
  torch::Tensor add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step) override;
  torch::Tensor predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const override;

 protected:
  struct AlphaSigma {
    double alpha, sigma, lambda;
  };
  AlphaSigma at(int64_t i) const;
  // x0 from the model output in the variance-preserving parameterisation (unscaled samples).
  torch::Tensor convert(const torch::Tensor& out, int64_t i, const torch::Tensor& sample) const;
  std::deque<torch::Tensor> outputs_;  // converted model outputs (x0), newest last
  int lower_order_nums_ = 0;
};

class DPMSolver : public MultistepScheduler {
 public:
  using MultistepScheduler::MultistepScheduler;
  torch::Tensor step(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

class UniPC : public MultistepScheduler {
 public:
  using MultistepScheduler::MultistepScheduler;
  void set_timesteps(int steps) override;
  void set_begin_index(int64_t begin) override;
  torch::Tensor step(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  torch::Tensor predictor(const torch::Tensor& sample, int64_t i, int order) const;
  torch::Tensor corrector(const torch::Tensor& model_t, const torch::Tensor& last, int64_t i, int order) const;
  torch::Tensor last_sample_;
  int this_order_ = 1;
};

}  // namespace bioesp::sched
