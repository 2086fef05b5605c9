// AdamW as torch.optim.AdamW computes it (single-tensor path, decoupled weight decay), with its
// state in plain tensors so checkpoints can save and restore it exactly; gradient-norm clipping
// as torch.nn.utils.clip_grad_norm_; dynamic loss scaling for fp16 as torch.amp.GradScaler.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace bioesp::train {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, weight_decay = 1e-2, eps = 1e-8;
};

// Consecutive parameters with a weight decay of their own, as torch.optim's parameter groups
// (train_dreambooth_lora_sdxl.py's text encoders decay by another rate than the UNet).
struct ParamGroup {
  size_t size;
  double weight_decay;
};

class AdamW {
 public:
  // No groups: one of all parameters with o.weight_decay.
  AdamW(std::vector<torch::Tensor> params, AdamWOptions o, std::vector<ParamGroup> groups = {});
  // One update of every parameter that has a gradient, group g at learning rate lrs[g].
  void step(const std::vector<double>& lrs);
  void step(double lr) { step(std::vector<double>(groups_.size(), lr)); }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  void zero_grad();
  int64_t steps() const { return step_; }
  // For checkpoints: first and second moments, per parameter, and the step count.
  std::vector<torch::Tensor>& exp_avg() { return m_; }
  std::vector<torch::Tensor>& exp_avg_sq() { return v_; }
  void set_steps(int64_t s) { step_ = s; }
  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  AdamWOptions o_;
  std::vector<ParamGroup> groups_;
  int64_t step_ = 0;
};

// Scales gradients so their total 2-norm is at most max_norm (0: no clipping); returns the norm
// before clipping (infinite or NaN when a gradient overflowed, and then nothing is scaled).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// fp16 training: the loss is multiplied by `scale` before backward; steps whose gradients
// overflow are skipped and halve the scale, and every `interval` clean steps double it.
class GradScaler {
 public:
  explicit GradScaler(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Divides the gradients by the scale (an overflow shows as a non-finite gradient norm).
  void unscale(const std::vector<torch::Tensor>& params);
  void update(bool finite);
  // Checkpoint state.
  double state_scale() const { return scale_; }
  int state_growth() const { return good_; }
  void restore(double scale, int growth) { scale_ = scale, good_ = growth; }

 private:
  bool enabled_;
  double scale_ = 65536.0;
  int good_ = 0;
  static constexpr int interval = 2000;
};

}  // namespace bioesp::train
