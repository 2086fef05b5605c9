// x0 predictions for live previews, apart from the stepping code: each parameterisation's clean
// sample from a model output, without touching a scheduler's state.
#include "sched/classes.h"

namespace bioesp::sched {

// Samples in the variance-preserving form x_t = sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·ε at the step's timestep.
torch::Tensor Scheduler::predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const {
  return predict(out, sample, alpha_cumprod(static_cast<int64_t>(timesteps_.at(step)))).x0;
}

// Samples in σ-space (x = x0 + σ·ε), as the Euler schedulers keep them.
torch::Tensor SigmaScheduler::predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const {
  return predict_x0(out, step, sample);
}

torch::Tensor MultistepScheduler::predict_original(const torch::Tensor& out, int64_t step, const torch::Tensor& sample) const {
  return convert(out, step, sample);
}

}  // namespace bioesp::sched
