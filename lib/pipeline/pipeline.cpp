#include "pipeline/pipeline.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/layers.h"
#include "models/loader.h"
#include "models/token_merge.h"
#include "lora/adapter.h"
#include "pipeline/preview.h"
#include "runtime/cpu_memory.h"
#include "sched/scheduler.h"

namespace bioesp::pipeline {

namespace F = torch::nn::functional;

namespace {

// SD 1.x's scheduler, for single files that come without a folder.
const char* const kDefaultScheduler =
    R"({"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "set_alpha_to_one": false,
        "skip_prk_steps": true, "steps_offset": 1, "prediction_type": "epsilon"})";

std::string read_config(const std::string& dir, const std::string& component) {
  std::string path = dir + "/" + component + "/config.json";
  if (!io::exists(path)) fail(BIOESP_ERR_NOT_FOUND, dir + ": " + component + "/config.json is missing");
  return io::read_text_file(path);
}

// The UNet's config for create(), which builds one text encoder: SDXL's added conditions need
// a second, refused now rather than at the first step.
config::UNetConfig one_encoder_unet(const std::string& json_text, const std::string& what) {
  auto c = config::parse_unet(json_text, what);
  if (!c.addition_embed_type.empty())
    fail(BIOESP_ERR_UNSUPPORTED, what + ": addition_embed_type '" + c.addition_embed_type +
                                     "' is SDXL's conditioning; models made from configs are SD 1.x and 2.x");
  return c;
}

// A boolean of model_index.json (diffusers' pipeline config), `fallback` when absent.
bool pipeline_setting(const std::string& dir, const char* key, bool fallback) {
  const std::string path = dir + "/model_index.json";
  if (!io::is_file(path)) return fallback;
  auto j = nlohmann::json::parse(io::read_text_file(path), nullptr, false);
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) fail(BIOESP_ERR_FORMAT, path + ": '" + key + "' must be true or false");
  return j[key].get<bool>();
}

}  // namespace

std::string read_scheduler_config(const std::string& path) {
  if (io::is_file(path)) return io::read_text_file(path);
  if (!io::is_directory(path)) fail(BIOESP_ERR_NOT_FOUND, path + ": no such model folder or scheduler config");
  for (const char* file : {"/scheduler/scheduler_config.json", "/scheduler_config.json"})
    if (io::exists(path + file)) return io::read_text_file(path + file);  // a FIFO is refused by name, not skipped
  return kDefaultScheduler;
}

std::vector<image::Image> to_images(const torch::Tensor& images) {
  auto u8 = (images * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous().cpu();
  std::vector<image::Image> out;
  for (int64_t i = 0; i < u8.size(0); ++i) {
    image::Image img;
    img.height = static_cast<uint32_t>(u8.size(1));
    img.width = static_cast<uint32_t>(u8.size(2));
    img.channels = 3;
    img.pixels.assign(u8[i].data_ptr<uint8_t>(), u8[i].data_ptr<uint8_t>() + u8[i].numel());
    out.push_back(std::move(img));
  }
  return out;
}

std::unique_ptr<StableDiffusion> StableDiffusion::load(const std::string& path, const LoadOptions& o) {
  std::unique_ptr<StableDiffusion> sd(new StableDiffusion());
  sd->device_ = o.device;
  sd->dtype_ = o.dtype;
  sd->weight_storage_ = o.weight_storage;
  sd->weights_as_file_ = o.weights_as_file;
  const bool folder = io::is_directory(path);
  if (!folder && !io::exists(path)) fail(BIOESP_ERR_NOT_FOUND, path + ": no such model folder or file");
  const std::string dir = folder ? path : o.config_dir;
  if (!folder && dir.empty())
    fail(BIOESP_ERR_INVALID_ARGUMENT, path + ": a single-file checkpoint has no tokenizer or configs; name a "
                                             "diffusers folder of the same architecture as its config folder");
  if (folder && !io::exists(path + "/model_index.json"))
    fail(BIOESP_ERR_NOT_FOUND, path + ": not a diffusers pipeline folder (no model_index.json)");
  const auto unet_config = config::parse_unet(read_config(dir, "unet"), "unet/config.json");
  const bool sdxl = unet_config.addition_embed_type == "text_time";
  // An SDXL refiner has the second text encoder alone (StableDiffusionXLImg2ImgPipeline's
  // text_encoder None).
  const bool refiner = sdxl && !io::is_directory(dir + "/text_encoder") && !io::is_directory(dir + "/tokenizer");
  sd->load_text_and_schedule(dir, refiner);

  io::OpenOptions open;
  open.variant = o.variant;
  open.log = o.log;
  open.to_diffusers = true;
  open.config_dir = o.config_dir;
  io::WeightSet weights;
  if (folder) {
    for (const char* c : {"text_encoder", "text_encoder_2", "unet", "vae"}) {
      if ((std::string(c) == "vae" && !o.vae.empty()) || (std::string(c) == "text_encoder_2" && !sdxl) ||
          (std::string(c) == "text_encoder" && refiner))
        continue;
      if (!io::is_directory(path + "/" + c)) fail(BIOESP_ERR_NOT_FOUND, path + ": " + c + "/ is missing");
      io::read_component(path + "/" + c, c, open, weights);
    }
  } else {
    weights = io::open_weights(path, open);
  }
  models::BuildScope scope(torch::TensorOptions().dtype(o.dtype).device(o.device));
  models::WeightScope storage(o.weight_storage, o.weights_as_file);
  if (!refiner) {
    sd->text_encoder_ = models::build_checked<models::CLIPTextModel>(
        config::parse_clip_text(read_config(dir, "text_encoder"), "text_encoder/config.json"), "text_encoder/config.json");
    check_tokenizer(*sd->tokenizer_, sd->text_encoder_, "");
    models::load_state(*sd->text_encoder_, weights, "text_encoder", path + " (text_encoder)");
    sd->text_encoder_->eval();
  }
  sd->unet_ = models::build_checked<models::UNet2DConditionModel>(unet_config, "unet/config.json");
  models::load_state(*sd->unet_, weights, "unet", path + " (unet)");
  sd->unet_->eval();
  if (sdxl) sd->load_sdxl(dir, weights, path);
  if (o.vae.empty()) {
    sd->vae_ = models::build_checked<models::AutoencoderKL>(config::parse_vae(read_config(dir, "vae"), "vae/config.json"),
                                                            "vae/config.json");
    models::load_state(*sd->vae_, weights, "vae", path + " (vae)");
    sd->vae_->eval();
  } else {
    sd->set_autoencoder(load_autoencoder(o.vae, o.device, o.dtype));
  }
  if (!o.preview_vae.empty()) {
    auto preview = load_autoencoder(o.preview_vae, o.device, o.dtype);
    if (!preview.tiny) fail(BIOESP_ERR_INVALID_ARGUMENT, o.preview_vae + ": previews are decoded by a tiny autoencoder (TAESD), not a full VAE");
    sd->set_preview_autoencoder(preview.tiny);
  }
  sd->quantize_if_int8();
  return sd;
}

text::ClipTokenizer& StableDiffusion::tokenizer() {
  if (!tokenizer_) fail(BIOESP_ERR_UNSUPPORTED, "this SDXL refiner has no first tokenizer; it reads prompts with tokenizer_2");
  return *tokenizer_;
}

void StableDiffusion::quantize_if_int8() {
  if (weight_storage_ != torch::kInt8) return;
  if (text_encoder_) models::quantize_linears(*text_encoder_);
  if (text_encoder_2_) models::quantize_linears(*text_encoder_2_);
  models::quantize_linears(*unet_);
  if (vae_) models::quantize_linears(*vae_);
}

void StableDiffusion::load_text_and_schedule(const std::string& dir, bool refiner) {
  if (!refiner) {
    if (!io::is_directory(dir + "/tokenizer")) fail(BIOESP_ERR_NOT_FOUND, dir + ": tokenizer/ is missing");
    tokenizer_ = std::make_unique<text::ClipTokenizer>(dir + "/tokenizer");
  }
  scheduler_config_ = read_scheduler_config(dir);
  sched::make_scheduler(scheduler_config_);  // validates it now rather than at the first image
}

void StableDiffusion::check_tokenizer(const text::ClipTokenizer& t, const models::CLIPTextModel& e, const std::string& suffix) {
  const auto& c = e->config();
  if (t.vocab_size() > c.vocab_size)
    fail(BIOESP_ERR_MISMATCH, "the tokenizer has ids up to " + std::to_string(t.vocab_size() - 1) +
                                  " but the text encoder's vocab_size is " + std::to_string(c.vocab_size) + ": tokenizer" +
                                  suffix + "/ and text_encoder" + suffix + "/ belong to different models");
  if (t.max_length() > c.max_position_embeddings)
    fail(BIOESP_ERR_MISMATCH, "the tokenizer makes prompts of " + std::to_string(t.max_length()) +
                                  " tokens but the text encoder has " + std::to_string(c.max_position_embeddings) +
                                  " positions (model_max_length in tokenizer" + suffix + "/tokenizer_config.json)");
}

void StableDiffusion::load_sdxl(const std::string& dir, const io::WeightSet& weights, const std::string& what) {
  build_sdxl_encoder(dir, read_config(dir, "text_encoder_2"));
  models::load_state(*text_encoder_2_, weights, "text_encoder_2", what + " (text_encoder_2)");
  text_encoder_2_->eval();
}

void StableDiffusion::build_sdxl_encoder(const std::string& dir, const std::string& config_json) {
  if (!io::is_directory(dir + "/tokenizer_2")) fail(BIOESP_ERR_NOT_FOUND, dir + ": tokenizer_2/ is missing (SDXL has two tokenizers)");
  tokenizer_2_ = std::make_unique<text::ClipTokenizer>(dir + "/tokenizer_2");
  const auto c = config::parse_clip_text(config_json, "text_encoder_2/config.json");
  if (!c.with_projection)
    fail(BIOESP_ERR_FORMAT, "text_encoder_2/config.json: SDXL's second text encoder is a CLIPTextModelWithProjection "
                            "(its projected pooled output conditions the UNet)");
  text_encoder_2_ = models::build_checked<models::CLIPTextModel>(c, "text_encoder_2/config.json");
  check_tokenizer(*tokenizer_2_, text_encoder_2_, "_2");
  force_zeros_for_empty_prompt_ = pipeline_setting(dir, "force_zeros_for_empty_prompt", true);
  requires_aesthetics_score_ = pipeline_setting(dir, "requires_aesthetics_score", false);
  // What diffusers checks at the first call (expected_add_embed_dim, the embeddings' width).
  const auto& u = unet_->config();
  const int ids = requires_aesthetics_score_ ? 5 : 6;
  const int added = ids * u.addition_time_embed_dim + c.projection_dim;
  if (u.projection_class_embeddings_input_dim != added)
    fail(BIOESP_ERR_MISMATCH, "unet/config.json: projection_class_embeddings_input_dim is " +
                                  std::to_string(u.projection_class_embeddings_input_dim) + " but " + std::to_string(ids) +
                                  " time ids × addition_time_embed_dim " + std::to_string(u.addition_time_embed_dim) +
                                  " + text_encoder_2's projection_dim " + std::to_string(c.projection_dim) + " make " +
                                  std::to_string(added) + (requires_aesthetics_score_
                                                               ? " (model_index.json: requires_aesthetics_score true, a refiner's 5 ids)"
                                                               : " (a refiner's UNet needs requires_aesthetics_score in model_index.json)"));
  const int width = (text_encoder_ ? text_encoder_->config().hidden_size : 0) + c.hidden_size;
  if (u.cross_attention_dim.front() != width)
    fail(BIOESP_ERR_MISMATCH, "unet/config.json: cross_attention_dim " + std::to_string(u.cross_attention_dim.front()) +
                                  " but the text encoders' hidden sizes make " + std::to_string(width) +
                                  (text_encoder_ ? "" : " (a refiner: text_encoder_2 alone)"));
}

std::unique_ptr<StableDiffusion> StableDiffusion::create(const std::string& dir, const std::string& te, const std::string& unet,
                                                         const std::string& vae, const LoadOptions& o, uint64_t seed,
                                                         const std::string& te2) {
  std::unique_ptr<StableDiffusion> sd(new StableDiffusion());
  sd->device_ = o.device;
  sd->dtype_ = o.dtype;
  sd->weight_storage_ = o.weight_storage;
  sd->weights_as_file_ = o.weights_as_file;
  sd->load_text_and_schedule(dir);
  models::BuildScope scope(torch::TensorOptions().dtype(o.dtype).device(o.device));
  models::WeightScope storage(o.weight_storage);
  sd->text_encoder_ = models::build_checked<models::CLIPTextModel>(config::parse_clip_text(te, "text_encoder config"),
                                                                   "text_encoder config");
  check_tokenizer(*sd->tokenizer_, sd->text_encoder_, "");
  sd->unet_ = models::build_checked<models::UNet2DConditionModel>(
      te2.empty() ? one_encoder_unet(unet, "unet config") : config::parse_unet(unet, "unet config"), "unet config");
  if (!te2.empty()) sd->build_sdxl_encoder(dir, te2);
  sd->vae_ = models::build_checked<models::AutoencoderKL>(config::parse_vae(vae, "vae config"), "vae config");
  models::initialise_random(*sd->text_encoder_, seed);
  models::initialise_random(*sd->unet_, seed + 1);
  models::initialise_random(*sd->vae_, seed + 2);
  if (sd->text_encoder_2_) {
    models::initialise_random(*sd->text_encoder_2_, seed + 3);
    sd->text_encoder_2_->eval();
  }
  sd->quantize_if_int8();
  sd->text_encoder_->eval();
  sd->unet_->eval();
  sd->vae_->eval();
  return sd;
}

namespace {

void write_component(const std::string& dir, torch::nn::Module& m, const std::string& file, torch::ScalarType dtype) {
  std::vector<io::Tensor> tensors;
  for (const auto& p : m.named_parameters()) tensors.push_back(models::from_torch(p.key(), p.value().to(dtype)));
  io::make_directories(dir);
  io::write_safetensors(dir + "/" + file, tensors, {{"format", "pt"}});
}

// diffusers' model index for a Stable Diffusion folder whose scheduler is `scheduler_class`.
std::string model_index(const std::string& scheduler_class) {
  nlohmann::ordered_json j = {{"_class_name", "StableDiffusionPipeline"},
                              {"_diffusers_version", "0.30.0"},
                              {"feature_extractor", nlohmann::json::array({nullptr, nullptr})},
                              {"requires_safety_checker", false},
                              {"safety_checker", nlohmann::json::array({nullptr, nullptr})},
                              {"scheduler", nlohmann::json::array({"diffusers", scheduler_class})},
                              {"text_encoder", nlohmann::json::array({"transformers", "CLIPTextModel"})},
                              {"tokenizer", nlohmann::json::array({"transformers", "CLIPTokenizer"})},
                              {"unet", nlohmann::json::array({"diffusers", "UNet2DConditionModel"})},
                              {"vae", nlohmann::json::array({"diffusers", "AutoencoderKL"})}};
  return j.dump(2) + "\n";
}

}  // namespace

void StableDiffusion::save(const std::string& out, const std::string& config_dir, torch::ScalarType dtype) {
  if (weight_storage_ == torch::kInt8)
    fail(BIOESP_ERR_UNSUPPORTED, "a model with int8 weights is not saved (its Linear weights lost precision): load it without int8 storage");
  torch::NoGradGuard no_grad;
  write_component(out + "/unet", *unet_, "diffusion_pytorch_model.safetensors", dtype);
  if (text_encoder_) write_component(out + "/text_encoder", *text_encoder_, "model.safetensors", dtype);
  write_component(out + "/vae", *vae_, "diffusion_pytorch_model.safetensors", dtype);
  if (sdxl()) write_component(out + "/text_encoder_2", *text_encoder_2_, "model.safetensors", dtype);
  auto copy = [&](const std::string& rel) {
    if (config_dir != out) io::copy_file(config_dir + "/" + rel, out + "/" + rel);
  };
  std::vector<std::string> components{"unet", "vae"}, tokenizers;
  if (text_encoder_) components.push_back("text_encoder"), tokenizers.push_back("tokenizer");
  if (sdxl()) components.push_back("text_encoder_2"), tokenizers.push_back("tokenizer_2");
  for (const auto& c : components) copy(c + "/config.json");
  for (const auto& t : tokenizers) {
    io::make_directories(out + "/" + t);
    for (const auto& n : io::list_directory(config_dir + "/" + t))
      if (io::is_file(config_dir + "/" + t + "/" + n)) copy(t + "/" + n);
  }
  io::make_directories(out + "/scheduler");
  io::write_text_file(out + "/scheduler/scheduler_config.json", scheduler_config_);
  if (io::is_file(config_dir + "/model_index.json")) {
    copy("model_index.json");
  } else {
    auto sched = nlohmann::json::parse(scheduler_config_, nullptr, false);
    io::write_text_file(out + "/model_index.json",
                        model_index(sched.is_object() ? sched.value("_class_name", "PNDMScheduler") : "PNDMScheduler"));
  }
}

std::map<std::string, torch::nn::Module*> StableDiffusion::lora_roots() {
  std::map<std::string, torch::nn::Module*> roots = {{"unet", unet_.get()}};
  if (text_encoder_) roots["text_encoder"] = text_encoder_.get();
  if (text_encoder_2_) roots["text_encoder_2"] = text_encoder_2_.get();
  return roots;
}

void StableDiffusion::add_lora(const std::string& path, double scale, const std::string& name) {
  if (!std::isfinite(scale)) fail(BIOESP_ERR_INVALID_ARGUMENT, "LoRA scale must be finite");
  auto set = io::open_weights(path, {});
  const auto roots = lora_roots();
  std::map<std::string, std::vector<std::string>> modules;
  for (const auto& [component, root] : roots)
    for (const auto& item : root->named_modules()) modules[component].push_back(item.key());
  auto parsed = lora::parse(set, modules);
  if (parsed.empty()) fail(BIOESP_ERR_FORMAT, path + ": no LoRA weights in this file");
  // Every component is tried, so that one error names all that does not fit.
  std::vector<torch::nn::Module*> done;
  std::string problems;
  for (const auto& [component, pairs] : parsed) {
    auto it = roots.find(component);
    if (it == roots.end()) {
      problems += "\n" + path + ": a LoRA for " + component + " (" + std::to_string(pairs.size()) +
                  " layers, e.g. " + pairs.begin()->first + "), which this model does not have";
      continue;
    }
    try {
      lora::attach(*it->second, pairs, name, scale, device_, dtype_, path + " (" + component + ")");
      done.push_back(it->second);
    } catch (const Error& e) {
      if (e.status() != BIOESP_ERR_MISMATCH) throw;
      problems += std::string("\n") + e.what();
    }
  }
  if (!problems.empty()) {
    for (auto* root : done) lora::detach(*root, name);
    fail(BIOESP_ERR_MISMATCH, problems.substr(1));
  }
}

bool StableDiffusion::set_lora_scale(const std::string& name, double scale) {
  bool found = false;
  for (const auto& [component, root] : lora_roots()) found = lora::set_scale(*root, name, scale) || found;
  return found;
}

bool StableDiffusion::remove_lora(const std::string& name) {
  bool found = false;
  for (const auto& [component, root] : lora_roots()) found = lora::detach(*root, name) || found;
  return found;
}

models::AutoencoderKL& StableDiffusion::vae() {
  if (!vae_) fail(BIOESP_ERR_UNSUPPORTED, "this model draws with a tiny autoencoder in place of its VAE");
  return vae_;
}

void StableDiffusion::set_autoencoder(Autoencoder a) {
  const int64_t channels = a.kl ? a.kl->config().latent_channels : a.tiny->config().latent_channels;
  if (channels != unet_->config().out_channels)
    fail(BIOESP_ERR_MISMATCH, "the autoencoder's " + std::to_string(channels) + " latent channels do not fit the UNet's " +
                                  std::to_string(unet_->config().out_channels));
  vae_ = a.kl;
  tiny_vae_ = a.tiny;
}

void StableDiffusion::set_preview_autoencoder(models::AutoencoderTiny tiny) {
  if (tiny && tiny->config().latent_channels != unet_->config().out_channels)
    fail(BIOESP_ERR_MISMATCH, "the preview autoencoder's " + std::to_string(tiny->config().latent_channels) +
                                  " latent channels do not fit the UNet's " + std::to_string(unet_->config().out_channels));
  preview_vae_ = tiny;
}

int StableDiffusion::latent_factor() const {
  return tiny_vae_ ? tiny_vae_->config().latent_factor() : 1 << (vae_->config().block_out_channels.size() - 1);
}

int64_t StableDiffusion::latent_channels() const {
  return tiny_vae_ ? tiny_vae_->config().latent_channels : vae_->config().latent_channels;
}

double StableDiffusion::latent_scaling() const {
  return tiny_vae_ ? tiny_vae_->config().scaling_factor : vae_->config().scaling_factor;
}

std::pair<int, int> StableDiffusion::output_size(int width, int height) const {
  const int native = static_cast<int>(unet_->config().sample_size) * latent_factor();
  if (width == 0) width = native;
  if (height == 0) height = native;
  if (width <= 0 || height <= 0 || width % 8 || height % 8)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "width and height must be positive multiples of 8 (got " + std::to_string(width) +
                                          "×" + std::to_string(height) + ")");
  return {width, height};
}

StableDiffusion::Conditioning StableDiffusion::conditioning(const GenerateOptions& g, int width, int height) {
  const int64_t N = static_cast<int64_t>(g.prompts.size()) * g.images_per_prompt;
  const int64_t cond_dim = unet_->config().time_cond_proj_dim;
  Conditioning c;
  c.guidance = g.guidance;
  // An LCM UNet takes the guidance as an embedding instead of a CFG batch (diffusers' pipelines
  // skip CFG for UNets with time_cond_proj_dim).
  c.cfg = g.guidance > 1.0 && cond_dim == 0;
  auto text = text_conditioning(g, c.cfg);
  c.embeds = text.embeds.to(dtype_);
  if (sdxl()) {
    c.text_embeds = text.pooled.to(dtype_);
    c.time_ids = time_ids(g, width, height, c.cfg).repeat_interleave(N, 0).to(device_, dtype_);
  }
  if (cond_dim > 0) {
    auto w = torch::full({N}, static_cast<float>(g.guidance - 1), torch::kFloat32);
    c.timestep_cond = models::guidance_embedding(w, cond_dim).to(device_, dtype_);
  }
  return c;
}

torch::Tensor StableDiffusion::predict_noise(const torch::Tensor& latents, sched::Scheduler& scheduler, size_t i, Step step,
                                             const Conditioning& c, const ControlStep& control, const InpaintLatents& paint,
                                             models::StepCache* cache) {
  auto scaled = scheduler.scale_model_input(c.cfg ? torch::cat({latents, latents}) : latents, static_cast<int64_t>(i));
  auto t = torch::tensor(scheduler.timesteps()[i], torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  auto extra = control.residuals(scaled, t, c.embeds, step.index, step.count);
  extra.timestep_cond = c.timestep_cond;
  extra.text_embeds = c.text_embeds;
  extra.time_ids = c.time_ids;
  auto input = paint.masked_latents.defined() ? paint.unet_input(scaled, c.cfg) : scaled;
  auto out = unet_->forward(input, t, c.embeds, extra, cache);
  if (!c.cfg) return out;
  auto parts = out.chunk(2);
  return parts[0] + c.guidance * (parts[1] - parts[0]);
}

torch::Tensor StableDiffusion::encode_image(const torch::Tensor& init, int64_t N, at::Generator& gen, int tile_size) {
  auto image = (init.dim() == 3 ? init.unsqueeze(0) : init).to(device_, dtype_);
  if (image.size(0) != 1 && image.size(0) != N) fail(BIOESP_ERR_INVALID_ARGUMENT, "give one init image, or one per generated image");
  torch::Tensor latents;
  if (tiny_vae_) {
    // Deterministic, as diffusers' retrieve_latents takes AutoencoderTiny's latents: no draw.
    latents = tiny_vae_->encode(image);
  } else {
    models::TileOptions tiles;
    tiles.tile_sample_size = tile_size;
    // Under the decoder's upcasting rule: SDXL's VAE overflows in float16 encoding as well.
    auto post = models::with_upcasting(
        *vae_, device_,
        [&](torch::ScalarType dt) { return tile_size > 0 ? vae_->encode_tiled(image.to(dt), tiles) : vae_->encode(image.to(dt)); },
        [](const models::Posterior& p) { return torch::isfinite(p.mean).all().item<bool>() && torch::isfinite(p.std).all().item<bool>(); });
    auto eps = at::randn(post.mean.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32).device(gen.device()));
    latents = post.sample(eps.to(device_, post.mean.scalar_type())).to(dtype_);
  }
  latents = latents * latent_scaling();
  return latents.size(0) == N ? latents : latents.expand({N, -1, -1, -1}).contiguous();
}

torch::Tensor StableDiffusion::decode_latents(const torch::Tensor& latents, int tile_size) {
  runtime::CpuMemoryScope memory;  // the decoder's blocks repeat, but not the UNet's: a scope of its own
  auto z = latents / latent_scaling();
  torch::Tensor image;
  if (tiny_vae_) {
    image = tiny_vae_->decode(z);  // whole: it has no normalisation to tile and a fraction of the VAE's memory
  } else {
    models::TileOptions tiles;
    tiles.tile_sample_size = tile_size;
    image = models::with_upcasting(
        *vae_, device_,
        [&](torch::ScalarType dt) { return tile_size > 0 ? vae_->decode_tiled(z.to(dt), tiles) : vae_->decode(z.to(dt)); },
        [](const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); });
  }
  return (image.to(torch::kFloat32) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1}).contiguous().cpu();
}

std::vector<image::Image> StableDiffusion::preview_images(const torch::Tensor& latents) {
  torch::NoGradGuard no_grad;
  auto& tiny = preview_vae_ ? preview_vae_ : tiny_vae_;
  if (!tiny) return to_images(latent_rgb(latents));
  auto image = tiny->decode(latents.to(dtype_) / tiny->config().scaling_factor);
  return to_images((image.to(torch::kFloat32) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1}));
}

torch::Tensor StableDiffusion::start_inpainting(const InpaintImages& in, const GenerateOptions& g, sched::Scheduler& scheduler,
                                                int64_t begin, int64_t N, at::Generator& gen, InpaintLatents& out) {
  const bool nine = unet_->config().in_channels == 9, pure = g.strength == 1.0;
  torch::Tensor image_latents;
  if (!nine || !pure) image_latents = encode_image(in.image, N, gen, g.vae_tile_size);
  const int64_t h = in.image.size(2) / latent_factor(), w = in.image.size(3) / latent_factor();
  auto noise = at::randn({N, latent_channels(), h, w}, gen,
                         torch::TensorOptions().dtype(torch::kFloat32).device(gen.device()))
                   .to(device_, dtype_);
  auto latents = pure ? noise * scheduler.init_noise_sigma() : scheduler.add_noise_at(image_latents, noise, begin);
  out.mask = F::interpolate(in.mask, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kNearest))
                 .expand({N, -1, -1, -1})
                 .to(device_, dtype_);
  // Drawn for ordinary UNets too (diffusers encodes the masked image either way): the generator
  // then moves on alike for the scheduler's noise.
  auto masked = encode_image(in.image * (in.mask < 0.5), N, gen, g.vae_tile_size);
  if (nine) {
    out.masked_latents = masked;
  } else {
    out.image_latents = image_latents;
    out.noise = noise;
  }
  return latents;
}

void StableDiffusion::check_request(const GenerateOptions& g) const {
  const auto& uc = unet_->config();
  const bool img2img = g.init_image.defined(), inpaint = !g.mask.pixels.empty();
  if (g.prompts.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "no prompt");
  if (inpaint && !img2img) fail(BIOESP_ERR_INVALID_ARGUMENT, "a mask needs an init image: the picture to paint into");
  if (uc.in_channels == 9 && !inpaint)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "this is an inpainting model (its UNet takes 9 channels): give an init image and a mask");
  if (uc.in_channels != latent_channels() && uc.in_channels != 9)
    fail(BIOESP_ERR_UNSUPPORTED, "a UNet of " + std::to_string(uc.in_channels) + " input channels is neither an ordinary (" +
                                     std::to_string(latent_channels()) + ") nor an inpainting one (9)");
  if (inpaint && g.init_image.dim() == 4 && g.init_image.size(0) != 1)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "inpainting takes one init image");
  // The branch's range depends on the UNet; the options table checks the rest.
  if (g.cache_interval > 1 && (g.cache_branch < 0 || g.cache_branch >= unet_->skip_count()))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "cache_branch must be between 0 and " + std::to_string(unet_->skip_count() - 1) +
                                          " for this UNet (its skip connections − 1), not " + std::to_string(g.cache_branch));
  if (g.tiling.any() && g.vae_tile_size > 0)
    fail(BIOESP_ERR_UNSUPPORTED, "tiling and VAE tiles cannot be combined (the tiles do not reach across the wrapped edges)");
  if (std::isnan(g.eta)) fail(BIOESP_ERR_INVALID_ARGUMENT, "eta must be a number");
  if (!(g.token_merging >= 0 && g.token_merging <= models::kMaxTokenMerging))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "token_merging must be between 0 and 0.75 (three tokens in four), not " +
                                          std::to_string(g.token_merging));
}

std::pair<int, int> StableDiffusion::canvas_size(const GenerateOptions& g, const torch::Tensor& init) const {
  if (init.defined()) return output_size(static_cast<int>(init.size(-1)), static_cast<int>(init.size(-2)));
  int w = g.width, h = g.height;
  if (!g.controls.empty()) {
    const auto [cw, ch] = control_size(g.controls.front());
    if (w == 0) w = cw;
    if (h == 0) h = ch;
  }
  return output_size(w, h);
}

std::unique_ptr<sched::Scheduler> StableDiffusion::schedule(const GenerateOptions& g) const {
  auto scheduler = sched::make_scheduler(scheduler_config_, g.scheduler);
  scheduler->set_timesteps(g.steps);
  if (g.eta >= 0) scheduler->set_eta(g.eta);
  // An offset schedule (PNDM's steps_offset 1) reaches past the last training timestep when the
  // steps are as many as those timesteps: diffusers fails there with an index error.
  const int trained = scheduler->config().num_train_timesteps;
  const auto& planned = scheduler->timesteps();
  if (!planned.empty() && *std::max_element(planned.begin(), planned.end()) >= trained)
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::to_string(g.steps) + " steps of this scheduler go past the model's " +
                                          std::to_string(trained) + " training timesteps: use fewer steps");
  return scheduler;
}

at::Generator StableDiffusion::generator(const GenerateOptions& g) const {
  // diffusers' default is a CPU generator: the same seed then gives the same image everywhere.
  if (!g.device_generator || device_.is_cpu()) return at::detail::createCPUGenerator(g.seed);
  at::Generator gen = at::globalContext().defaultGenerator(device_).clone();
  gen.set_current_seed(g.seed);
  return gen;
}

torch::Tensor StableDiffusion::start_latents(const GenerateOptions& g, const torch::Tensor& init, std::vector<int64_t> shape,
                                             sched::Scheduler& scheduler, int64_t begin, at::Generator& gen) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(gen.device());
  if (init.defined()) {
    auto init_latents = encode_image(init, shape[0], gen, g.vae_tile_size);
    auto noise = at::randn(shape, gen, opts).to(device_, dtype_);
    return scheduler.add_noise_at(init_latents, noise, begin);
  }
  auto noise = at::randn(shape, gen, opts);  // drawn even when given: the generator then moves on alike
  if (g.initial_noise.defined()) {
    if (g.initial_noise.sizes() != noise.sizes()) fail(BIOESP_ERR_INVALID_ARGUMENT, "initial noise of another shape");
    noise = g.initial_noise.to(noise.device(), torch::kFloat32);
  }
  return (noise * scheduler.init_noise_sigma()).to(device_, dtype_);
}

torch::Tensor StableDiffusion::denoise(torch::Tensor latents, const GenerateOptions& g, sched::Scheduler& scheduler,
                                       int64_t begin, const Conditioning& cond, const ControlStep& control,
                                       const InpaintLatents& paint, at::Generator& gen) {
  runtime::CpuMemoryScope memory;  // every step asks for the same blocks
  const auto& ts = scheduler.timesteps();
  const int total = static_cast<int>(ts.size() - begin);
  models::StepCache cache;
  cache.branch = g.cache_branch;
  for (size_t i = begin; i < ts.size(); ++i) {
    const int done = static_cast<int>(i - begin + 1);
    cache.reuse = (done - 1) % std::max(g.cache_interval, 1) != 0;
    models::TokenMergeScope merging({g.token_merging, g.seed, static_cast<int64_t>(i), latents.size(-2) * latents.size(-1),
                                     models::token_merge_downsample(unet_->config())});
    auto noise = predict_noise(latents, scheduler, i, Step{done - 1, total}, cond, control, paint,
                               g.cache_interval > 1 ? &cache : nullptr);
    const bool preview = g.preview && done % g.preview_every == 0;
    auto x0 = preview ? scheduler.predict_original(noise, static_cast<int64_t>(i), latents) : torch::Tensor();
    latents = scheduler.step(noise, i, latents, &gen);
    if (paint.image_latents.defined()) latents = paint.blend(latents, scheduler, i);
    if (g.progress && !g.progress(done, total)) fail(BIOESP_ERR_CANCELLED, "generation cancelled");
    if (preview && !g.preview(done, total, preview_images(x0))) fail(BIOESP_ERR_CANCELLED, "generation cancelled");
  }
  return latents;
}

torch::Tensor StableDiffusion::generate(const GenerateOptions& g) {
  torch::NoGradGuard no_grad;
  check_request(g);
  const bool inpaint = !g.mask.pixels.empty();
  InpaintImages painted;
  if (inpaint) painted = prepare_inpainting(to_image(g.init_image.dim() == 4 ? g.init_image[0] : g.init_image), g.mask,
                                            g.mask_blur, g.padding_mask_crop);
  const torch::Tensor init = inpaint ? painted.image : g.init_image;
  const auto [width, height] = canvas_size(g, init);
  std::vector<Control> controls = g.controls;
  for (auto& c : controls) {
    models::check_fits(c.net->config(), unet_->config(), latent_channels());
    if (painted.crop) c.image = crop_image(c.image, *painted.crop);
  }
  std::vector<torch::nn::Module*> wrapped{unet_.get(), tiny_vae_ ? static_cast<torch::nn::Module*>(tiny_vae_.get()) : vae_.get()};
  for (const auto& c : controls) wrapped.push_back(c.net.ptr().get());
  models::WrapScope wrap(wrapped, g.tiling);

  const int64_t N = static_cast<int64_t>(g.prompts.size()) * g.images_per_prompt;
  const Conditioning cond = conditioning(g, width, height);
  const ControlStep control(controls, g.guess_mode, width, height, N, cond.cfg, device_, dtype_);
  auto scheduler = schedule(g);
  // img2img starts part-way along the schedule (LCM draws a grid from the first part instead).
  const int64_t begin = init.defined() ? scheduler->start_at_strength(g.strength) : 0;
  at::Generator gen = generator(g);
  InpaintLatents paint;
  const int factor = latent_factor();
  auto latents = inpaint ? start_inpainting(painted, g, *scheduler, begin, N, gen, paint)
                         : start_latents(g, init, {N, latent_channels(), height / factor, width / factor}, *scheduler, begin, gen);
  latents = denoise(latents, g, *scheduler, begin, cond, control, paint, gen);
  auto images = decode_latents(latents, g.vae_tile_size);
  return inpaint ? composite(images, painted) : images;
}

torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t) {
  if (t <= 0) return a;
  if (t >= 1) return b;
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  const double dot = (a64 * b64).sum().item<double>() / (a64.norm().item<double>() * b64.norm().item<double>());
  torch::Tensor out;
  if (std::abs(dot) > 0.9995) {
    out = (1 - t) * a64 + t * b64;
  } else {
    const double theta = std::acos(dot), s = std::sin(theta);
    out = std::sin((1 - t) * theta) / s * a64 + std::sin(t * theta) / s * b64;
  }
  return out.to(a.scalar_type());
}

torch::Tensor StableDiffusion::animate(const AnimateOptions& o) {
  torch::NoGradGuard no_grad;
  const size_t keys = std::max(o.prompts.size(), o.seeds.size());
  if (o.prompts.empty() || o.seeds.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "an animation needs a prompt and a seed");
  if ((o.prompts.size() != 1 && o.prompts.size() != keys) || (o.seeds.size() != 1 && o.seeds.size() != keys))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "give as many prompts as seeds (or one of either): they are the keyframes");
  if (keys < 2) fail(BIOESP_ERR_INVALID_ARGUMENT, "an animation needs two keyframes: two prompts or two seeds");
  if (o.settings.init_image.defined()) fail(BIOESP_ERR_INVALID_ARGUMENT, "animations start from noise, not an init image");
  const int factor = latent_factor();
  const auto [width, height] = output_size(o.settings.width, o.settings.height);

  // The keyframes: their embeddings, and the noise their seeds give (as generate draws it).
  auto prompt_of = [&](size_t k) { return o.prompts[o.prompts.size() == 1 ? 0 : k]; };
  auto seed_of = [&](size_t k) { return o.seeds[o.seeds.size() == 1 ? 0 : k]; };
  std::vector<PromptEmbeds> embeds;
  std::vector<torch::Tensor> hidden, noises;
  for (size_t k = 0; k < keys; ++k) {
    embeds.push_back(encode_prompts({prompt_of(k)}, o.settings.clip_skip, o.settings.syntax, o.settings.truncated));
    hidden.push_back(embeds.back().embeds);
    at::Generator gen = at::detail::createCPUGenerator(seed_of(k));
    noises.push_back(at::randn({1, unet_->config().in_channels, height / factor, width / factor}, gen,
                               torch::TensorOptions().dtype(torch::kFloat32)));
  }
  pad_to_longest(hidden, o.settings.clip_skip);
  for (size_t k = 0; k < keys; ++k) embeds[k].embeds = hidden[k];
  auto mix = [](const torch::Tensor& a, const torch::Tensor& b, double u) {
    return !a.defined() || u <= 0 ? a : u >= 1 ? b : (1 - u) * a + u * b;
  };
  std::vector<torch::Tensor> frames;
  for (int j = 0; j < o.frames; ++j) {
    const double x = static_cast<double>(j) * static_cast<double>(keys - 1) / (o.frames - 1);
    const size_t k = std::min(static_cast<size_t>(x), keys - 2);
    const double u = j == o.frames - 1 ? 1.0 : x - static_cast<double>(k);
    GenerateOptions g = o.settings;
    g.prompts = {u < 0.5 ? prompt_of(k) : prompt_of(k + 1)};  // recorded with the frame
    g.images_per_prompt = 1;
    g.width = width, g.height = height;
    g.seed = u < 1 ? seed_of(k) : seed_of(k + 1);
    g.prompt_embeds = PromptEmbeds{mix(embeds[k].embeds, embeds[k + 1].embeds, u), mix(embeds[k].pooled, embeds[k + 1].pooled, u)};
    g.initial_noise = slerp(noises[k], noises[k + 1], u);
    g.progress = [&, j](int done, int total) { return !o.progress || o.progress(j * total + done, o.frames * total); };
    frames.push_back(generate(g));
  }
  return torch::cat(frames);
}

}  // namespace bioesp::pipeline
