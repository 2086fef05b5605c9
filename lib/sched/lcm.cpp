// Consistency samplers: LCMScheduler (Luo et al. 2023) and TCDScheduler (Zheng et al. 2024), on
// the timestep grid of LCM's distillation schedule.
#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

void ConsistencyScheduler::set_timesteps(int steps) {
  check_steps(steps);
  set_grid(steps, 1.0);
}

void ConsistencyScheduler::set_grid(int steps, double strength) {
  const int n = c_.num_train_timesteps, original = c_.original_inference_steps;
  // The distillation schedule: every k-th training timestep, or (TCD without
  // original_inference_steps) all of them; strength keeps its first part.
  std::vector<int64_t> origin;
  if (original > 0) {
    if (original > n)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "original_inference_steps (" + std::to_string(original) +
                                            ") exceeds the training timesteps (" + std::to_string(n) + ")");
    if (steps > original)
      fail(BIOESP_ERR_INVALID_ARGUMENT, std::to_string(steps) + " steps exceed original_inference_steps (" +
                                            std::to_string(original) + "), the schedule they are chosen from");
    const int k = n / original;
    for (int64_t i = static_cast<int64_t>(original * strength); i >= 1; --i) origin.push_back(i * k - 1);
  } else {
    for (int64_t i = static_cast<int64_t>(n * strength) - 1; i >= 0; --i) origin.push_back(i);
  }
  if (static_cast<int>(origin.size()) < steps)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "strength leaves " + std::to_string(origin.size()) + " timesteps of the schedule for " +
                                          std::to_string(steps) + " steps: raise the strength or lower the steps");
  steps_ = steps;
  timesteps_.clear();
  for (double index : linspace(0, static_cast<double>(origin.size()), steps, false))
    timesteps_.push_back(static_cast<double>(origin[static_cast<size_t>(std::floor(index))]));
}

int64_t ConsistencyScheduler::next_timestep(int64_t i, int64_t at_end) const {
  return i + 1 < static_cast<int64_t>(timesteps_.size()) ? static_cast<int64_t>(timesteps_[i + 1]) : at_end;
}

int64_t LCM::start_at_strength(double strength) {
  set_grid(steps_, strength);
  return 0;
}

torch::Tensor LCM::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  const int64_t t = static_cast<int64_t>(timesteps_.at(i)), prev = next_timestep(i, t);
  const double a = alpha_cumprod(t), a_prev = prev >= 0 ? alpha_cumprod(prev) : final_alpha_cumprod();
  // The consistency boundary conditions (σ_data = 0.5), in float32 as diffusers has them.
  const float scaled = static_cast<float>(t) * static_cast<float>(c_.timestep_scaling);
  const float c_skip = 0.25f / (scaled * scaled + 0.25f), c_out = scaled / std::sqrt(scaled * scaled + 0.25f);
  auto denoised = c_out * clipped(predict(out, sample, a).x0) + c_skip * sample;
  // Fresh noise between steps, none after the last (nor in one-step sampling).
  if (i == static_cast<int64_t>(timesteps_.size()) - 1) return denoised;
  return std::sqrt(a_prev) * denoised + std::sqrt(1 - a_prev) * noise_like(out, gen);
}

void TCD::set_eta(double gamma) {
  if (!(gamma >= 0 && gamma <= 1)) fail(BIOESP_ERR_INVALID_ARGUMENT, "eta (TCD's gamma) must be between 0 and 1");
  gamma_ = gamma;
}

torch::Tensor TCD::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  const int64_t t = static_cast<int64_t>(timesteps_.at(i)), prev = next_timestep(i, 0);
  // The intermediate timestep s = ⌊(1 - γ)·prev⌋, computed in float32 as diffusers does.
  const int64_t s = static_cast<int64_t>(std::floor(static_cast<float>(1 - gamma_) * static_cast<float>(prev)));
  const double a = alpha_cumprod(t), a_prev = prev >= 0 ? alpha_cumprod(prev) : final_alpha_cumprod(), a_s = alpha_cumprod(s);
  const auto p = predict(out, sample, a);
  auto noised = std::sqrt(a_s) * p.x0 + std::sqrt(1 - a_s) * p.eps;
  if (gamma_ == 0 || i == static_cast<int64_t>(timesteps_.size()) - 1) return noised;
  return std::sqrt(a_prev / a_s) * noised + std::sqrt(1 - a_prev / a_s) * noise_like(out, gen);
}

}  // namespace bioesp::sched
