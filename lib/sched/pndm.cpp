#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

void PNDM::set_timesteps(int steps) {
  check_steps(steps);
  steps_ = steps;
  auto desc = spaced_timesteps(c_, steps);
  std::vector<int64_t> t(desc.rbegin(), desc.rend());  // ascending
  // PLMS repeats the second-to-last timestep: the first step needs two model evaluations.
  std::vector<int64_t> plms(t.begin(), t.end() - 1);
  if (t.size() >= 2) plms.push_back(t[t.size() - 2]);
  plms.push_back(t.back());
  timesteps_.assign(plms.rbegin(), plms.rend());
  ets_.clear();
  cur_sample_ = torch::Tensor();
  counter_ = 0;
}

torch::Tensor PNDM::prev_sample(const torch::Tensor& sample, int64_t t, int64_t prev, const torch::Tensor& eps_in) const {
  double a = alpha_cumprod(t);
  double a_prev = prev >= 0 ? alpha_cumprod(prev) : final_alpha_cumprod();
  double b = 1 - a, b_prev = 1 - a_prev;
  // v-prediction as ε; the registry refuses sample prediction for PNDM.
  auto eps = c_.prediction_type == "v_prediction" ? std::sqrt(a) * eps_in + std::sqrt(b) * sample : eps_in;
  double sample_coeff = std::sqrt(a_prev / a);
  double denom = a * std::sqrt(b_prev) + std::sqrt(a * b * a_prev);
  return sample_coeff * sample - (a_prev - a) * eps / denom;
}

torch::Tensor PNDM::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample_in, at::Generator*) {
  int64_t t = static_cast<int64_t>(timesteps_.at(i));
  const int64_t ratio = c_.num_train_timesteps / steps_;
  int64_t prev = t - ratio;
  if (counter_ != 1) {
    while (ets_.size() > 3) ets_.pop_front();
    ets_.push_back(out);
  } else {
    prev = t;
    t = t + ratio;
  }
  torch::Tensor eps, sample = sample_in;
  const size_t n = ets_.size();
  if (n == 1 && counter_ == 0) {
    eps = out;
    cur_sample_ = sample_in;
  } else if (n == 1 && counter_ == 1) {
    eps = (out + ets_.back()) / 2;
    sample = cur_sample_;
    cur_sample_ = torch::Tensor();
  } else if (n == 2) {
    eps = (3 * ets_[1] - ets_[0]) / 2;
  } else if (n == 3) {
    eps = (23 * ets_[2] - 16 * ets_[1] + 5 * ets_[0]) / 12;
  } else {
    eps = (1.0 / 24) * (55 * ets_[3] - 59 * ets_[2] + 37 * ets_[1] - 9 * ets_[0]);
  }
  auto r = prev_sample(sample, t, prev, eps);
  ++counter_;
  return r;
}

}  // namespace bioesp::sched
