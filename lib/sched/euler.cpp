#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

SigmaScheduler::SigmaScheduler(SchedulerConfig c) : Scheduler(std::move(c)) {
  // Zero terminal SNR would make the first σ infinite: diffusers puts ᾱ_T at float16's smallest
  // subnormal instead.
  if (c_.rescale_betas_zero_snr) alphas_cumprod_[-1] = std::pow(2.0, -24);
}

double SigmaScheduler::final_sigma() const {
  if (c_.final_sigmas_type == "zero") return 0.0;
  auto a0 = alphas_cumprod_[0];
  return ((1 - a0) / a0).pow(0.5).item<float>();
}

std::vector<double> SigmaScheduler::karras(double lo, double hi, int steps) const {
  return karras_sigmas(c_.sigma_min.value_or(lo), c_.sigma_max.value_or(hi), steps);
}

torch::Tensor SigmaScheduler::add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step) {
  return original + noise * sigmas_.at(step);
}

torch::Tensor SigmaScheduler::predict_x0(const torch::Tensor& out, int64_t i, const torch::Tensor& sample) const {
  const double s = sigmas_.at(i);
  if (c_.prediction_type == "epsilon") return sample - s * out;
  if (c_.prediction_type == "v_prediction") return out * (-s / std::sqrt(s * s + 1)) + sample / (s * s + 1);
  return out;
}

void Euler::set_timesteps(int steps) {
  check_steps(steps);
  steps_ = steps;
  std::vector<double> t;
  if (c_.timestep_spacing == "linspace") {
    auto v = linspace(0, c_.num_train_timesteps - 1, steps);
    for (auto it = v.rbegin(); it != v.rend(); ++it) t.push_back(f32(*it));
  } else {
    for (int64_t v : spaced_timesteps(c_, steps)) t.push_back(static_cast<double>(v));
  }
  auto train = train_sigmas(alphas_cumprod_);
  sigmas_ = interp_sigmas(train, t);
  if (c_.use_karras_sigmas) {
    std::vector<double> log_sigmas;
    for (double s : train) log_sigmas.push_back(std::log(s));
    sigmas_ = karras(sigmas_.back(), sigmas_.front(), steps);
    t.clear();
    for (double s : sigmas_) t.push_back(f32(sigma_to_t(s, log_sigmas)));
  }
  sigmas_.push_back(final_sigma());
  for (double& s : sigmas_) s = f32(s);
  timesteps_ = t;
}

double Euler::init_noise_sigma() const {
  // In float32, as diffusers computes it from its σ tensor.
  const float m = static_cast<float>(*std::max_element(sigmas_.begin(), sigmas_.end()));
  if (c_.timestep_spacing == "linspace" || c_.timestep_spacing == "trailing") return m;
  return std::sqrt(m * m + 1.0f);
}

torch::Tensor Euler::scale_model_input(const torch::Tensor& sample, int64_t i) {
  const double s = sigmas_.at(i);
  return sample / std::sqrt(s * s + 1);
}

torch::Tensor Euler::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  const double sigma = sigmas_.at(i), next = sigmas_.at(i + 1);
  auto x0 = predict_x0(out, i, sample);
  auto derivative = (sample - x0) / sigma;
  if (!ancestral_) return sample + derivative * (next - sigma);
  double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
  double down = std::sqrt(next * next - up * up);
  return sample + derivative * (down - sigma) + noise_like(out, gen) * up;
}

}  // namespace bioesp::sched
