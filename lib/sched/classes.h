// The scheduler classes, named as diffusers names them; make_scheduler() is the way to build them.
#pragma once

#include <deque>

#include "sched/scheduler.h"

namespace bioesp::sched {

// PNDMScheduler with skip_prk_steps: linear multistep (PLMS), SD 1.x's default.
class PNDM : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_timesteps(int steps) override;

 protected:
  torch::Tensor step_float(const torch::Tensor& eps, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  torch::Tensor prev_sample(const torch::Tensor& sample, int64_t t, int64_t prev, const torch::Tensor& eps) const;
  std::deque<torch::Tensor> ets_;
  torch::Tensor cur_sample_;
  int counter_ = 0;
};

// DDIMScheduler (η = 0 unless set_eta) and DDPMScheduler's ancestral sampler (ddim.cpp).
class DDIM : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_eta(double eta) override;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  double eta_ = 0;
};

class DDPM : public Scheduler {
 public:
  using Scheduler::Scheduler;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

// Consistency samplers on LCM's timestep grid (lcm.cpp): LCMScheduler and TCDScheduler.
class ConsistencyScheduler : public Scheduler {
 public:
  using Scheduler::Scheduler;
  void set_timesteps(int steps) override;

 protected:
  // original_inference_steps·strength points of the distillation schedule, `steps` of them chosen.
  void set_grid(int steps, double strength);
  // The timestep after step index i (LCM: i's own at the last step; TCD: 0).
  int64_t next_timestep(int64_t i, int64_t at_end) const;
};

class LCM : public ConsistencyScheduler {
 public:
  using ConsistencyScheduler::ConsistencyScheduler;
  // LatentConsistencyModelImg2ImgPipeline: the grid is drawn from the first strength·T timesteps,
  // and every step of it runs.
  int64_t start_at_strength(double strength) override;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

class TCD : public ConsistencyScheduler {
 public:
  using ConsistencyScheduler::ConsistencyScheduler;
  void set_eta(double gamma) override;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  double gamma_ = 0.3;  // TCDScheduler.step's default
};

// Shared by the sigma-parameterised schedulers: σ per step (with a final σ), scaled inputs.
class SigmaScheduler : public Scheduler {
 public:
  explicit SigmaScheduler(SchedulerConfig c);
  torch::Tensor add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step) override;
  const std::vector<double>& sigmas() const { return sigmas_; }
  torch::Tensor predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const override;

 protected:
  // x0 predicted from the model output at step index i (σ-space).
  torch::Tensor predict_x0(const torch::Tensor& out, int64_t i, const torch::Tensor& sample) const;
  double final_sigma() const;
  // Karras' σ ramp over the config's range, or else [lo, hi].
  std::vector<double> karras(double lo, double hi, int steps) const;
  std::vector<double> sigmas_;  // float32 values, steps + 1
};

// EulerDiscreteScheduler and EulerAncestralDiscreteScheduler.
class Euler : public SigmaScheduler {
 public:
  Euler(SchedulerConfig c, bool ancestral) : SigmaScheduler(std::move(c)), ancestral_(ancestral) {}
  void set_timesteps(int steps) override;
  torch::Tensor scale_model_input(const torch::Tensor& sample, int64_t step) override;
  double init_noise_sigma() const override;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  bool ancestral_;
};

// Multistep solvers in λ = log(α/σ): DPMSolverMultistepScheduler (2M) and UniPCMultistepScheduler.
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
  // Training timesteps the schedule spans: all, less those DPM-Solver's lambda_min_clipped cuts.
  int last_timestep() const;
  std::deque<torch::Tensor> outputs_;  // converted model outputs (x0), newest last
  int lower_order_nums_ = 0;
};

class DPMSolver : public MultistepScheduler {
 public:
  using MultistepScheduler::MultistepScheduler;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;
};

class UniPC : public MultistepScheduler {
 public:
  using MultistepScheduler::MultistepScheduler;
  void set_timesteps(int steps) override;
  void set_begin_index(int64_t begin) override;

 protected:
  torch::Tensor step_float(const torch::Tensor& out, int64_t step, const torch::Tensor& sample, at::Generator* gen) override;

 private:
  torch::Tensor predictor(const torch::Tensor& sample, int64_t i, int order) const;
  torch::Tensor corrector(const torch::Tensor& model_t, const torch::Tensor& last, int64_t i, int order) const;
  torch::Tensor last_sample_;
  int this_order_ = 1;
};

}  // namespace bioesp::sched
