#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/strings.h"
#include "io/safetensors.h"
#include "io/single_file.h"
#include "lora/adapter.h"
#include "models/checkpoint.h"
#include "models/layers.h"
#include "models/loader.h"

namespace bioesp::train {

namespace {

const char* const kAdapter = "bioesp-train";

bool matches_target(const std::string& module, const std::vector<std::string>& targets) {
  for (const auto& t : targets)
    if (module == t || ends_with(module, "." + t)) return true;
  return false;
}

}  // namespace

std::unique_ptr<sched::Scheduler> noise_schedule(const pipeline::StableDiffusion& sd) {
  auto s = sched::make_scheduler(sd.scheduler_config(), "ddpm");
  const auto& pt = s->config().prediction_type;
  if (pt != "epsilon" && pt != "v_prediction")
    fail(BIOESP_ERR_UNSUPPORTED, "training and evaluation support epsilon and v_prediction models, not '" + pt + "'");
  return s;
}

std::pair<torch::Tensor, torch::Tensor> posterior(pipeline::StableDiffusion& sd, const torch::Tensor& pixel_values) {
  torch::NoGradGuard no_grad;
  auto& vae = sd.vae();
  auto post = models::with_upcasting(
      *vae, sd.device(), [&](torch::ScalarType dt) { return vae->encode(pixel_values.to(sd.device(), dt)); },
      [](const models::Posterior& p) { return (torch::isfinite(p.mean).all() & torch::isfinite(p.std).all()).item<bool>(); });
  return {post.mean.to(torch::kFloat32), post.std.to(torch::kFloat32)};
}

torch::Tensor denoising_errors(pipeline::StableDiffusion& sd, const sched::Scheduler& noise_schedule,
                               const torch::Tensor& latents, const torch::Tensor& noise, const torch::Tensor& timesteps,
                               const pipeline::PromptEmbeds& text, const torch::Tensor& time_ids) {
  const int64_t B = latents.size(0);
  // The pipeline's compute dtype: a UNet's first parameter may be a weight held narrower (float16
  // as its file holds it, widened per call).
  const auto dtype = sd.dtype();
  const auto device = latents.device();
  auto batched = [&](const torch::Tensor& t) {
    auto x = t.to(device, dtype);
    if (x.size(0) != 1 || B == 1) return x;
    auto sizes = x.sizes().vec();
    sizes[0] = B;
    return x.expand(sizes);
  };
  if (!text.embeds.defined()) fail(BIOESP_ERR_INVALID_ARGUMENT, "a training step needs text embeddings or token ids");
  models::UNetExtra extra;
  if (sd.sdxl()) {
    if (!text.pooled.defined() || !time_ids.defined())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "an SDXL UNet trains on the pooled text embedding and the time ids too");
    extra.text_embeds = batched(text.pooled);
    extra.time_ids = batched(time_ids);
  }
  auto noisy = noise_schedule.add_noise(latents, noise, timesteps);
  auto pred = sd.unet()->forward(noisy.to(dtype), timesteps, batched(text.embeds), extra).to(torch::kFloat32);
  auto target = noise_schedule.config().prediction_type == "v_prediction"
                    ? noise_schedule.velocity(latents, noise, timesteps)
                    : noise;
  return (pred - target).pow(2).mean({1, 2, 3});
}

torch::Tensor training_time_ids(int original_width, int original_height, int64_t crop_top, int64_t crop_left,
                                int resolution) {
  return torch::tensor({static_cast<float>(original_height), static_cast<float>(original_width),
                        static_cast<float>(crop_top), static_cast<float>(crop_left), static_cast<float>(resolution),
                        static_cast<float>(resolution)})
      .unsqueeze(0);
}

Setup with_script_defaults(Setup s, bool sdxl) {
  if (s.adam.weight_decay < 0) s.adam.weight_decay = sdxl ? 1e-4 : 1e-2;
  if (s.text_encoder_weight_decay < 0) s.text_encoder_weight_decay = sdxl ? 1e-3 : s.adam.weight_decay;
  return s;
}

// ------------------------------------------------------------------------------------------------
// Trainer

Trainer::Trainer(pipeline::StableDiffusion& sd, const Setup& setup)
    : sd_(sd), s_(with_script_defaults(setup, sd.sdxl())), scaler_(setup.fp16_loss_scaling) {
  const Setup& s = s_;
  if (s.rank < 1) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA rank must be at least 1");
  if (!(s.alpha >= 0) || !std::isfinite(s.alpha)) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA alpha must be ≥ 0");
  if (!(s.dropout >= 0 && s.dropout < 1)) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA dropout must be in [0, 1)");
  if (!(s.prior_weight >= 0)) fail(BIOESP_ERR_INVALID_ARGUMENT, "prior loss weight must be ≥ 0");
  noise_ = train::noise_schedule(sd);
  if (!sd.text_encoder())
    fail(BIOESP_ERR_UNSUPPORTED, "an SDXL refiner (text_encoder_2 alone) does not train: train_dreambooth_lora_sdxl.py "
                                 "trains models with both text encoders");
  if (s.vae && (s.full || s.train_text_encoder))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "the VAE trains on its own: not with the UNet or the text encoder");
  auto add_all = [&](torch::nn::Module& m, const std::string& component) {
    for (auto& p : m.named_parameters()) {
      p.value().set_requires_grad(true);
      params_.emplace_back(component + "." + p.key(), p.value());
    }
  };
  if (s.vae) {
    add_all(*sd.vae(), "vae");
  } else if (s.full) {
    add_all(*sd.unet(), "unet");
    if (s.train_text_encoder)
      for (auto& [component, root] : text_encoders()) add_all(*root, component);
  } else {
    // PEFT's "gaussian" initialisation: down ~ N(0, 1/r), up = 0, so training starts at the base model.
    at::Generator gen = at::detail::createCPUGenerator(s.seed);
    add_adapters(*sd.unet(), "unet", s.unet_targets, gen);
    if (s.train_text_encoder)
      for (auto& [component, root] : text_encoders()) add_adapters(*root, component, s.text_targets, gen);
    if (params_.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no layer of the model matches the LoRA targets");
  }
  // The UNet's (or VAE's) tensors come first, then the text encoders'.
  std::vector<torch::Tensor> tensors;
  size_t unet = 0;
  for (auto& p : params_) {
    tensors.push_back(p.second);
    unet += !starts_with(p.first, "text_encoder");
  }
  std::vector<ParamGroup> groups{{unet, s.adam.weight_decay}};
  if (unet < tensors.size()) groups.push_back({tensors.size() - unet, s.text_encoder_weight_decay});
  adam_ = std::make_unique<AdamW>(tensors, s.adam, groups);
}

Trainer::~Trainer() {
  if (s_.full || s_.vae) {
    for (auto& p : params_) p.second.set_requires_grad(false);
  } else {
    lora::detach(*sd_.unet(), kAdapter);
    for (auto& [component, root] : text_encoders()) lora::detach(*root, kAdapter);
  }
}

std::vector<std::pair<std::string, torch::nn::Module*>> Trainer::text_encoders() {
  std::vector<std::pair<std::string, torch::nn::Module*>> out{{"text_encoder", sd_.text_encoder().get()}};
  if (sd_.sdxl()) out.emplace_back("text_encoder_2", sd_.text_encoder_2().get());
  return out;
}

void Trainer::add_adapters(torch::nn::Module& root, const std::string& component,
                           const std::vector<std::string>& targets, at::Generator& gen) {
  const double factor = (s_.alpha > 0 ? s_.alpha : s_.rank) / static_cast<double>(s_.rank);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  for (const auto& item : root.named_modules()) {
    if (!matches_target(item.key(), targets)) continue;
    models::Adapter a;
    a.name = kAdapter;
    a.factor = factor;
    a.dropout = s_.dropout;
    models::Adaptable* layer = models::adaptable(item.value());
    if (!layer) continue;
    // Linear [out, in] → down [r, in], up [out, r]; Conv2d [out, in, k, k] → down [r, in, k, k], up [out, r, 1, 1].
    std::vector<int64_t> down(layer->weight_shape().begin(), layer->weight_shape().end()), up(down.size(), 1);
    up[0] = down[0];
    up[1] = down[0] = s_.rank;
    a.down = at::normal(0.0, 1.0 / s_.rank, down, gen, opts);
    a.up = torch::zeros(up, opts);
    const auto device = sd_.device();
    a.down = a.down.to(device).requires_grad_(true);
    a.up = a.up.to(device).requires_grad_(true);
    const std::string base = component + "." + item.key();
    params_.emplace_back(base + ".lora.down.weight", a.down);
    params_.emplace_back(base + ".lora.up.weight", a.up);
    layer->adapters.push_back(std::move(a));
  }
}

std::pair<torch::Tensor, torch::Tensor> Trainer::encode(const torch::Tensor& pixel_values) {
  return posterior(sd_, pixel_values);
}

double Trainer::backward(const StepInputs& in, int accumulation, at::Generator* gen) {
  auto l = loss(in, gen);
  (l * (scaler_.scale() / accumulation)).backward();
  return l.item<double>();
}

torch::Tensor Trainer::loss(const StepInputs& in, at::Generator* gen) {
  return s_.vae ? vae_loss(in) : denoising_loss(in, gen);
}

// L1 reconstruction of a posterior sample plus the KL to N(0, 1), both summed per image as
// CompVis' autoencoder does, then divided by the pixel values so the rate does not depend on the
// resolution.
torch::Tensor Trainer::vae_loss(const StepInputs& in) {
  if (!in.pixel_values.defined() || !in.vae_eps.defined())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "a VAE training step needs pixel values and VAE noise");
  const auto device = sd_.device();
  auto x = in.pixel_values.to(device, torch::kFloat32);
  auto post = sd_.vae()->encode(x);
  auto recon = sd_.vae()->decode(post.sample(in.vae_eps.to(device, torch::kFloat32)));
  auto kl = 0.5 * (post.mean.pow(2) + post.std.pow(2) - 1 - 2 * torch::log(post.std));
  return ((recon - x).abs().sum() + s_.kl_weight * kl.sum()) / x.numel();
}

// The noise (or velocity) the UNet predicts for noised latents, against the truth: MSE, min-SNR
// weighted when asked, plus the class images' prior-preservation term.
torch::Tensor Trainer::denoising_loss(const StepInputs& in, at::Generator* gen) {
  const auto device = sd_.device();
  torch::Tensor latents = in.latents;
  if (!latents.defined()) {
    if (!in.pixel_values.defined() || !in.vae_eps.defined())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "a training step needs pixel values and VAE noise, or latents");
    auto [mean, std] = encode(in.pixel_values);
    latents = (mean + std * in.vae_eps.to(device, torch::kFloat32)) * sd_.vae()->config().scaling_factor;
  }
  latents = latents.to(device, torch::kFloat32);
  const int64_t B = latents.size(0);
  if (in.noise.sizes() != latents.sizes() || in.timesteps.numel() != B)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "noise and timesteps must match the batch of latents");
  if (in.prior < 0 || in.prior >= B) fail(BIOESP_ERR_INVALID_ARGUMENT, "prior images must leave instance images");
  auto noise = in.noise.to(device, torch::kFloat32);
  auto t = in.timesteps.to(device, torch::kLong);

  std::optional<models::DropoutScope> dropout;
  if (gen && s_.dropout > 0) dropout.emplace(*gen);
  // SDXL's script reads the trained encoders as its encode_prompt does: penultimate hidden
  // states of both, the second's pooled projection.
  const pipeline::PromptEmbeds text = in.input_ids.defined() ? sd_.encode_tokens(in.input_ids, in.input_ids_2, 0)
                                                             : pipeline::PromptEmbeds{in.encoder_hidden_states, in.pooled};
  torch::Tensor err;
  {
    std::optional<models::CheckpointScope> checkpointing;
    if (s_.gradient_checkpointing) checkpointing.emplace();
    err = denoising_errors(sd_, *noise_, latents, noise, t, text, in.time_ids);
  }
  const int64_t n = B - in.prior;
  auto e = err.slice(0, 0, n);
  torch::Tensor loss;
  if (s_.snr_gamma > 0) {
    // min-SNR-γ (Hang et al. 2023) as diffusers' scripts weight it.
    auto ac = noise_->alphas_cumprod_on(device).index_select(0, t.slice(0, 0, n));
    auto snr = ac / (1 - ac);
    auto w = torch::minimum(snr, torch::full_like(snr, s_.snr_gamma));
    w = noise_->config().prediction_type == "v_prediction" ? w / (snr + 1) : w / snr;
    loss = (e * w).mean();
  } else {
    loss = e.mean();
  }
  if (in.prior > 0) loss = loss + s_.prior_weight * err.slice(0, n).mean();
  return loss;
}

double Trainer::update(double lr, double text_encoder_lr) {
  const auto& tensors = adam_->params();
  scaler_.unscale(tensors);
  const double norm = clip_grad_norm(tensors, s_.max_grad_norm);
  if (!std::isfinite(norm)) {
    adam_->zero_grad();
    if (scaler_.enabled()) {
      scaler_.update(false);
      return norm;
    }
    fail(BIOESP_ERR_INTERNAL, "training diverged: the gradient is not finite; lower the learning rate");
  }
  adam_->step(adam_->groups().size() == 1 ? std::vector<double>{lr} : std::vector<double>{lr, text_encoder_lr});
  adam_->zero_grad();
  scaler_.update(true);
  return norm;
}

void Trainer::save_lora(const std::string& path, const std::vector<std::pair<std::string, std::string>>& metadata,
                        bool kohya) const {
  if (s_.full || s_.vae) fail(BIOESP_ERR_INVALID_ARGUMENT, "a full fine-tune has no LoRA to save");
  const double factor = (s_.alpha > 0 ? s_.alpha : s_.rank) / static_cast<double>(s_.rank);
  // kohya's SDXL files name the first encoder's layers lora_te1_ and the UNet's by their original
  // (SGM) names; a layer without one keeps diffusers' name, which loaders read as well.
  std::map<std::string, std::string> original;
  if (kohya && sd_.sdxl()) {
    std::vector<std::string> unet;  // all of them: the renaming reads the layout from them
    for (const auto& item : sd_.unet()->named_modules()) unet.push_back(item.key());
    for (auto& [d, o] : io::ldm_unet_names(unet)) original[d] = o;
  }
  auto kohya_base = [&](const std::string& component, const std::string& module) {
    if (!sd_.sdxl()) return lora::kohya_name(component, module);
    if (component == "text_encoder") return "lora_te1_" + lora::kohya_name(component, module).substr(8);
    auto it = component == "unet" ? original.find(module) : original.end();
    return lora::kohya_name(component, it == original.end() ? module : it->second);
  };
  std::vector<io::Tensor> tensors;
  for (const auto& [name, t] : params_) {
    std::string key = name, component;
    const bool down = take_suffix(key, ".lora.down.weight");
    if (!down) take_suffix(key, ".lora.up.weight");
    const size_t dot = key.find('.');
    component = key.substr(0, dot);
    const std::string module = key.substr(dot + 1);
    if (kohya) {
      const std::string base = kohya_base(component, module);
      tensors.push_back(models::from_torch(base + (down ? ".lora_down.weight" : ".lora_up.weight"), t));
      if (down)
        tensors.push_back(models::from_torch(base + ".alpha", torch::tensor(static_cast<float>(factor * s_.rank))));
    } else {
      // diffusers' files carry no alpha: fold alpha / rank into up so every loader agrees.
      const std::string suffix = component == "unet" ? (down ? ".lora.down.weight" : ".lora.up.weight")
                                                     : (down ? ".lora_linear_layer.down.weight" : ".lora_linear_layer.up.weight");
      tensors.push_back(models::from_torch(component + "." + module + suffix, down || factor == 1.0 ? t : t * factor));
    }
  }
  std::sort(tensors.begin(), tensors.end(), [](const io::Tensor& a, const io::Tensor& b) { return a.name < b.name; });
  io::write_safetensors(path, tensors, metadata);
}

}  // namespace bioesp::train
