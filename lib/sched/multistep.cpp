#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

int MultistepScheduler::last_timestep() const {
  const int n = c_.num_train_timesteps;
  if (!std::isfinite(c_.lambda_min_clipped)) return n;
  // Cut the timesteps whose λ = log(α) - log(σ) (float32) lies below lambda_min_clipped.
  auto ac = alphas_cumprod_;
  auto lambdas = (ac.sqrt().log() - (1 - ac).sqrt().log()).to(torch::kFloat64);
  return n - static_cast<int>((lambdas < c_.lambda_min_clipped).sum().item<int64_t>());
}

void MultistepScheduler::set_timesteps(int steps) {
  check_steps(steps);
  steps_ = steps;
  const int last = last_timestep();
  std::vector<int64_t> t;
  // Spaced over steps + 1 points with the last dropped, as diffusers' multistep solvers do.
  if (c_.timestep_spacing == "linspace") {
    auto v = linspace(0, last - 1, steps + 1);
    for (int i = steps; i >= 1; --i) t.push_back(static_cast<int64_t>(std::nearbyint(v[i])));
  } else if (c_.timestep_spacing == "leading") {
    const int ratio = last / (steps + 1);
    for (int i = steps; i >= 1; --i) t.push_back(static_cast<int64_t>(i) * ratio + c_.steps_offset);
  } else if (c_.timestep_spacing == "trailing") {
    for (double v : arange(last, 0, -double(c_.num_train_timesteps) / steps)) t.push_back(static_cast<int64_t>(std::nearbyint(v)) - 1);
  } else {
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler: timestep_spacing '" + c_.timestep_spacing + "' is not supported");
  }
  auto train = train_sigmas(alphas_cumprod_);
  std::vector<double> td(t.begin(), t.end());
  if (c_.use_karras_sigmas) {
    std::vector<double> log_sigmas;
    for (double s : train) log_sigmas.push_back(std::log(s));
    sigmas_ = karras(train.front(), train.back(), steps);
    td.clear();
    for (double s : sigmas_) td.push_back(std::nearbyint(sigma_to_t(s, log_sigmas)));
    sigmas_.push_back(c_.final_sigmas_type == "zero" ? 0.0 : sigmas_.back());
  } else {
    sigmas_ = interp_sigmas(train, td);
    sigmas_.push_back(final_sigma());
  }
  for (double& s : sigmas_) s = f32(s);
  timesteps_ = td;
  set_begin_index(0);
}

void MultistepScheduler::set_begin_index(int64_t) {
  outputs_.clear();
  lower_order_nums_ = 0;
}

MultistepScheduler::AlphaSigma MultistepScheduler::at(int64_t i) const {
  const double s = sigmas_.at(i);
  AlphaSigma r;
  r.alpha = 1 / std::sqrt(s * s + 1);
  r.sigma = s * r.alpha;
  r.lambda = std::log(r.alpha) - std::log(r.sigma);
  return r;
}

torch::Tensor MultistepScheduler::add_noise_at(const torch::Tensor& x, const torch::Tensor& noise, int64_t step) {
  const AlphaSigma s = at(step);
  return s.alpha * x + s.sigma * noise;
}

torch::Tensor MultistepScheduler::convert(const torch::Tensor& out, int64_t i, const torch::Tensor& sample) const {
  const AlphaSigma s = at(i);
  if (c_.prediction_type == "epsilon") return (sample - s.sigma * out) / s.alpha;
  if (c_.prediction_type == "v_prediction") return s.alpha * sample - s.sigma * out;
  return out;
}

torch::Tensor DPMSolver::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator*) {
  const int64_t n = static_cast<int64_t>(timesteps_.size());
  // The last step is first order when asked for (euler_at_final), when lower_order_final holds
  // and the schedule is short (< 15 steps), and always when it ends at σ = 0.
  bool lower_final = i == n - 1 && (c_.euler_at_final || (c_.lower_order_final && n < 15) || c_.final_sigmas_type == "zero");
  auto m0 = convert(out, i, sample);
  outputs_.push_back(m0);
  while (static_cast<int>(outputs_.size()) > c_.solver_order) outputs_.pop_front();
  const AlphaSigma t = at(i + 1), s0 = at(i);
  const double h = t.lambda - s0.lambda;
  torch::Tensor prev;
  if (c_.solver_order == 1 || lower_order_nums_ < 1 || lower_final) {
    prev = (t.sigma / s0.sigma) * sample - (t.alpha * std::expm1(-h)) * m0;
  } else {
    // Second order (midpoint). diffusers' other lower_order_final rule, second order on the
    // second-to-last step, only lowers solver_order 3, which is refused.
    const AlphaSigma s1 = at(i - 1);
    const double r0 = (s0.lambda - s1.lambda) / h;
    auto d1 = (1.0 / r0) * (m0 - outputs_[outputs_.size() - 2]);
    prev = (t.sigma / s0.sigma) * sample - (t.alpha * std::expm1(-h)) * m0 - 0.5 * (t.alpha * std::expm1(-h)) * d1;
  }
  if (lower_order_nums_ < c_.solver_order) ++lower_order_nums_;
  return prev;
}

}  // namespace bioesp::sched
