#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

namespace {
// x0 and ε from a model output of any prediction type.
void predictions(const SchedulerConfig& c, const torch::Tensor& out, const torch::Tensor& sample, double a,
                 torch::Tensor* x0, torch::Tensor* eps) {
  double b = 1 - a;
  if (c.prediction_type == "epsilon") {
    *x0 = (sample - std::sqrt(b) * out) / std::sqrt(a);
    *eps = out;
  } else if (c.prediction_type == "sample") {
    *x0 = out;
    *eps = (sample - std::sqrt(a) * out) / std::sqrt(b);
  } else {
    *x0 = std::sqrt(a) * sample - std::sqrt(b) * out;
    *eps = std::sqrt(a) * out + std::sqrt(b) * sample;
  }
  if (c.clip_sample) *x0 = x0->clamp(-c.clip_sample_range, c.clip_sample_range);
}
}  // namespace

void DDIM::set_timesteps(int steps) {
  if (steps < 1 || steps > c_.num_train_timesteps)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "steps must be between 1 and " + std::to_string(c_.num_train_timesteps));
  steps_ = steps;
  auto t = spaced_timesteps(c_, steps);
  timesteps_.assign(t.begin(), t.end());
}

torch::Tensor DDIM::step(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator*) {
  int64_t t = static_cast<int64_t>(timesteps_.at(i));
  int64_t prev = t - c_.num_train_timesteps / steps_;
  double a = alpha_cumprod(t);
  double a_prev = prev >= 0 ? alpha_cumprod(prev) : (c_.set_alpha_to_one ? 1.0 : alpha_cumprod(0));
  torch::Tensor x0, eps;
  predictions(c_, out, sample, a, &x0, &eps);
  return std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev) * eps;
}

void DDPM::set_timesteps(int steps) {
  if (steps < 1 || steps > c_.num_train_timesteps)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "steps must be between 1 and " + std::to_string(c_.num_train_timesteps));
  steps_ = steps;
  auto t = spaced_timesteps(c_, steps);
  timesteps_.assign(t.begin(), t.end());
}

torch::Tensor DDPM::step(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  int64_t t = static_cast<int64_t>(timesteps_.at(i));
  int64_t prev = t - c_.num_train_timesteps / steps_;
  double a = alpha_cumprod(t), a_prev = prev >= 0 ? alpha_cumprod(prev) : 1.0;
  double b = 1 - a, b_prev = 1 - a_prev, cur_a = a / a_prev, cur_b = 1 - cur_a;
  torch::Tensor x0, eps;
  predictions(c_, out, sample, a, &x0, &eps);
  auto mean = (std::sqrt(a_prev) * cur_b / b) * x0 + (std::sqrt(cur_a) * b_prev / b) * sample;
  if (t == 0) return mean;
  auto noise = gen ? at::randn(out.sizes(), *gen, torch::TensorOptions().dtype(out.scalar_type()).device(gen->device())).to(out.device())
                   : torch::randn_like(out);
  double variance = std::max(b_prev / b * cur_b, 1e-20);
  return mean + std::sqrt(variance) * noise;
}

}  // namespace bioesp::sched
