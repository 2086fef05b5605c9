// The Scheduler base class and the schedule arithmetic the classes share.
#include <cmath>

#include "core/error.h"
#include "sched/scheduler.h"

namespace bioesp::sched {

Scheduler::Scheduler(SchedulerConfig c) : c_(std::move(c)) {
  alphas_cumprod_ = torch::cumprod(1.0 - make_betas(c_), 0);
}

torch::Tensor Scheduler::step(const torch::Tensor& out, int64_t i, const torch::Tensor& sample, at::Generator* gen) {
  model_dtype_ = out.scalar_type();
  if (model_dtype_ != torch::kHalf && model_dtype_ != torch::kBFloat16) return step_float(out, i, sample, gen);
  return step_float(out.to(torch::kFloat32), i, sample.to(torch::kFloat32), gen).to(model_dtype_);
}

torch::Tensor Scheduler::noise_like(const torch::Tensor& like, at::Generator* gen) const {
  auto opts = torch::TensorOptions().dtype(model_dtype_);
  auto noise = gen ? at::randn(like.sizes(), *gen, opts.device(gen->device())) : torch::randn(like.sizes(), opts.device(like.device()));
  return noise.to(like.device(), like.scalar_type());
}

void Scheduler::set_eta(double) {
  fail(BIOESP_ERR_INVALID_ARGUMENT, "eta applies to the ddim and tcd schedulers; '" + c_.name + "' takes none");
}

void Scheduler::set_timesteps(int steps) {
  check_steps(steps);
  steps_ = steps;
  auto t = spaced_timesteps(c_, steps);
  timesteps_.assign(t.begin(), t.end());
}

int64_t Scheduler::start_at_strength(double strength) {
  const int init = std::min(static_cast<int>(steps_ * strength), steps_);
  const int64_t begin = std::max(steps_ - init, 0);
  if (begin >= static_cast<int64_t>(timesteps_.size())) fail(BIOESP_ERR_INVALID_ARGUMENT, "strength leaves no denoising step");
  set_begin_index(begin);
  return begin;
}

void Scheduler::check_steps(int steps) const {
  if (steps < 1 || steps > c_.num_train_timesteps)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "steps must be between 1 and " + std::to_string(c_.num_train_timesteps));
}

Scheduler::Prediction Scheduler::predict(const torch::Tensor& out, const torch::Tensor& sample, double a) const {
  const double b = 1 - a;
  if (c_.prediction_type == "epsilon") return {(sample - std::sqrt(b) * out) / std::sqrt(a), out};
  if (c_.prediction_type == "sample") return {out, (sample - std::sqrt(a) * out) / std::sqrt(b)};
  return {std::sqrt(a) * sample - std::sqrt(b) * out, std::sqrt(a) * out + std::sqrt(b) * sample};
}

torch::Tensor Scheduler::clipped(const torch::Tensor& x0) const {
  return c_.clip_sample ? x0.clamp(-c_.clip_sample_range, c_.clip_sample_range) : x0;
}

double Scheduler::alpha_cumprod(int64_t t) const { return alphas_cumprod_[t].item<float>(); }

double Scheduler::final_alpha_cumprod() const { return c_.set_alpha_to_one ? 1.0 : alpha_cumprod(0); }

const torch::Tensor& Scheduler::alphas_cumprod_on(const torch::Device& device) const {
  if (!alphas_on_device_.defined() || alphas_on_device_.device() != device) alphas_on_device_ = alphas_cumprod_.to(device);
  return alphas_on_device_;
}

torch::Tensor Scheduler::alphas_for(const torch::Tensor& x, const torch::Tensor& t) const {
  auto shape = std::vector<int64_t>(x.dim(), 1);
  shape[0] = -1;
  return alphas_cumprod_on(x.device()).index_select(0, t.to(x.device()).to(torch::kLong)).to(x.scalar_type()).view(shape);
}

torch::Tensor Scheduler::add_noise(const torch::Tensor& x, const torch::Tensor& noise, const torch::Tensor& t) const {
  auto ac = alphas_for(x, t);
  return ac.sqrt() * x + (1 - ac).sqrt() * noise;
}

torch::Tensor Scheduler::velocity(const torch::Tensor& x, const torch::Tensor& noise, const torch::Tensor& t) const {
  auto ac = alphas_for(x, t);
  return ac.sqrt() * noise - (1 - ac).sqrt() * x;
}

torch::Tensor Scheduler::add_noise_at(const torch::Tensor& x, const torch::Tensor& noise, int64_t step) {
  auto t = torch::full({x.size(0)}, static_cast<int64_t>(timesteps_.at(step)), torch::kLong);
  return add_noise(x, noise, t);
}

namespace {

// A beta is a noise variance: from 0 (excluded) to 1 (excluded, or no signal is left).
void check_beta(double b, const std::string& key) {
  if (!(b > 0 && b < 1)) fail(BIOESP_ERR_FORMAT, "scheduler: " + key + " = " + std::to_string(b) + " is not between 0 and 1");
}

}  // namespace

torch::Tensor make_betas(const SchedulerConfig& c) {
  const int n = c.num_train_timesteps;
  for (size_t i = 0; i < c.trained_betas.size(); ++i) check_beta(c.trained_betas[i], "trained_betas[" + std::to_string(i) + "]");
  if (c.trained_betas.empty() && c.beta_schedule != "squaredcos_cap_v2") {
    check_beta(c.beta_start, "beta_start");
    check_beta(c.beta_end, "beta_end");
  }
  torch::Tensor betas;
  if (!c.trained_betas.empty()) {
    if (static_cast<int>(c.trained_betas.size()) != n)
      fail(BIOESP_ERR_FORMAT, "scheduler: trained_betas has " + std::to_string(c.trained_betas.size()) +
                                  " values for " + std::to_string(n) + " timesteps");
    betas = torch::tensor(c.trained_betas, torch::kFloat64).to(torch::kFloat32);
  } else if (c.beta_schedule == "linear") {
    betas = torch::linspace(c.beta_start, c.beta_end, n, torch::kFloat32);
  } else if (c.beta_schedule == "scaled_linear") {
    betas = torch::linspace(std::sqrt(c.beta_start), std::sqrt(c.beta_end), n, torch::kFloat32).pow(2);
  } else if (c.beta_schedule == "squaredcos_cap_v2") {
    auto alpha_bar = [](double t) { return std::pow(std::cos((t + 0.008) / 1.008 * M_PI / 2), 2); };
    std::vector<double> b;
    for (int i = 0; i < n; ++i) b.push_back(std::min(1 - alpha_bar((i + 1.0) / n) / alpha_bar(double(i) / n), 0.999));
    betas = torch::tensor(b, torch::kFloat64).to(torch::kFloat32);
  } else {
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler: beta_schedule '" + c.beta_schedule + "' is not supported");
  }
  if (c.rescale_betas_zero_snr) {  // Lin et al. 2023, as diffusers' rescale_zero_terminal_snr
    auto sqrt_ac = torch::cumprod(1.0 - betas, 0).sqrt();
    auto first = sqrt_ac[0].clone(), last = sqrt_ac[-1].clone();
    sqrt_ac = (sqrt_ac - last) * first / (first - last);
    auto ac = sqrt_ac.pow(2);
    auto alphas = torch::cat({ac.slice(0, 0, 1), ac.slice(0, 1) / ac.slice(0, 0, -1)});
    betas = 1 - alphas;
  }
  return betas;
}

std::vector<double> linspace(double start, double stop, int num, bool endpoint) {
  const int div = endpoint ? num - 1 : num;
  const double step = div > 0 ? (stop - start) / div : 0.0;
  std::vector<double> y;
  for (int i = 0; i < num; ++i) y.push_back(i * step + start);
  if (endpoint && num > 1) y.back() = stop;
  return y;
}

std::vector<double> arange(double start, double stop, double step) {
  // numpy fills from the first two values: start + i·((start + step) - start).
  const double delta = (start + step) - start;
  const double len = std::ceil((stop - start) / step);
  std::vector<double> y;
  for (int64_t i = 0; i < static_cast<int64_t>(len); ++i) y.push_back(start + i * delta);
  return y;
}

std::vector<int64_t> spaced_timesteps(const SchedulerConfig& c, int steps) {
  const int n = c.num_train_timesteps;
  std::vector<int64_t> t;
  if (c.timestep_spacing == "linspace") {
    auto v = linspace(0, n - 1, steps);
    for (auto it = v.rbegin(); it != v.rend(); ++it) t.push_back(static_cast<int64_t>(std::nearbyint(*it)));
  } else if (c.timestep_spacing == "leading") {
    const int ratio = n / steps;
    for (int i = steps - 1; i >= 0; --i) t.push_back(static_cast<int64_t>(i) * ratio + c.steps_offset);
  } else if (c.timestep_spacing == "trailing") {
    for (double v : arange(n, 0, -double(n) / steps)) t.push_back(static_cast<int64_t>(std::nearbyint(v)) - 1);
  } else {
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler: timestep_spacing '" + c.timestep_spacing + "' is not supported");
  }
  return t;
}

std::vector<double> train_sigmas(const torch::Tensor& ac) {
  auto s = ((1 - ac) / ac).pow(0.5);
  auto a = s.accessor<float, 1>();
  std::vector<double> out(a.size(0));
  for (int64_t i = 0; i < a.size(0); ++i) out[i] = a[i];
  return out;
}

std::vector<double> interp_sigmas(const std::vector<double>& sigmas, const std::vector<double>& t) {
  std::vector<double> out;
  for (double x : t) {
    if (x <= 0) { out.push_back(sigmas.front()); continue; }
    if (x >= sigmas.size() - 1) { out.push_back(sigmas.back()); continue; }
    size_t i = static_cast<size_t>(std::floor(x));
    double w = x - i;
    out.push_back(sigmas[i] + (sigmas[i + 1] - sigmas[i]) * w);
  }
  return out;
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int steps) {
  const double rho = 7.0, lo = std::pow(sigma_min, 1 / rho), hi = std::pow(sigma_max, 1 / rho);
  std::vector<double> out;
  for (double ramp : linspace(0, 1, steps)) out.push_back(std::pow(hi + ramp * (lo - hi), rho));
  return out;
}

double sigma_to_t(double sigma, const std::vector<double>& log_sigmas) {
  double ls = std::log(std::max(sigma, 1e-10));
  // The last index whose log sigma is at most ls, clipped so that a higher neighbour exists.
  size_t low = 0;
  for (size_t i = 0; i < log_sigmas.size(); ++i)
    if (ls - log_sigmas[i] >= 0) low = i;
  low = std::min(low, log_sigmas.size() - 2);
  double lo = log_sigmas[low], hi = log_sigmas[low + 1];
  double w = std::clamp((lo - ls) / (lo - hi), 0.0, 1.0);
  return (1 - w) * low + w * (low + 1);
}

}  // namespace bioesp::sched
