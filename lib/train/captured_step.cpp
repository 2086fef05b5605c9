#include "train/captured_step.h"

#include <torch/version.h>

#include <cmath>

#include "core/error.h"

#if TORCH_VERSION_MAJOR >= 2 && __has_include(<cuda_runtime_api.h>) && __has_include(<ATen/cuda/CUDAGraph.h>)
#define BIOESP_HAVE_CUDA_GRAPHS 1
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/cuda.h>
#endif

namespace bioesp::train {

std::string CapturedStep::unsupported(const Trainer& tr, int accumulation) {
#ifndef BIOESP_HAVE_CUDA_GRAPHS
  (void)tr, (void)accumulation;
  return "this LibTorch has no CUDA graphs";
#else
  const Setup& s = tr.setup();
  if (!tr.device().is_cuda()) return "not on a CUDA device";
  if (s.full) return "full fine-tuning";
  if (s.train_text_encoder) return "the text encoder trains";
  if (s.fp16_loss_scaling) return "fp16 needs loss scaling on the host (bf16 does not)";
  if (s.dropout > 0) return "LoRA dropout draws its masks on the CPU";
  if (s.gradient_checkpointing) return "gradient checkpointing";
  if (accumulation != 1) return "gradient accumulation";
  return "";
#endif
}

#ifdef BIOESP_HAVE_CUDA_GRAPHS

struct CapturedStep::State {
  explicit State(Trainer& t) : tr(t) {}
  Trainer& tr;
  StepInputs in;  // static buffers on the device that every replay reads
  std::vector<torch::Tensor> params, steps, none;
  torch::Tensor lr, loss, norm;
  at::cuda::CUDAGraph graph;

  // Loss, backward, clipping and fused AdamW without leaving the device.
  void step() {
    loss = tr.loss(in);
    loss.backward();
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) grads.push_back(p.grad());
    norm = torch::stack(at::_foreach_norm(grads)).norm();
    const double max_norm = tr.setup().max_grad_norm;
    if (max_norm > 0) at::_foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp_max(1.0));
    at::_foreach_add_(steps, 1.0);
    const auto& a = tr.setup().adam;
    auto& adam = tr.optimizer();
    // The UNet's group alone (unsupported() leaves the text encoders' to eager steps), with the
    // decay the optimizer holds: the script's default resolved, not the options' sentinel.
    at::_fused_adamw_(params, grads, adam.exp_avg(), adam.exp_avg_sq(), none, steps, lr, a.beta1, a.beta2,
                      adam.groups().front().weight_decay, a.eps, false, false, c10::nullopt, c10::nullopt);
  }

  void clear_grads() {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
  }
};

namespace {

torch::Tensor device_copy(const torch::Tensor& t, const torch::Device& d) { return t.defined() ? t.to(d).clone() : t; }

void copy_into(torch::Tensor& dst, const torch::Tensor& src, const char* what) {
  if (!dst.defined() && !src.defined()) return;
  if (!dst.defined() || !src.defined() || dst.sizes() != src.sizes())
    fail(BIOESP_ERR_INTERNAL, std::string("a captured training step got other ") + what + " than it was captured with");
  dst.copy_(src);
}

}  // namespace

CapturedStep::CapturedStep(Trainer& tr, const StepInputs& first) : s_(std::make_unique<State>(tr)) {
  State& s = *s_;
  const auto dev = tr.device();
  s.in.pixel_values = device_copy(first.pixel_values, dev);
  s.in.vae_eps = device_copy(first.vae_eps, dev);
  s.in.latents = device_copy(first.latents, dev);
  s.in.noise = device_copy(first.noise, dev);
  s.in.timesteps = device_copy(first.timesteps, dev);
  s.in.encoder_hidden_states = device_copy(first.encoder_hidden_states, dev);
  s.in.pooled = device_copy(first.pooled, dev);
  s.in.time_ids = device_copy(first.time_ids, dev);
  s.in.prior = first.prior;
  auto& adam = tr.optimizer();
  for (const auto& [name, p] : tr.parameters()) s.params.push_back(p);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(dev);
  for (size_t i = 0; i < s.params.size(); ++i) s.steps.push_back(torch::full({}, static_cast<double>(adam.steps()), f32));
  s.lr = torch::zeros({}, f32);

  // The warm-up (cuDNN's autotuning, workspaces) takes real optimizer steps: keep what it changes.
  std::vector<torch::Tensor> keep_p, keep_m, keep_v;
  for (size_t i = 0; i < s.params.size(); ++i) {
    keep_p.push_back(s.params[i].detach().clone());
    keep_m.push_back(adam.exp_avg()[i].clone());
    keep_v.push_back(adam.exp_avg_sq()[i].clone());
  }
  auto restore = [&] {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < s.params.size(); ++i) {
      s.params[i].copy_(keep_p[i]);
      adam.exp_avg()[i].copy_(keep_m[i]);
      adam.exp_avg_sq()[i].copy_(keep_v[i]);
      s.steps[i].fill_(static_cast<double>(adam.steps()));
    }
    torch::cuda::synchronize();
  };
  torch::cuda::synchronize();
  auto stream = c10::cuda::getStreamFromPool(false, dev.index());
  try {
    c10::cuda::CUDAStreamGuard guard(stream);
    for (int i = 0; i < 3; ++i) {
      s.clear_grads();
      s.step();
    }
    stream.synchronize();
    s.clear_grads();  // backward then allocates the gradients from the graph's memory pool
    s.graph.capture_begin();
    try {
      s.step();
    } catch (...) {
      try {
        s.graph.capture_end();  // ends the capture, which failed
      } catch (...) {
      }
      throw;
    }
    s.graph.capture_end();
  } catch (...) {
    s.clear_grads();
    restore();
    throw;
  }
  restore();
}

CapturedStep::~CapturedStep() = default;

std::pair<double, double> CapturedStep::run(const StepInputs& in, double lr) {
  State& s = *s_;
  copy_into(s.in.pixel_values, in.pixel_values, "pixel values");
  copy_into(s.in.vae_eps, in.vae_eps, "VAE noise");
  copy_into(s.in.latents, in.latents, "latents");
  copy_into(s.in.noise, in.noise, "noise");
  copy_into(s.in.timesteps, in.timesteps, "timesteps");
  copy_into(s.in.encoder_hidden_states, in.encoder_hidden_states, "text embeddings");
  copy_into(s.in.pooled, in.pooled, "pooled text embeddings");
  copy_into(s.in.time_ids, in.time_ids, "time ids");
  if (in.prior != s.in.prior) fail(BIOESP_ERR_INTERNAL, "a captured training step got another prior split");
  s.lr.fill_(lr);
  s.graph.replay();
  auto out = torch::stack({s.loss.detach(), s.norm}).cpu();  // the step's one synchronisation
  const double loss = out[0].item<double>(), norm = out[1].item<double>();
  if (!std::isfinite(norm)) fail(BIOESP_ERR_INTERNAL, "training diverged: the gradient is not finite; lower the learning rate");
  s.tr.optimizer().set_steps(s.tr.optimizer().steps() + 1);
  return {loss, norm};
}

#else

struct CapturedStep::State {};

CapturedStep::CapturedStep(Trainer& tr, const StepInputs& first) {
  (void)tr, (void)first;
  fail(BIOESP_ERR_UNSUPPORTED, "this LibTorch has no CUDA graphs");
}

CapturedStep::~CapturedStep() = default;

std::pair<double, double> CapturedStep::run(const StepInputs& in, double lr) {
  (void)in, (void)lr;
  fail(BIOESP_ERR_UNSUPPORTED, "this LibTorch has no CUDA graphs");
}

#endif

}  // namespace bioesp::train
