// Noise schedulers as diffusers implements them: small classes with set_timesteps,
// scale_model_input and step, built from scheduler_config.json with each class's defaults.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace bioesp::sched {

struct SchedulerConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear, scaled_linear, squaredcos_cap_v2
  std::vector<double> trained_betas;
  std::string prediction_type = "epsilon";  // epsilon, v_prediction, sample
  std::string timestep_spacing;             // leading, trailing, linspace ("" = the class default)
  int steps_offset = 0;
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  bool use_karras_sigmas = false;
  std::string final_sigmas_type = "zero";  // zero, sigma_min
  bool lower_order_final = true;
  int solver_order = 2;
  bool rescale_betas_zero_snr = false;
};

// Names: pndm, ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, unipc, ddpm.
const std::vector<std::string>& scheduler_names();

// The model's own scheduler from its config (by _class_name), or `name` carrying over the
// model's training schedule (betas, prediction type, offset) and taking the rest from the
// named class's defaults, as diffusers' from_config does.
class Scheduler;
std::unique_ptr<Scheduler> make_scheduler(const std::string& config_json, const std::string& name = "");
// The same from a full per-class config (keys absent take that class's defaults).
std::unique_ptr<Scheduler> make_scheduler_exact(const std::string& name, const std::string& config_json);

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig c);
  virtual ~Scheduler() = default;

  virtual void set_timesteps(int steps) = 0;
  virtual torch::Tensor scale_model_input(const torch::Tensor& sample, int64_t step) { return sample; }
  // One denoising step at step index `step` (position in timesteps()). `gen` feeds ancestral noise.
  virtual torch::Tensor step(const torch::Tensor& model_output, int64_t step, const torch::Tensor& sample,
                             at::Generator* gen) = 0;
  // Noise for img2img and training at step index `step` of the current schedule.
  virtual torch::Tensor add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step);
  virtual double init_noise_sigma() const { return 1.0; }
  // Timestep values the model sees, one per step.
  const std::vector<double>& timesteps() const { return timesteps_; }
  // Restarts multistep state at step index `begin` (img2img skips the first steps).
  virtual void set_begin_index(int64_t begin) { (void)begin; }
  const SchedulerConfig& config() const { return c_; }
  // The clean sample that `model_output` at step index `step` predicts for `sample` (what live
  // previews show). Changes no state and draws no noise (predict.cpp).
  virtual torch::Tensor predict_original(const torch::Tensor& model_output, int64_t step, const torch::Tensor& sample) const;

  // DDPM forward process at integer training timesteps t ([B]): sqrt(ᾱ)·x + sqrt(1-ᾱ)·ε.
  torch::Tensor add_noise(const torch::Tensor& original, const torch::Tensor& noise, const torch::Tensor& t) const;
  // The v-prediction target sqrt(ᾱ)·ε - sqrt(1-ᾱ)·x.
  torch::Tensor velocity(const torch::Tensor& sample, const torch::Tensor& noise, const torch::Tensor& t) const;
  const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  // The same on `device`, copied once (a copy per training step would cost a host round trip and
  // stop CUDA graph capture). Not for concurrent use from several threads.
  const torch::Tensor& alphas_cumprod_on(const torch::Device& device) const;

 protected:
  double alpha_cumprod(int64_t t) const;  // ᾱ_t as float32, widened
  // ᾱ at training timesteps t ([B]) in x's dtype and device, shaped [B, 1, …] to scale x.
  torch::Tensor alphas_for(const torch::Tensor& x, const torch::Tensor& t) const;
  SchedulerConfig c_;
  torch::Tensor alphas_cumprod_;  // float32, [num_train_timesteps]
  mutable torch::Tensor alphas_on_device_;
  std::vector<double> timesteps_;
  int steps_ = 0;
};

// Helpers shared by the classes (schedule.cpp).
torch::Tensor make_betas(const SchedulerConfig& c);
// Integer timesteps, high to low, for "leading", "trailing" and "linspace" spacing.
std::vector<int64_t> spaced_timesteps(const SchedulerConfig& c, int steps);
// σ(t) = sqrt((1-ᾱ)/ᾱ) per training step, as float32 widened to double.
std::vector<double> train_sigmas(const torch::Tensor& alphas_cumprod);
// np.interp of train sigmas at fractional timesteps.
std::vector<double> interp_sigmas(const std::vector<double>& sigmas, const std::vector<double>& t);
std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int steps);
double sigma_to_t(double sigma, const std::vector<double>& log_sigmas);
// Rounds to float32 and back, where diffusers stores a value as float32.
inline double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

}  // namespace bioesp::sched
