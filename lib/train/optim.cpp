#include "train/optim.h"

#include <cmath>

#include "core/error.h"

namespace bioesp::train {

AdamW::AdamW(std::vector<torch::Tensor> params, AdamWOptions o, std::vector<ParamGroup> groups)
    : params_(std::move(params)), o_(o), groups_(std::move(groups)) {
  if (groups_.empty()) groups_.push_back({params_.size(), o_.weight_decay});
  size_t n = 0;
  for (const auto& g : groups_) n += g.size;
  if (n != params_.size()) fail(BIOESP_ERR_INTERNAL, "AdamW's parameter groups do not cover its parameters");
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    v_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  }
}

// Multi-tensor ("foreach") kernels: a handful of launches per group for all its parameters,
// which matters on GPUs where a LoRA has hundreds of small tensors.
void AdamW::step(const std::vector<double>& lrs) {
  if (lrs.size() != groups_.size()) fail(BIOESP_ERR_INTERNAL, "AdamW needs one learning rate per parameter group");
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o_.beta2, static_cast<double>(step_)));
  size_t i = 0;
  for (size_t k = 0; k < groups_.size(); ++k) {
    const double lr = lrs[k];
    std::vector<torch::Tensor> p, g, m, v;
    for (const size_t end = i + groups_[k].size; i < end; ++i)
      if (params_[i].grad().defined()) {
        p.push_back(params_[i]);
        g.push_back(params_[i].grad());
        m.push_back(m_[i]);
        v.push_back(v_[i]);
      }
    if (p.empty()) continue;
    at::_foreach_mul_(p, 1.0 - lr * groups_[k].weight_decay);
    at::_foreach_mul_(m, o_.beta1);
    at::_foreach_add_(m, g, 1.0 - o_.beta1);
    at::_foreach_mul_(v, o_.beta2);
    at::_foreach_addcmul_(v, g, g, 1.0 - o_.beta2);
    auto denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, bc2_sqrt);
    at::_foreach_add_(denom, o_.eps);
    at::_foreach_addcdiv_(p, m, denom, -lr / bc1);
  }
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

namespace {
std::vector<torch::Tensor> grads_of(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> g;
  for (const auto& p : params)
    if (p.grad().defined()) g.push_back(p.grad());
  return g;
}
}  // namespace

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  auto grads = grads_of(params);
  if (grads.empty()) return 0.0;
  const double total = torch::stack(at::_foreach_norm(grads)).norm(2).item<double>();
  if (max_norm > 0 && std::isfinite(total)) {
    const double coef = std::min(1.0, max_norm / (total + 1e-6));
    at::_foreach_mul_(grads, coef);
  }
  return total;
}

void GradScaler::unscale(const std::vector<torch::Tensor>& params) {
  if (!enabled_) return;
  torch::NoGradGuard no_grad;
  auto grads = grads_of(params);
  if (!grads.empty()) at::_foreach_mul_(grads, 1.0 / scale_);
}

void GradScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ *= 0.5;
    good_ = 0;
  } else if (++good_ >= interval) {
    scale_ *= 2.0;
    good_ = 0;
  }
}

}  // namespace bioesp::train
