// UniPC (bh1 or bh2, predicting x0): a predictor step, then at the next call a corrector that
// reuses the new model output, as diffusers' UniPCMultistepScheduler.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "sched/classes.h"

namespace bioesp::sched {

namespace {

// rks and the b vector of the bh2 variant for `order` points; rks[k] for k < order - 1 given.
struct Coefficients {
  std::vector<double> b;
  double h_phi_1, B_h;
};

Coefficients coefficients(double h, int order, bool bh1) {
  const double hh = -h;  // predict_x0
  Coefficients c;
  c.h_phi_1 = std::expm1(hh);
  c.B_h = bh1 ? hh : std::expm1(hh);
  double h_phi_k = c.h_phi_1 / hh - 1, factorial = 1;
  for (int i = 1; i <= order; ++i) {
    c.b.push_back(h_phi_k * factorial / c.B_h);
    factorial *= i + 1;
    h_phi_k = h_phi_k / hh - 1 / factorial;
  }
  return c;
}

// Solves R x = b for the small Vandermonde-like R[i][k] = rks[k]^i (Gaussian elimination).
std::vector<double> solve(const std::vector<double>& rks, const std::vector<double>& b, int n) {
  std::vector<std::vector<double>> a(n, std::vector<double>(n + 1));
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < n; ++k) a[i][k] = std::pow(rks[k], i);
    a[i][n] = b[i];
  }
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int r = col + 1; r < n; ++r)
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    std::swap(a[col], a[pivot]);
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      double f = a[r][col] / a[col][col];
      for (int k = col; k <= n; ++k) a[r][k] -= f * a[col][k];
    }
  }
  std::vector<double> x(n);
  for (int i = 0; i < n; ++i) x[i] = a[i][n] / a[i][i];
  return x;
}

}  // namespace

void UniPC::set_timesteps(int steps) {
  MultistepScheduler::set_timesteps(steps);
  last_sample_ = torch::Tensor();
}

void UniPC::set_begin_index(int64_t begin) {
  MultistepScheduler::set_begin_index(begin);
  last_sample_ = torch::Tensor();
  this_order_ = 1;
}

torch::Tensor UniPC::predictor(const torch::Tensor& x, int64_t i, int order) const {
  const auto& m0 = outputs_.back();
  const AlphaSigma t = at(i + 1), s0 = at(i);
  const double h = t.lambda - s0.lambda;
  std::vector<double> rks;
  std::vector<torch::Tensor> d1s;
  for (int k = 1; k < order; ++k) {
    const AlphaSigma si = at(i - k);
    double rk = (si.lambda - s0.lambda) / h;
    rks.push_back(rk);
    d1s.push_back((outputs_[outputs_.size() - 1 - k] - m0) / rk);
  }
  rks.push_back(1.0);
  Coefficients c = coefficients(h, order, c_.solver_type == "bh1");
  auto x_t = (t.sigma / s0.sigma) * x - (t.alpha * c.h_phi_1) * m0;
  if (!d1s.empty()) {
    // Order 2 uses rho = 0.5, as diffusers does; higher orders solve the reduced system.
    std::vector<double> rhos = order == 2 ? std::vector<double>{0.5} : solve(rks, c.b, order - 1);
    torch::Tensor res = rhos[0] * d1s[0];
    for (size_t k = 1; k < d1s.size(); ++k) res = res + rhos[k] * d1s[k];
    x_t = x_t - (t.alpha * c.B_h) * res;
  }
  return x_t;
}

torch::Tensor UniPC::corrector(const torch::Tensor& model_t, const torch::Tensor& x, int64_t i, int order) const {
  const auto& m0 = outputs_.back();  // the previous step's output (the new one is not stored yet)
  const AlphaSigma t = at(i), s0 = at(i - 1);
  const double h = t.lambda - s0.lambda;
  std::vector<double> rks;
  std::vector<torch::Tensor> d1s;
  for (int k = 1; k < order; ++k) {
    const AlphaSigma si = at(i - 1 - k);
    double rk = (si.lambda - s0.lambda) / h;
    rks.push_back(rk);
    d1s.push_back((outputs_[outputs_.size() - 1 - k] - m0) / rk);
  }
  rks.push_back(1.0);
  Coefficients c = coefficients(h, order, c_.solver_type == "bh1");
  std::vector<double> rhos = order == 1 ? std::vector<double>{0.5} : solve(rks, c.b, order);
  auto x_t = (t.sigma / s0.sigma) * x - (t.alpha * c.h_phi_1) * m0;
  torch::Tensor corr;
  for (size_t k = 0; k < d1s.size(); ++k) corr = corr.defined() ? corr + rhos[k] * d1s[k] : rhos[k] * d1s[k];
  auto d1_t = model_t - m0;
  auto total = corr.defined() ? corr + rhos.back() * d1_t : rhos.back() * d1_t;
  return x_t - (t.alpha * c.B_h) * total;
}

torch::Tensor UniPC::step_float(const torch::Tensor& out, int64_t i, const torch::Tensor& sample_in, at::Generator*) {
  auto converted = convert(out, i, sample_in);
  torch::Tensor sample = sample_in;
  const auto& skip = c_.disable_corrector;
  const bool correct = last_sample_.defined() && !outputs_.empty() && std::find(skip.begin(), skip.end(), i - 1) == skip.end();
  if (correct) sample = corrector(converted, last_sample_, i, this_order_);
  outputs_.push_back(converted);
  while (static_cast<int>(outputs_.size()) > c_.solver_order) outputs_.pop_front();
  const int64_t n = static_cast<int64_t>(timesteps_.size());
  int order = c_.lower_order_final ? std::min<int64_t>(c_.solver_order, n - i) : c_.solver_order;
  this_order_ = std::min(order, lower_order_nums_ + 1);
  last_sample_ = sample;
  auto prev = predictor(sample, i, this_order_);
  if (lower_order_nums_ < c_.solver_order) ++lower_order_nums_;
  return prev;
}

}  // namespace bioesp::sched
