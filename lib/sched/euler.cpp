#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

double SigmaScheduler::final_sigma() const {
  if (c_.final_sigmas_type == "zero") return 0.0;
  double a0 = alpha_cumprod(0);
  return f32(std::sqrt((1 - a0) / a0));
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
  if (steps < 1) fail(BIOESP_ERR_INVALID_ARGUMENT, "steps must be at least 1");
  steps_ = steps;
  const int n = c_.num_train_timesteps;
  std::vector<double> t;
  if (c_.timestep_spacing == "linspace") {
    for (int i = steps - 1; i >= 0; --i) t.push_back(f32(steps == 1 ? 0.0 : double(n - 1) * i / (steps - 1)));
  } else {
    for (int64_t v : spaced_timesteps(c_, steps)) t.push_back(static_cast<double>(v));
  }
  auto train = train_sigmas(alphas_cumprod_);
  sigmas_ = interp_sigmas(train, t);
  if (c_.use_karras_sigmas && !ancestral_) {
    std::vector<double> log_sigmas;
    for (double s : train) log_sigmas.push_back(std::log(s));
    sigmas_ = karras_sigmas(sigmas_.back(), sigmas_.front(), steps);
    t.clear();
    for (double s : sigmas_) t.push_back(f32(sigma_to_t(s, log_sigmas)));
  }
  sigmas_.push_back(ancestral_ ? 0.0 : final_sigma());
  for (double& s : sigmas_) s = f32(s);
  timesteps_ = t;
}

double Euler::init_noise_sigma() const {
  double m = *std::max_element(sigmas_.begin(), sigmas_.end());
  if (c_.timestep_spacing == "linspace" || c_.timestep_spacing == "trailing") return m;
  return std::sqrt(m * m + 1);
}

torch::Tensor Euler::scale_model_input(const torch::Tensor& sample, int64_t i) {
  const double s = sigmas_.at(i);
  return sample / std::sqrt(s * s + 1);
}

torch::Tensor Euler::step(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  const double sigma = sigmas_.at(i), next = sigmas_.at(i + 1);
  auto x0 = predict_x0(out, i, sample);
  auto derivative = (sample - x0) / sigma;
  if (!ancestral_) return sample + derivative * (next - sigma);
  double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
  double down = std::sqrt(next * next - up * up);
  auto prev = sample + derivative * (down - sigma);
  auto noise = gen ? at::randn(out.sizes(), *gen, torch::TensorOptions().dtype(out.scalar_type()).device(gen->device())).to(out.device())
                   : torch::randn_like(out);
  return prev + noise * up;
}

}  // namespace bioesp::sched
