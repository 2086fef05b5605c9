#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/strings.h"
#include "image/image_io.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "lora/adapter.h"
#include "models/checkpoint.h"
#include "models/layers.h"
#include "models/loader.h"
#include "train/captured_step.h"
#include "train/dataset.h"

namespace bioesp::train {

namespace {

const char* const kAdapter = "bioesp-train";

bool matches_target(const std::string& module, const std::vector<std::string>& targets) {
  for (const auto& t : targets)
    if (module == t || ends_with(module, "." + t)) return true;
  return false;
}

// The model's float dtype (of its UNet weights).
torch::ScalarType dtype_of(torch::nn::Module& m) { return m.parameters().front().scalar_type(); }

}  // namespace

// ------------------------------------------------------------------------------------------------
// Trainer

Trainer::Trainer(pipeline::StableDiffusion& sd, const Setup& s) : sd_(sd), s_(s), scaler_(s.fp16_loss_scaling) {
  if (s.rank < 1) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA rank must be at least 1");
  if (!(s.alpha >= 0) || !std::isfinite(s.alpha)) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA alpha must be ≥ 0");
  if (!(s.dropout >= 0 && s.dropout < 1)) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA dropout must be in [0, 1)");
  if (!(s.prior_weight >= 0)) fail(BIOESP_ERR_INVALID_ARGUMENT, "prior loss weight must be ≥ 0");
  if (!sd.unet()->config().addition_embed_type.empty())
    fail(BIOESP_ERR_UNSUPPORTED, "training SDXL models (UNet with " + sd.unet()->config().addition_embed_type +
                                     " conditioning) is not supported yet; SD 1.x and 2.x are");
  noise_ = sched::make_scheduler(sd.scheduler_config(), "ddpm");
  const auto& pt = noise_->config().prediction_type;
  if (pt != "epsilon" && pt != "v_prediction")
    fail(BIOESP_ERR_UNSUPPORTED, "training supports epsilon and v_prediction models, not '" + pt + "'");
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
    if (s.train_text_encoder) add_all(*sd.text_encoder(), "text_encoder");
  } else {
    // PEFT's "gaussian" initialisation: down ~ N(0, 1/r), up = 0, so training starts at the base model.
    at::Generator gen = at::detail::createCPUGenerator(s.seed);
    add_adapters(*sd.unet(), "unet", s.unet_targets, gen);
    if (s.train_text_encoder) add_adapters(*sd.text_encoder(), "text_encoder", s.text_targets, gen);
    if (params_.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no layer of the model matches the LoRA targets");
  }
  std::vector<torch::Tensor> tensors;
  for (auto& p : params_) tensors.push_back(p.second);
  adam_ = std::make_unique<AdamW>(tensors, s.adam);
}

Trainer::~Trainer() {
  if (s_.full || s_.vae) {
    for (auto& p : params_) p.second.set_requires_grad(false);
  } else {
    lora::detach(*sd_.unet(), kAdapter);
    lora::detach(*sd_.text_encoder(), kAdapter);
  }
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
  torch::NoGradGuard no_grad;
  auto& vae = sd_.vae();
  auto post = models::with_upcasting(
      *vae, sd_.device(), [&](torch::ScalarType dt) { return vae->encode(pixel_values.to(sd_.device(), dt)); },
      [](const models::Posterior& p) { return (torch::isfinite(p.mean).all() & torch::isfinite(p.std).all()).item<bool>(); });
  return {post.mean.to(torch::kFloat32), post.std.to(torch::kFloat32)};
}

double Trainer::backward(const StepInputs& in, int accumulation, at::Generator* gen) {
  auto l = loss(in, gen);
  (l * (scaler_.scale() / accumulation)).backward();
  return l.item<double>();
}

torch::Tensor Trainer::loss(const StepInputs& in, at::Generator* gen) {
  const auto device = sd_.device();
  if (s_.vae) {
    // L1 reconstruction of a posterior sample plus the KL to N(0, 1), both summed per image as
    // CompVis' autoencoder does, then divided by the pixel values so the rate does not depend on
    // the resolution.
    if (!in.pixel_values.defined() || !in.vae_eps.defined())
      fail(BIOESP_ERR_INVALID_ARGUMENT, "a VAE training step needs pixel values and VAE noise");
    auto x = in.pixel_values.to(device, torch::kFloat32);
    auto post = sd_.vae()->encode(x);
    auto recon = sd_.vae()->decode(post.sample(in.vae_eps.to(device, torch::kFloat32)));
    auto kl = 0.5 * (post.mean.pow(2) + post.std.pow(2) - 1 - 2 * torch::log(post.std));
    return ((recon - x).abs().sum() + s_.kl_weight * kl.sum()) / x.numel();
  }
  const auto dtype = dtype_of(*sd_.unet());
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
  auto noisy = noise_->add_noise(latents, noise, t);

  std::optional<models::DropoutScope> dropout;
  if (gen && s_.dropout > 0) dropout.emplace(*gen);
  torch::Tensor ehs;
  if (in.input_ids.defined()) {
    ehs = sd_.text_encoder()->encode(in.input_ids.to(device), 0);
  } else {
    ehs = in.encoder_hidden_states.to(device);
  }
  if (ehs.size(0) == 1 && B > 1) ehs = ehs.expand({B, -1, -1});
  torch::Tensor pred;
  {
    std::optional<models::CheckpointScope> checkpointing;
    if (s_.gradient_checkpointing) checkpointing.emplace();
    pred = sd_.unet()->forward(noisy.to(dtype), t, ehs.to(dtype)).to(torch::kFloat32);
  }
  auto target = noise_->config().prediction_type == "v_prediction" ? noise_->velocity(latents, noise, t) : noise;

  const int64_t n = B - in.prior;
  auto p = pred.slice(0, 0, n), y = target.slice(0, 0, n);
  torch::Tensor loss;
  if (s_.snr_gamma > 0) {
    // min-SNR-γ (Hang et al. 2023) as diffusers' scripts weight it.
    auto ac = noise_->alphas_cumprod_on(device).index_select(0, t.slice(0, 0, n));
    auto snr = ac / (1 - ac);
    auto w = torch::minimum(snr, torch::full_like(snr, s_.snr_gamma));
    w = noise_->config().prediction_type == "v_prediction" ? w / (snr + 1) : w / snr;
    loss = ((p - y).pow(2).mean({1, 2, 3}) * w).mean();
  } else {
    loss = torch::mse_loss(p, y);
  }
  if (in.prior > 0) loss = loss + s_.prior_weight * torch::mse_loss(pred.slice(0, n), target.slice(0, n));
  return loss;
}

double Trainer::update(double lr) {
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
  adam_->step(lr);
  adam_->zero_grad();
  scaler_.update(true);
  return norm;
}

void Trainer::save_lora(const std::string& path, const std::vector<std::pair<std::string, std::string>>& metadata,
                        bool kohya) const {
  if (s_.full || s_.vae) fail(BIOESP_ERR_INVALID_ARGUMENT, "a full fine-tune has no LoRA to save");
  const double factor = (s_.alpha > 0 ? s_.alpha : s_.rank) / static_cast<double>(s_.rank);
  std::vector<io::Tensor> tensors;
  for (const auto& [name, t] : params_) {
    std::string key = name, component;
    const bool down = take_suffix(key, ".lora.down.weight");
    if (!down) take_suffix(key, ".lora.up.weight");
    const size_t dot = key.find('.');
    component = key.substr(0, dot);
    const std::string module = key.substr(dot + 1);
    if (kohya) {
      const std::string base = lora::kohya_name(component, module);
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

// ------------------------------------------------------------------------------------------------
// A full run

std::string vary_caption(const std::string& caption, double tag_dropout, bool shuffle, double caption_dropout,
                         at::Generator& gen) {
  auto draw = [&] { return at::rand({1}, gen).item<double>(); };
  if (caption_dropout > 0 && draw() < caption_dropout) return "";
  std::vector<std::string> tags;
  for (size_t start = 0; start <= caption.size();) {
    size_t comma = std::min(caption.find(',', start), caption.size());
    std::string t = caption.substr(start, comma - start);
    t.erase(0, t.find_first_not_of(' '));
    t.erase(t.find_last_not_of(' ') + 1);
    if (!t.empty()) tags.push_back(t);
    start = comma + 1;
  }
  if (tags.empty()) return caption;
  std::vector<std::string> kept;
  for (const auto& t : tags)
    if (!(tag_dropout > 0 && draw() < tag_dropout)) kept.push_back(t);
  if (kept.empty()) kept.push_back(tags[static_cast<size_t>(draw() * tags.size()) % tags.size()]);
  if (shuffle)
    for (size_t i = kept.size(); i > 1; --i) std::swap(kept[i - 1], kept[static_cast<size_t>(draw() * i) % i]);
  std::string out;
  for (const auto& t : kept) out += (out.empty() ? "" : ", ") + t;
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;
using Meta = std::vector<std::pair<std::string, std::string>>;

std::string meta_get(const Meta& m, const std::string& key) {
  for (const auto& [k, v] : m)
    if (k == key) return v;
  fail(BIOESP_ERR_FORMAT, "checkpoint lacks '" + key + "'");
}

// Identifies the base model: its UNet's parameter names and shapes and a checksum of two weights.
std::string model_fingerprint(pipeline::StableDiffusion& sd) {
  uint64_t h = kFnv1aSeed;
  torch::NoGradGuard no_grad;
  for (const auto& p : sd.unet()->named_parameters()) {
    h = fnv1a(p.key(), h);
    for (auto d : p.value().sizes()) h = fnv1a(std::to_string(d), h);
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%016llx:%.6e:%.6e", static_cast<unsigned long long>(h),
                sd.unet()->conv_in->weight.to(torch::kDouble).sum().item<double>(),
                sd.unet()->conv_out->weight.to(torch::kDouble).abs().sum().item<double>());
  return buf;
}

const char* mode_name(const Setup& s) { return s.vae ? "vae" : s.full ? "full" : "lora"; }

std::string shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string format_step(const char* pattern, int step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, step);
  return buf;
}

// Where the data is in its shuffled epochs.
struct Cursor {
  torch::Tensor order;  // a permutation of the examples
  int64_t position = 0;
  int64_t epoch = 0;
  std::vector<int64_t> next(int64_t count, int64_t size, at::Generator& gen) {
    std::vector<int64_t> out;
    while (static_cast<int64_t>(out.size()) < count) {
      if (!order.defined() || position >= order.numel()) {
        if (order.defined()) ++epoch;
        order = at::randperm(size, gen, torch::kLong);
        position = 0;
      }
      out.push_back(order[position++].item<int64_t>());
    }
    return out;
  }
};

struct RunState {
  int step = 0;
  Cursor data, prior;
};

// Checkpoint file names in `dir`, oldest first (the step is zero-padded).
std::vector<std::string> checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!io::is_directory(dir)) return out;
  for (const auto& n : io::list_directory(dir))
    if (starts_with(n, "checkpoint-") && ends_with(n, ".safetensors")) out.push_back(n);
  return out;
}

void save_checkpoint(const std::string& dir, Trainer& tr, const RunState& st, at::Generator& gen,
                     const std::string& fingerprint, int kept, const io::Logger& log) {
  std::vector<io::Tensor> tensors;
  auto& adam = tr.optimizer();
  for (size_t i = 0; i < tr.parameters().size(); ++i) {
    const auto& [name, t] = tr.parameters()[i];
    tensors.push_back(models::from_torch("param/" + name, t));
    tensors.push_back(models::from_torch("exp_avg/" + name, adam.exp_avg()[i]));
    tensors.push_back(models::from_torch("exp_avg_sq/" + name, adam.exp_avg_sq()[i]));
  }
  tensors.push_back(models::from_torch("rng", gen.get_state()));
  if (st.data.order.defined()) tensors.push_back(models::from_torch("order/data", st.data.order));
  if (st.prior.order.defined()) tensors.push_back(models::from_torch("order/prior", st.prior.order));
  const auto& s = tr.setup();
  Meta meta{{"bioesp.checkpoint", "1"},
            {"step", std::to_string(st.step)},
            {"optimizer_steps", std::to_string(adam.steps())},
            {"data.position", std::to_string(st.data.position)},
            {"data.epoch", std::to_string(st.data.epoch)},
            {"prior.position", std::to_string(st.prior.position)},
            {"prior.epoch", std::to_string(st.prior.epoch)},
            {"model", fingerprint},
            {"mode", mode_name(s)},
            {"rank", std::to_string(s.rank)},
            {"scaler.scale", std::to_string(tr.scaler().state_scale())},
            {"scaler.growth", std::to_string(tr.scaler().state_growth())}};
  io::make_directories(dir);
  const std::string path = dir + "/" + format_step("checkpoint-%06d.safetensors", st.step);
  io::write_safetensors(path, tensors, meta);  // atomic: a failure leaves the previous ones intact
  if (log) log(BIOESP_LOG_INFO, "checkpoint " + path);
  auto all = checkpoints(dir);
  for (size_t i = 0; kept > 0 && i + kept < all.size(); ++i) std::remove((dir + "/" + all[i]).c_str());
}

std::string latest_checkpoint(const std::string& dir) {
  auto all = checkpoints(dir);
  return all.empty() ? "" : dir + "/" + all.back();
}

void load_checkpoint(const std::string& path, Trainer& tr, RunState& st, at::Generator& gen,
                     const std::string& fingerprint) {
  auto set = io::read_safetensors(path);
  const auto& s = tr.setup();
  if (meta_get(set.metadata, "mode") != mode_name(s))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint is from a " + meta_get(set.metadata, "mode") + " training");
  if (meta_get(set.metadata, "model") != fingerprint)
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint was trained from another base model");
  if (!s.full && !s.vae && meta_get(set.metadata, "rank") != std::to_string(s.rank))
    fail(BIOESP_ERR_MISMATCH, path + ": this checkpoint has LoRA rank " + meta_get(set.metadata, "rank") + ", not " +
                                  std::to_string(s.rank));
  auto get = [&](const std::string& name, const torch::Tensor& like) {
    const io::Tensor* t = set.find("", name);
    if (!t) fail(BIOESP_ERR_MISMATCH, path + ": lacks " + name + " (other LoRA targets?)");
    auto v = models::to_torch(*t);
    if (v.sizes() != like.sizes())
      fail(BIOESP_ERR_MISMATCH, path + ": " + name + " has another shape than this training's");
    return v;
  };
  size_t expected = 0;
  for (const auto& t : set.tensors) expected += starts_with(t.name, "param/");
  if (expected != tr.parameters().size())
    fail(BIOESP_ERR_MISMATCH, path + ": it trains " + std::to_string(expected) + " tensors, this run " +
                                  std::to_string(tr.parameters().size()) + " (other targets or text-encoder setting?)");
  torch::NoGradGuard no_grad;
  auto& adam = tr.optimizer();
  for (size_t i = 0; i < tr.parameters().size(); ++i) {
    const auto& [name, p] = tr.parameters()[i];
    const_cast<torch::Tensor&>(p).copy_(get("param/" + name, p));
    adam.exp_avg()[i].copy_(get("exp_avg/" + name, p));
    adam.exp_avg_sq()[i].copy_(get("exp_avg_sq/" + name, p));
  }
  adam.set_steps(std::stoll(meta_get(set.metadata, "optimizer_steps")));
  const io::Tensor* rng = set.find("", "rng");
  if (!rng) fail(BIOESP_ERR_FORMAT, path + ": lacks the random generator state");
  gen.set_state(models::to_torch(*rng).clone());
  st.step = std::stoi(meta_get(set.metadata, "step"));
  for (auto [cursor, key] : {std::pair<Cursor*, std::string>{&st.data, "data"}, {&st.prior, "prior"}}) {
    if (const io::Tensor* o = set.find("", "order/" + key)) cursor->order = models::to_torch(*o).clone();
    cursor->position = std::stoll(meta_get(set.metadata, key + ".position"));
    cursor->epoch = std::stoll(meta_get(set.metadata, key + ".epoch"));
  }
  tr.scaler().restore(std::stod(meta_get(set.metadata, "scaler.scale")), std::stoi(meta_get(set.metadata, "scaler.growth")));
}

// As the Stable Diffusion authors chose 0.18215: the reciprocal of the standard deviation of
// posterior samples of the training images, so the UNet sees latents of unit variance.
void set_scaling_factor(const std::string& out, pipeline::StableDiffusion& sd, const std::vector<Example>& examples,
                        int resolution, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<torch::Tensor> samples;
  for (size_t i = 0; i < examples.size(); i += 16) {
    std::vector<torch::Tensor> px;
    for (size_t k = i; k < std::min(examples.size(), i + 16); ++k) px.push_back(pixels(examples[k], resolution, false, false, gen));
    auto post = sd.vae()->encode(torch::stack(px).to(sd.device()));
    samples.push_back(post.sample(at::randn(post.mean.sizes(), gen).to(sd.device())).cpu());
  }
  const double std = torch::cat(samples).std().item<double>();
  if (!(std > 0) || !std::isfinite(std)) fail(BIOESP_ERR_INTERNAL, "the trained VAE's latents have no spread; train longer or lower the rate");
  const std::string path = out + "/vae/config.json";
  auto j = nlohmann::ordered_json::parse(io::read_text_file(path));
  j["scaling_factor"] = 1.0 / std;
  io::write_text_file(path, j.dump(2) + "\n");
}

void check_options(const RunOptions& o) {
  auto bad = [](const std::string& m) { fail(BIOESP_ERR_INVALID_ARGUMENT, m); };
  if (o.model.empty()) bad("no model given");
  if (o.data.empty()) bad("no instance data folder given");
  if (o.out.empty()) bad("no output folder given");
  if (o.resolution < 8 || o.resolution % 8) bad("resolution must be a positive multiple of 8 (got " + std::to_string(o.resolution) + ")");
  if (o.steps < 0 || o.epochs < 1) bad("steps must be ≥ 0 and epochs ≥ 1");
  if (o.batch < 1 || o.grad_accum < 1) bad("batch size and gradient accumulation must be ≥ 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) bad("learning rate must be a positive number");
  if (o.mixed_precision != "no" && o.mixed_precision != "fp16" && o.mixed_precision != "bf16")
    bad("mixed precision is no, fp16 or bf16 (got '" + o.mixed_precision + "')");
  if (o.mixed_precision == "fp16" && o.device.is_cpu()) bad("fp16 training needs CUDA; on the CPU use bf16 or no");
  if ((o.setup.full || o.setup.vae) && o.mixed_precision != "no")
    bad("full and VAE training keep float32 weights; use --mixed-precision no (LoRA trains in fp16/bf16)");
  for (double p : {o.tag_dropout, o.caption_dropout})
    if (!(p >= 0 && p < 1)) bad("tag and caption dropout are probabilities in [0, 1)");
  if (o.save_dtype != torch::kFloat32 && o.save_dtype != torch::kFloat16 && o.save_dtype != torch::kBFloat16)
    bad("model folders are saved in float32, float16 or bfloat16");
  if (!o.class_data.empty() && o.class_prompt.empty()) bad("a class folder needs a class prompt");
  if (o.setup.vae && (o.cache_latents || !o.class_data.empty())) bad("VAE training takes neither cached latents nor class images");
  if (o.checkpoint_every < 0 || o.validation_every < 0) bad("checkpoint and validation intervals must be ≥ 0");
  validate(o.lr_schedule);
}

}  // namespace

std::string run(const RunOptions& o) {
  check_options(o);
  auto report = [&](Progress p) {
    if (o.progress && !o.progress(p)) return false;
    return true;
  };
  auto stage = [&](const char* name, int done, int total) {
    Progress p;
    p.stage = name, p.step = done, p.total = total;
    if (!report(p)) fail(BIOESP_ERR_CANCELLED, "training cancelled");
  };
  stage("prepare", 0, 0);
  const std::string config_dir = io::is_directory(o.model) ? o.model : o.config_dir;
  if (config_dir.empty() || !io::is_file(config_dir + "/scheduler/scheduler_config.json"))
    fail(BIOESP_ERR_NOT_FOUND, (config_dir.empty() ? o.model : config_dir) +
                                   ": training needs the model's noise schedule (scheduler/scheduler_config.json)");
  pipeline::LoadOptions lo;
  lo.config_dir = o.config_dir;
  lo.device = o.device;
  lo.dtype = o.mixed_precision == "fp16" ? torch::kFloat16 : o.mixed_precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  lo.log = o.log;
  auto sd = pipeline::StableDiffusion::load(o.model, lo);

  DatasetOptions dopt;
  dopt.resolution = o.resolution;
  dopt.prompt = o.prompt;
  dopt.use_captions = o.use_captions;
  auto examples = load_examples(o.data, dopt, o.log);

  // One image with the model as it is now (class images, validation), written as PNG.
  auto draw = [&](const std::string& prompt, uint64_t seed, int size, const std::string& path) {
    pipeline::GenerateOptions g;
    g.prompts = {prompt};
    g.steps = o.validation_steps;
    g.seed = seed;
    g.width = g.height = size;
    image::write_png(path, pipeline::to_images(sd->generate(g))[0]);
  };
  io::make_directories(o.out);
  const std::string ckpt_dir = o.out + "/checkpoints";
  std::vector<Example> prior;
  if (!o.class_data.empty()) {
    io::make_directories(o.class_data);
    int have = 0;
    for (const auto& n : io::list_directory(o.class_data)) have += image::is_image_file_name(n);
    // Missing class images come from the base model itself, as diffusers' script makes them.
    for (int i = have; i < o.num_class_images; ++i) {
      stage("class-images", i - have, o.num_class_images - have);
      draw(o.class_prompt, o.setup.seed + static_cast<uint64_t>(i), o.resolution, o.class_data + "/" + format_step("class-%05d.png", i));
    }
    DatasetOptions copt = dopt;
    copt.prompt = o.class_prompt;
    copt.use_captions = false;
    prior = load_examples(o.class_data, copt, nullptr);
  }

  Setup setup = o.setup;
  setup.fp16_loss_scaling = o.mixed_precision == "fp16";
  Trainer tr(*sd, setup);
  const std::string fingerprint = model_fingerprint(*sd);
  const int64_t per_epoch = (static_cast<int64_t>(examples.size()) + o.batch - 1) / o.batch;
  const int total = o.steps > 0 ? o.steps : static_cast<int>((per_epoch * o.epochs + o.grad_accum - 1) / o.grad_accum);
  LrSchedule schedule = o.lr_schedule;
  schedule.total = total;
  const double base_lr = o.scale_lr ? o.lr * o.batch * o.grad_accum : o.lr;

  at::Generator gen = at::detail::createCPUGenerator(setup.seed);
  RunState st;
  if (o.resume) {
    std::string path = latest_checkpoint(ckpt_dir);
    if (path.empty()) {
      if (o.log)
        o.log(BIOESP_LOG_INFO, "no checkpoint in " + ckpt_dir + "; starting from the beginning");
    } else {
      load_checkpoint(path, tr, st, gen, fingerprint);
      if (o.log) o.log(BIOESP_LOG_INFO, "resuming from " + path + " at step " + std::to_string(st.step));
    }
  }

  // Frozen text encoder: each caption is encoded once (varied captions, too many to keep, each
  // time).
  const bool varied = o.tag_dropout > 0 || o.shuffle_tags || o.caption_dropout > 0;
  std::map<std::string, torch::Tensor> text_cache;
  auto ids_of = [&](const std::string& caption) {
    auto e = sd->tokenizer().encode(caption);
    if (e.truncated && o.log) o.log(BIOESP_LOG_WARNING, "caption cut to the text encoder's 77 tokens; dropped: " + e.removed);
    return torch::tensor(e.ids, torch::kLong);
  };
  auto embed = [&](const std::string& caption) {
    auto it = text_cache.find(caption);
    if (it != text_cache.end()) return it->second;
    torch::NoGradGuard no_grad;
    auto h = sd->text_encoder()->encode(ids_of(caption).unsqueeze(0).to(sd->device()), 0).squeeze(0);
    return varied ? h : text_cache[caption] = h;
  };
  // Cached latents: the VAE posterior of each centre crop, once.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> cached, cached_prior;
  if (o.cache_latents) {
    if ((o.random_crop || o.flip) && o.log)
      o.log(BIOESP_LOG_WARNING, "cached latents fix each image's crop and orientation; random crop and flip are off");
    at::Generator unused = at::detail::createCPUGenerator(0);
    for (auto* set : {&examples, &prior}) {
      auto& dst = set == &examples ? cached : cached_prior;
      for (size_t i = 0; i < set->size(); ++i) {
        stage("cache-latents", static_cast<int>(i), static_cast<int>(set->size()));
        auto post = tr.encode(pixels((*set)[i], o.resolution, false, false, unused).unsqueeze(0));
        dst.emplace_back(post.first.cpu(), post.second.cpu());
      }
    }
  }

  const std::string log_path = o.out + "/train_log.jsonl";
  std::string log_lines;
  if (st.step > 0 && io::is_file(log_path)) {  // keep the history up to the checkpoint
    std::istringstream in(io::read_text_file(log_path));
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("step", 1 << 30) <= st.step) log_lines += line + "\n";
    }
  }
  auto write_log = [&] { io::write_text_file(log_path, log_lines); };

  const double scaling = sd->vae()->config().scaling_factor;
  const int64_t T = tr.noise_schedule().config().num_train_timesteps;
  if (o.resolution % sd->latent_factor())
    fail(BIOESP_ERR_INVALID_ARGUMENT, "resolution must be a multiple of " + std::to_string(sd->latent_factor()) + " for this VAE");
  const int64_t lh = o.resolution / sd->latent_factor();
  const int64_t C = sd->vae()->config().latent_channels;
  auto validate_image = [&](int step) {
    if (o.validation_prompt.empty() || setup.vae) return;  // the UNet does not change
    stage("validate", step, total);
    io::make_directories(o.out + "/validation");
    draw(o.validation_prompt, setup.seed, 0, o.out + "/validation/" + format_step("step-%06d.png", step));
  };

  // On CUDA with BIOESP_CUDA_GRAPHS=1, a step runs as one captured graph where the setup allows
  // (see CapturedStep). Opt-in while its final losses differ from eager training's by more than
  // eager runs in different precisions differ from each other (docs/performance.md).
  std::unique_ptr<CapturedStep> captured;
  const char* graphs = std::getenv("BIOESP_CUDA_GRAPHS");
  bool try_capture = sd->device().is_cuda() && graphs && std::string(graphs) == "1";
  auto capture = [&](const StepInputs& in) {
    try_capture = false;
    const std::string why = CapturedStep::unsupported(tr, o.grad_accum);
    if (!why.empty()) {
      if (o.log) o.log(BIOESP_LOG_INFO, "training steps run eagerly: " + why);
      return;
    }
    try {
      captured = std::make_unique<CapturedStep>(tr, in);
      if (o.log) o.log(BIOESP_LOG_INFO, "training steps run as a captured CUDA graph");
    } catch (const std::exception& e) {
      if (o.log) o.log(BIOESP_LOG_WARNING, std::string("capturing the training step failed; training eagerly: ") + e.what());
    }
  };

  auto started = Clock::now();
  const int first = st.step;
  while (st.step < total) {
    const double lr = learning_rate(schedule, base_lr, st.step);
    double loss = 0, norm = 0;
    for (int a = 0; a < o.grad_accum; ++a) {
      StepInputs in;
      std::vector<const Example*> batch;
      std::vector<std::pair<torch::Tensor, torch::Tensor>> posts;
      for (int64_t i : st.data.next(o.batch, static_cast<int64_t>(examples.size()), gen)) {
        batch.push_back(&examples[i]);
        if (o.cache_latents) posts.push_back(cached[i]);
      }
      if (!prior.empty()) {
        for (int64_t i : st.prior.next(o.batch, static_cast<int64_t>(prior.size()), gen)) {
          batch.push_back(&prior[i]);
          if (o.cache_latents) posts.push_back(cached_prior[i]);
        }
        in.prior = o.batch;
      }
      const int64_t B = static_cast<int64_t>(batch.size());
      if (o.cache_latents) {
        std::vector<torch::Tensor> mean, std;
        for (auto& p : posts) mean.push_back(p.first), std.push_back(p.second);
        auto eps = at::randn({B, C, lh, lh}, gen);
        in.latents = (torch::cat(mean) + torch::cat(std) * eps) * scaling;
      } else {
        std::vector<torch::Tensor> px;
        for (const auto* e : batch) px.push_back(pixels(*e, o.resolution, o.random_crop, o.flip, gen));
        in.pixel_values = torch::stack(px);
        in.vae_eps = at::randn({B, C, lh, lh}, gen);
      }
      if (!setup.vae) {
        in.noise = at::randn({B, C, lh, lh}, gen);
        if (setup.noise_offset > 0) in.noise = in.noise + setup.noise_offset * at::randn({B, C, 1, 1}, gen);
        in.timesteps = at::randint(0, T, {B}, gen, torch::kLong);
        std::vector<std::string> captions;
        for (const auto* e : batch)
          captions.push_back(varied ? vary_caption(e->caption, o.tag_dropout, o.shuffle_tags, o.caption_dropout, gen) : e->caption);
        std::vector<torch::Tensor> t;
        for (const auto& c : captions) t.push_back(setup.train_text_encoder ? ids_of(c) : embed(c));
        (setup.train_text_encoder ? in.input_ids : in.encoder_hidden_states) = torch::stack(t);
      }
      if (try_capture) capture(in);
      if (captured) std::tie(loss, norm) = captured->run(in, lr);
      else loss += tr.backward(in, o.grad_accum, &gen) / o.grad_accum;
    }
    if (!captured) norm = tr.update(lr);
    ++st.step;

    Progress p;
    p.stage = "train";
    p.step = st.step, p.total = total, p.loss = loss, p.lr = lr;
    p.seconds_per_step = std::chrono::duration<double>(Clock::now() - started).count() / (st.step - first);
    p.eta_seconds = p.seconds_per_step * (total - st.step);
    char line[160];
    std::snprintf(line, sizeof line, "{\"step\": %d, \"loss\": %.6g, \"lr\": %.6g, \"grad_norm\": %.6g}\n", st.step, loss, lr, norm);
    log_lines += line;
    const bool go_on = report(p);
    if (!go_on || (o.checkpoint_every > 0 && st.step % o.checkpoint_every == 0 && st.step < total)) {
      save_checkpoint(ckpt_dir, tr, st, gen, fingerprint, o.checkpoints_kept, o.log);
      write_log();
    }
    if (!go_on) fail(BIOESP_ERR_CANCELLED, "training cancelled at step " + std::to_string(st.step) + "; a checkpoint was written, --resume continues");
    if (o.validation_every > 0 && st.step % o.validation_every == 0 && st.step < total) validate_image(st.step);
  }

  stage("save", total, total);
  write_log();
  // The dataset's credits travel with the result: `bioesp push` lists them in the model card.
  if (io::is_file(o.data + "/manifest.jsonl")) io::copy_file(o.data + "/manifest.jsonl", o.out + "/dataset_manifest.jsonl");
  std::string result;
  if (setup.full || setup.vae) {
    sd->save(o.out, config_dir, o.save_dtype);
    if (setup.vae) set_scaling_factor(o.out, *sd, examples, o.resolution, setup.seed);
    result = o.out;
  } else {
    Meta meta{{"format", "pt"},
              {"bioesp.version", bioesp_version_string()},
              {"bioesp.base_model", o.model},
              {"bioesp.rank", std::to_string(setup.rank)},
              {"bioesp.alpha", std::to_string(setup.alpha > 0 ? setup.alpha : setup.rank)},
              {"bioesp.prompt", o.prompt},
              {"bioesp.steps", std::to_string(total)},
              {"bioesp.seed", std::to_string(setup.seed)},
              {"bioesp.resolution", std::to_string(o.resolution)},
              {"bioesp.dataset", dataset_fingerprint(o.data)},
              {"bioesp.text_encoder", setup.train_text_encoder ? "1" : "0"},
              {"bioesp.learning_rate", shortest(base_lr)},
              {"bioesp.lr_scheduler", o.lr_schedule.name},
              {"bioesp.batch_size", std::to_string(o.batch * o.grad_accum)},
              {"bioesp.mixed_precision", o.mixed_precision}};
    result = o.out + "/pytorch_lora_weights.safetensors";
    tr.save_lora(result, meta, false);
    if (o.save_kohya) tr.save_lora(o.out + "/kohya_lora.safetensors", meta, true);
  }
  validate_image(total);
  return result;
}

}  // namespace bioesp::train
