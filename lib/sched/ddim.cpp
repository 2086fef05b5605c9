#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

void DDIM::set_eta(double eta) {
  if (!(eta >= 0 && eta <= 1)) fail(BIOESP_ERR_INVALID_ARGUMENT, "eta must be between 0 and 1");
  eta_ = eta;
}

torch::Tensor DDIM::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  int64_t t = static_cast<int64_t>(timesteps_.at(i));
  int64_t prev = t - c_.num_train_timesteps / steps_;
  double a = alpha_cumprod(t);
  double a_prev = prev >= 0 ? alpha_cumprod(prev) : final_alpha_cumprod();
  const auto p = predict(out, sample, a);
  // η scales the DDPM posterior's standard deviation (Song et al. 2021, eq. 16).
  const double variance = (1 - a_prev) / (1 - a) * (1 - a / a_prev), std_dev = eta_ * std::sqrt(variance);
  auto prev_sample = std::sqrt(a_prev) * clipped(p.x0) + std::sqrt(1 - a_prev - std_dev * std_dev) * p.eps;
  if (eta_ > 0) prev_sample = prev_sample + std_dev * noise_like(out, gen);
  return prev_sample;
}

torch::Tensor DDPM::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  int64_t t = static_cast<int64_t>(timesteps_.at(i));
  int64_t prev = t - c_.num_train_timesteps / steps_;
  double a = alpha_cumprod(t), a_prev = prev >= 0 ? alpha_cumprod(prev) : 1.0;
  double b = 1 - a, b_prev = 1 - a_prev, cur_a = a / a_prev, cur_b = 1 - cur_a;
  auto mean = (std::sqrt(a_prev) * cur_b / b) * clipped(predict(out, sample, a).x0) + (std::sqrt(cur_a) * b_prev / b) * sample;
  if (t == 0) return mean;
  double variance = std::max(b_prev / b * cur_b, 1e-20);
  return mean + std::sqrt(variance) * noise_like(out, gen);
}

}  // namespace bioesp::sched
