#include <cmath>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "sched/classes.h"
#include "sched/scheduler.h"

namespace bioesp::sched {

using nlohmann::json;

Scheduler::Scheduler(SchedulerConfig c) : c_(std::move(c)) {
  auto betas = make_betas(c_);
  alphas_cumprod_ = torch::cumprod(1.0 - betas, 0);
}

double Scheduler::alpha_cumprod(int64_t t) const { return alphas_cumprod_[t].item<float>(); }

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

torch::Tensor make_betas(const SchedulerConfig& c) {
  const int n = c.num_train_timesteps;
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

std::vector<int64_t> spaced_timesteps(const SchedulerConfig& c, int steps) {
  const int n = c.num_train_timesteps;
  std::vector<int64_t> t;
  if (c.timestep_spacing == "linspace") {
    for (int i = steps - 1; i >= 0; --i)
      t.push_back(static_cast<int64_t>(std::nearbyint(steps == 1 ? 0.0 : double(n - 1) * i / (steps - 1))));
  } else if (c.timestep_spacing == "leading") {
    int ratio = n / steps;
    for (int i = steps - 1; i >= 0; --i) t.push_back(static_cast<int64_t>(i) * ratio + c.steps_offset);
  } else if (c.timestep_spacing == "trailing") {
    double ratio = double(n) / steps;
    for (double v = n; v > 0 && static_cast<int>(t.size()) < steps; v -= ratio)
      t.push_back(static_cast<int64_t>(std::nearbyint(v)) - 1);
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
  for (int i = 0; i < steps; ++i) {
    double ramp = steps == 1 ? 0.0 : double(i) / (steps - 1);
    out.push_back(std::pow(hi + ramp * (lo - hi), rho));
  }
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

namespace {

const std::vector<std::pair<std::string, std::string>> kClasses = {
    {"PNDMScheduler", "pndm"},        {"DDIMScheduler", "ddim"},
    {"EulerDiscreteScheduler", "euler"}, {"EulerAncestralDiscreteScheduler", "euler_a"},
    {"DPMSolverMultistepScheduler", "dpmpp_2m"}, {"UniPCMultistepScheduler", "unipc"},
    {"DDPMScheduler", "ddpm"}};

json parse(const std::string& text) {
  try {
    json j = json::parse(config::from_python_json(text));
    if (!j.is_object()) fail(BIOESP_ERR_FORMAT, "scheduler_config.json is not an object");
    return j;
  } catch (const json::exception& e) {
    fail(BIOESP_ERR_FORMAT, std::string("scheduler_config.json: malformed JSON: ") + e.what());
  }
}

template <class T>
void read(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    fail(BIOESP_ERR_FORMAT, std::string("scheduler config: '") + key + "' has the wrong type");
  }
}

void must(const json& j, const char* key, const json& allowed) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null() && *it != allowed)
    fail(BIOESP_ERR_UNSUPPORTED, std::string("scheduler config: '") + key + "' = " + it->dump() + " is not supported");
}

}  // namespace

std::unique_ptr<Scheduler> make_scheduler_exact(const std::string& name, const std::string& text) {
  json j = parse(text);
  SchedulerConfig c;
  // Class defaults, as diffusers declares them.
  c.timestep_spacing = (name == "pndm" || name == "ddim" || name == "ddpm") ? "leading" : "linspace";
  if (name == "pndm") c.set_alpha_to_one = false;
  if (name == "dpmpp_2m_karras") c.use_karras_sigmas = true;
  read(j, "num_train_timesteps", c.num_train_timesteps);
  read(j, "beta_start", c.beta_start);
  read(j, "beta_end", c.beta_end);
  read(j, "beta_schedule", c.beta_schedule);
  read(j, "trained_betas", c.trained_betas);
  read(j, "prediction_type", c.prediction_type);
  read(j, "timestep_spacing", c.timestep_spacing);
  read(j, "steps_offset", c.steps_offset);
  read(j, "clip_sample", c.clip_sample);
  read(j, "clip_sample_range", c.clip_sample_range);
  read(j, "set_alpha_to_one", c.set_alpha_to_one);
  read(j, "use_karras_sigmas", c.use_karras_sigmas);
  read(j, "final_sigmas_type", c.final_sigmas_type);
  read(j, "lower_order_final", c.lower_order_final);
  read(j, "solver_order", c.solver_order);
  read(j, "rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  if (c.num_train_timesteps < 2 || c.num_train_timesteps > 100000)
    fail(BIOESP_ERR_FORMAT, "scheduler config: num_train_timesteps out of range");
  if (c.prediction_type != "epsilon" && c.prediction_type != "v_prediction" && c.prediction_type != "sample")
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler config: prediction_type '" + c.prediction_type + "' is not supported");
  if (c.final_sigmas_type != "zero" && c.final_sigmas_type != "sigma_min")
    fail(BIOESP_ERR_UNSUPPORTED, "scheduler config: final_sigmas_type '" + c.final_sigmas_type + "' is not supported");
  must(j, "thresholding", false);
  must(j, "use_exponential_sigmas", false);
  must(j, "use_beta_sigmas", false);
  must(j, "use_lu_lambdas", false);
  must(j, "use_flow_sigmas", false);
  must(j, "use_dynamic_shifting", false);
  must(j, "timestep_type", "discrete");
  must(j, "interpolation_type", "linear");
  if (name == "pndm") {
    must(j, "skip_prk_steps", true);
    return std::make_unique<PNDM>(c);
  }
  if (name == "ddim") return std::make_unique<DDIM>(c);
  if (name == "ddpm") {
    must(j, "variance_type", "fixed_small");
    return std::make_unique<DDPM>(c);
  }
  if (name == "euler") return std::make_unique<Euler>(c, false);
  if (name == "euler_a") return std::make_unique<Euler>(c, true);
  if (name == "dpmpp_2m" || name == "dpmpp_2m_karras") {
    must(j, "algorithm_type", "dpmsolver++");
    must(j, "solver_type", "midpoint");
    must(j, "euler_at_final", false);
    if (c.solver_order != 1 && c.solver_order != 2)
      fail(BIOESP_ERR_UNSUPPORTED, "scheduler config: solver_order " + std::to_string(c.solver_order) + " is not supported");
    return std::make_unique<DPMSolver>(c);
  }
  if (name == "unipc") {
    must(j, "solver_type", "bh2");
    must(j, "predict_x0", true);
    must(j, "disable_corrector", json::array());
    if (c.solver_order < 1 || c.solver_order > 3)
      fail(BIOESP_ERR_UNSUPPORTED, "scheduler config: solver_order " + std::to_string(c.solver_order) + " is not supported");
    return std::make_unique<UniPC>(c);
  }
  std::string known;
  for (const auto& n : scheduler_names()) known += (known.empty() ? "" : ", ") + n;
  fail(BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler '" + name + "' (known: " + known + ")");
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& text, const std::string& name) {
  json j = parse(text);
  std::string own;
  std::string cls = j.value("_class_name", "");
  for (const auto& [c, n] : kClasses)
    if (c == cls) own = n;
  if (own == "dpmpp_2m" && j.value("use_karras_sigmas", false)) own = "dpmpp_2m_karras";
  if (name.empty() || name == own) {
    if (own.empty()) fail(BIOESP_ERR_UNSUPPORTED, "scheduler class '" + cls + "' is not supported; choose one by name");
    return make_scheduler_exact(own, text);
  }
  // Another class: keep the model's training schedule, take the rest from the class defaults.
  json carried = json::object();
  for (const char* k : {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                        "prediction_type", "steps_offset", "set_alpha_to_one", "rescale_betas_zero_snr"})
    if (j.contains(k)) carried[k] = j[k];
  return make_scheduler_exact(name, carried.dump());
}

}  // namespace bioesp::sched
