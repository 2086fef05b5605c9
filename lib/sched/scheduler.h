// Noise schedulers as diffusers implements them: small classes with set_timesteps,
// scale_model_input and step, built by name from a scheduler_config.json as diffusers'
// from_config builds them (registry.cpp).
#pragma once

#include <torch/torch.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sched/names.h"

namespace bioesp::sched {

// The values the classes use, read from the class's full config (every key it accepts).
struct SchedulerConfig {
  std::string name;  // bioesp's name of the class (pndm, ddim, ...)
  std::string json;  // the full config as diffusers holds it (Scheduler::config_json)
  int num_train_timesteps = 1000;
  double beta_start = 0.0001, beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear, scaled_linear, squaredcos_cap_v2
  std::vector<double> trained_betas;
  std::string prediction_type = "epsilon";  // epsilon, v_prediction, sample
  std::string timestep_spacing = "leading";  // leading, trailing, linspace
  int steps_offset = 0;
  bool clip_sample = false;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  bool rescale_betas_zero_snr = false;
  // σ schedules (Euler, DPM-Solver++, UniPC)
  bool use_karras_sigmas = false;
  std::optional<double> sigma_min, sigma_max;  // Karras' range; unset: the training schedule's
  std::string final_sigmas_type = "zero";      // zero, sigma_min
  // multistep solvers
  int solver_order = 2;
  bool lower_order_final = true, euler_at_final = false;
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  std::string solver_type;             // midpoint (DPM-Solver++); bh1, bh2 (UniPC)
  std::vector<int64_t> disable_corrector;  // UniPC: step indices whose corrector is skipped
  // LCM and TCD
  int original_inference_steps = 50;
  double timestep_scaling = 10.0;
};

class Scheduler;
// A scheduler from a scheduler_config.json as diffusers swaps schedulers:
// Class.from_config(Own.from_pretrained(file).config, **settings). `name` is one of
// scheduler_names(), optionally followed by from_config settings as "name:key=value,key=value"
// (values as JSON, or else text: "euler:timestep_spacing=trailing"); "" (or ":settings") is the
// file's own class. Keys the file gives and the class accepts carry over; keys the file lacked
// take the class's defaults; the rest ride along in the config for later swaps.
std::unique_ptr<Scheduler> make_scheduler(const std::string& config_json, const std::string& name = "");
// The scheduler `name` gets from the config, as JSON: {"scheduler", "class", "config" (full),
// "steps", "timesteps", "sigmas" (for σ-space classes), "init_noise_sigma"}.
std::string describe(const std::string& config_json, const std::string& name, int steps);

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig c);
  virtual ~Scheduler() = default;

  // diffusers' timestep_spacing over the training steps (DDIM, DDPM); classes with their own
  // grids override it.
  virtual void set_timesteps(int steps);
  // img2img: where denoising starts for `strength` (after set_timesteps), as diffusers'
  // img2img pipelines cut the schedule; returns the step index to begin at.
  virtual int64_t start_at_strength(double strength);
  virtual torch::Tensor scale_model_input(const torch::Tensor& sample, int64_t step) { return sample; }
  // One denoising step at step index `step` (position in timesteps()). `gen` feeds the noise of
  // stochastic samplers. Half-precision inputs are stepped in float32 and the result cast back,
  // as diffusers upcasts the step arithmetic.
  torch::Tensor step(const torch::Tensor& model_output, int64_t step, const torch::Tensor& sample, at::Generator* gen);
  // DDIM's η and TCD's γ: the share of fresh noise per step, in [0, 1]. Other classes refuse it.
  virtual void set_eta(double eta);
  // Noise for img2img and training at step index `step` of the current schedule.
  virtual torch::Tensor add_noise_at(const torch::Tensor& original, const torch::Tensor& noise, int64_t step);
  virtual double init_noise_sigma() const { return 1.0; }
  // Timestep values the model sees, one per step.
  const std::vector<double>& timesteps() const { return timesteps_; }
  // Restarts multistep state at step index `begin` (img2img skips the first steps).
  virtual void set_begin_index(int64_t begin) { (void)begin; }
  const SchedulerConfig& config() const { return c_; }
  const std::string& name() const { return c_.name; }
  // Every key of the class's config as diffusers holds it after from_config, as JSON.
  const std::string& config_json() const { return c_.json; }
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
  // The step on float32 (or wider) tensors.
  virtual torch::Tensor step_float(const torch::Tensor& model_output, int64_t step, const torch::Tensor& sample,
                                   at::Generator* gen) = 0;
  // Standard normal noise shaped like `like`, drawn in the model's dtype from `gen` (on its
  // device) as diffusers' randn_tensor, returned in like's dtype and device.
  torch::Tensor noise_like(const torch::Tensor& like, at::Generator* gen) const;
  struct Prediction {
    torch::Tensor x0, eps;
  };
  // x0 and ε from a model output of the config's prediction type, at ᾱ = a.
  Prediction predict(const torch::Tensor& out, const torch::Tensor& sample, double a) const;
  // x0 clamped to ±clip_sample_range where clip_sample is set.
  torch::Tensor clipped(const torch::Tensor& x0) const;
  double alpha_cumprod(int64_t t) const;  // ᾱ_t as float32, widened
  // ᾱ before the first training step: 1, or ᾱ_0 (set_alpha_to_one false).
  double final_alpha_cumprod() const;
  // ᾱ at training timesteps t ([B]) in x's dtype and device, shaped [B, 1, …] to scale x.
  torch::Tensor alphas_for(const torch::Tensor& x, const torch::Tensor& t) const;
  void check_steps(int steps) const;
  SchedulerConfig c_;
  torch::Tensor alphas_cumprod_;  // float32, [num_train_timesteps]
  mutable torch::Tensor alphas_on_device_;
  std::vector<double> timesteps_;
  int steps_ = 0;

 private:
  torch::ScalarType model_dtype_ = torch::kFloat32;  // of the step in progress
};

// Helpers shared by the classes (schedule.cpp).
torch::Tensor make_betas(const SchedulerConfig& c);
// numpy.linspace and numpy.arange, value for value.
std::vector<double> linspace(double start, double stop, int num, bool endpoint = true);
std::vector<double> arange(double start, double stop, double step);
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
