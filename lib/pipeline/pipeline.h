// StableDiffusionPipeline: a loaded model (tokenizer, text encoder, UNet, VAE, scheduler
// config) and txt2img / img2img generation that draws random numbers in diffusers' order, so
// the same seed gives the same image.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model_config.h"
#include "image/image_io.h"
#include "io/weights.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/autoencoders.h"
#include "pipeline/control.h"
#include "pipeline/inpaint.h"
#include "sched/scheduler.h"
#include "text/clip_tokenizer.h"

namespace bioesp::pipeline {

struct LoadOptions {
  std::string config_dir;  // for single files: a diffusers folder with configs and tokenizer
  std::string variant;     // "fp16": prefer name.fp16.safetensors
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  io::Logger log;
  // An autoencoder in place of the model's VAE (its vae/ is then not read), and a tiny one that
  // decodes previews; see load_autoencoder for what a path may be.
  std::string vae, preview_vae;
  // The type Linear and Conv2d weights are held in, where not `dtype` (models::WeightScope);
  // kInt8: the Linear ones as int8 with a scale per row, the Conv2d ones in float16.
  c10::optional<torch::ScalarType> weight_storage;
  // With no weight_storage: those a file holds in float16 or bfloat16 stay so (models::WeightScope).
  bool weights_as_file = false;
};

// How prompts are read: Plain as diffusers reads them (77 tokens, brackets are words); Weighted
// with A1111's syntax (weights, BREAK) in as many 75-token windows as the prompt needs.
enum class PromptSyntax { Plain, Weighted };

// Windows a weighted prompt may take (2,400 tokens): the UNet's attention grows with them.
constexpr size_t kMaxPromptWindows = 32;

// A1111's emphasis: hidden states [B, L, D] scaled per token by weights [B, L], then each
// prompt's encoding rescaled to its unweighted mean. Throws where the weights cancel the mean.
torch::Tensor apply_prompt_weights(const torch::Tensor& hidden, const torch::Tensor& weights);

// What a batch of prompts gives the UNet: hidden states [B, 77·windows, D] (SDXL: both text
// encoders' concatenated) and, for SDXL, the second encoder's projected pooled output [B, P].
struct PromptEmbeds {
  torch::Tensor embeds, pooled;
};

// SDXL's micro-conditioning for one CFG half, in pixels (StableDiffusionXLPipeline's
// original_size, crops_coords_top_left and target_size): sizes 0 are the image's.
struct SizeConditioning {
  int original_width = 0, original_height = 0;
  int crop_left = 0, crop_top = 0;
  int target_width = 0, target_height = 0;
  bool any() const { return original_width || original_height || crop_left || crop_top || target_width || target_height; }
};

// The numbers' ranges (steps, guidance, strength, …) are checked where requests come in: by the
// options table at the C API (api/option_table.cpp); the pipeline checks what depends on the model.
struct GenerateOptions {
  std::vector<std::string> prompts;       // one image batch entry each
  // For every prompt. Unset: SD 1.x/2.x encode "" (unconditional); SDXL models with
  // force_zeros_for_empty_prompt take zeros, as diffusers does for negative_prompt=None.
  std::optional<std::string> negative_prompt;
  int steps = 50;
  double guidance = 7.5;                  // classifier-free guidance when > 1
  uint64_t seed = 0;
  bool device_generator = false;          // draw noise on the model's device (faster, device-specific)
  std::string scheduler;                  // "" = the model's own; else a name (sched::make_scheduler)
  int width = 0, height = 0;              // 0 = the UNet's sample_size × 8
  int images_per_prompt = 1;
  int clip_skip = 0;
  // SDXL: the size ids (the negative ones, where none of their sizes is set, are the positive
  // ones, as diffusers' defaults make them), and refiners' aesthetic scores
  // (requires_aesthetics_score in model_index.json) in place of the target size.
  SizeConditioning micro, negative_micro;
  double aesthetic_score = 6.0, negative_aesthetic_score = 2.5;
  PromptSyntax syntax = PromptSyntax::Plain;
  torch::Tensor init_image;               // img2img: [3, H, W] or [B, 3, H, W] in [-1, 1]
  double strength = 0.8;
  // > 0: the VAE decodes (and encodes init images) in tiles of this many pixels, for images
  // larger than memory allows; the result equals the untiled one (see models::TileOptions).
  int vae_tile_size = 0;
  // Textures that repeat without seams: every UNet and VAE convolution pads circularly along
  // these axes, for this generation only.
  models::Wrap tiling;
  // Called after each denoising step with (done, total); return false to cancel, which throws
  // BIOESP_ERR_CANCELLED within one step.
  std::function<bool(int, int)> progress;
  // Called once when a prompt was longer than the text encoder takes, with the cut text.
  std::function<void(const std::string&)> truncated;
  // Live previews: after every `preview_every` steps (steps done divisible by it), pictures of the
  // current clean-image estimate, one per image in batch order, from preview_images(); return
  // false to cancel. They change nothing in the images made.
  std::function<bool(int done, int total, const std::vector<image::Image>&)> preview;
  int preview_every = 1;
  // Step caching (models::StepCache): with cache_interval > 1, a full UNet pass every that many
  // steps (the first included) and shallow ones between them, from skip `cache_branch`.
  int cache_interval = 0;
  int cache_branch = 0;
  // Token merging (models::TokenMerge, ToMe): the share of tokens merged before the self-attention
  // of the top level's transformer blocks, 0 … 0.75; 0: off, the exact image.
  double token_merging = 0;
  // Given instead of what the prompts and seed give (animations interpolate both): conditional
  // embeddings (PromptEmbeds, for N images), and txt2img's starting noise [N, C, h, w] before
  // init_noise_sigma. The seed still drives the generator for the scheduler's own noise.
  std::optional<PromptEmbeds> prompt_embeds;
  torch::Tensor initial_noise;
  // DDIM's η, TCD's γ: the share of fresh noise per step, in [0, 1]; < 0: the scheduler's own
  // (DDIM 0, TCD 0.3). Other schedulers refuse a value.
  double eta = -1;
  // ControlNets (txt2img and img2img): their residuals join the UNet's at every step of their
  // windows, summed. Without width and height the first control image sets the size.
  std::vector<Control> controls;
  bool guess_mode = false;
  // Inpainting, with one init image: white repaints, black keeps (see prepare_inpainting for
  // sizes, blur and crop). An inpainting UNet (9 input channels) gets the mask and masked image;
  // an ordinary one is blended with the noised original outside the mask at every step. strength
  // 1 starts from pure noise. The result keeps the original's pixels outside the mask.
  image::Image mask;
  double mask_blur = 0;
  int padding_mask_crop = 0;
};

// A sequence morphing between keyframes: each keyframe is a prompt and a seed; frame j of
// `frames` sits at j / (frames - 1) of the way along, its starting noise spherically
// interpolated between its two keyframes' noises, its text embedding linearly between their
// embeddings; everything else fixed. The first and last frames equal single generations of the
// first and last keyframes.
struct AnimateOptions {
  std::vector<std::string> prompts;  // keyframe prompts (one: held for every keyframe)
  std::vector<uint64_t> seeds;       // keyframe seeds (one: held)
  int frames = 16;
  GenerateOptions settings;          // negative prompt, steps, guidance, scheduler, size, clip skip, syntax
  // Called after each denoising step with (steps done over all frames, steps in all).
  std::function<bool(int, int)> progress;
};

// The scheduler config at `path`: a model or config folder's scheduler/scheduler_config.json, a
// scheduler folder's scheduler_config.json, or such a file itself; SD 1.x's for a folder without
// one (single-file checkpoints' config folders).
std::string read_scheduler_config(const std::string& path);

// Spherical interpolation between two tensors (linear where they are almost parallel);
// exactly `a` at t = 0 and `b` at t = 1.
torch::Tensor slerp(const torch::Tensor& a, const torch::Tensor& b, double t);

// Images [N, H, W, 3] in [0, 1] (as generate returns them) as 8-bit RGB, rounded.
std::vector<image::Image> to_images(const torch::Tensor& images);

class StableDiffusion {
 public:
  // A diffusers folder (model_index.json) or a single-file checkpoint with options.config_dir.
  static std::unique_ptr<StableDiffusion> load(const std::string& path, const LoadOptions& options);
  // Freshly initialised weights (models::initialise_random) from component
  // configs (JSON text), with the tokenizer and scheduler of folder `dir`: benchmarks of
  // full-size architectures without downloads, and training from scratch. SDXL with a second
  // text encoder's config (a CLIPTextModelWithProjection), with tokenizer_2 and the
  // model_index.json settings of `dir`.
  static std::unique_ptr<StableDiffusion> create(const std::string& dir, const std::string& text_encoder_config,
                                                 const std::string& unet_config, const std::string& vae_config,
                                                 const LoadOptions& options, uint64_t seed,
                                                 const std::string& text_encoder_2_config = "");

  // A complete diffusers folder: the weights from memory in `dtype`, the component configs,
  // tokenizers and model index from folder `config_dir` (which may be `out` itself), the
  // scheduler config as loaded.
  void save(const std::string& out, const std::string& config_dir, torch::ScalarType dtype);

  // Images [N, H, W, 3] in [0, 1], float32 on the CPU, in batch order (prompt-major).
  torch::Tensor generate(const GenerateOptions& options);
  // Frames [F, H, W, 3] in [0, 1], float32 on the CPU.
  torch::Tensor animate(const AnimateOptions& options);

  // LoRA adapters: any supported file layout, several at once under their own names; scales
  // change and adapters go without reloading. Every key must land on a layer, or nothing is
  // attached and the error names the keys.
  void add_lora(const std::string& path, double scale, const std::string& name);
  bool set_lora_scale(const std::string& name, double scale);
  bool remove_lora(const std::string& name);
  // The models LoRAs adapt, by component: unet, text_encoder and (SDXL) text_encoder_2.
  std::map<std::string, torch::nn::Module*> lora_roots();

  // The autoencoder that draws the images (and encodes img2img's): an AutoencoderKL replaces the
  // model's VAE, a tiny one stands in for it (the model's VAE is then dropped).
  void set_autoencoder(Autoencoder a);
  // The tiny autoencoder previews are decoded with (none: the linear map or the --vae one).
  void set_preview_autoencoder(models::AutoencoderTiny tiny);
  // Pictures of latents (the UNet's space) for live previews: decoded by the preview autoencoder,
  // else by a tiny one that draws the images, else SD 1.x's linear latent→RGB map at latent size.
  std::vector<image::Image> preview_images(const torch::Tensor& latents);

  // Prompt embeddings as the pipeline feeds the UNet: plain, [B, 77, D] (a longer prompt cut,
  // `truncated` told the cut text); weighted, [B, 77·W, D] for the W windows the longest prompt
  // needs, shorter prompts filled with empty windows. SDXL as its encode_prompt: both encoders'
  // hidden states `clip_skip` layers before the penultimate one, concatenated, and the second's
  // pooled projection (weighted: the first window's).
  PromptEmbeds encode_prompts(const std::vector<std::string>& prompts, int clip_skip,
                               PromptSyntax syntax = PromptSyntax::Plain,
                               const std::function<void(const std::string&)>& truncated = {});
  // The embeddings of token ids [B, L] as encode_prompts reads them (SDXL: `ids_2`, the second
  // tokenizer's, too; a refiner reads those alone), with gradients where the text encoders have
  // trainable weights.
  PromptEmbeds encode_tokens(const torch::Tensor& ids, const torch::Tensor& ids_2, int clip_skip);
  // Prompt embeddings [B, 77·W, D] filled to `tokens` with empty windows (the empty prompt's
  // encoding), as A1111 pads the shorter of a prompt and its negative.
  torch::Tensor pad_prompt_embeds(const torch::Tensor& embeds, int64_t tokens, int clip_skip);

  // Textual inversion: an embedding file's vectors under `token` ("": the token the file names,
  // else the file's stem), found in prompts of either syntax; returns the token. Adding a token
  // again replaces its vectors. Refused, leaving the model as it was, for a width other than the
  // text encoder's (both named), non-finite values, or more vectors than a window holds.
  std::string add_embedding(const std::string& path, const std::string& token);
  bool remove_embedding(const std::string& token);

  // The first tokenizer and text encoder: SDXL refiners (model_index.json's text_encoder null)
  // read prompts with the second alone; their text_encoder() is empty, tokenizer() an error.
  text::ClipTokenizer& tokenizer();
  models::CLIPTextModel& text_encoder() { return text_encoder_; }
  // SDXL (a UNet with text_time added conditions): the second tokenizer and text encoder.
  bool sdxl() const { return static_cast<bool>(text_encoder_2_); }
  text::ClipTokenizer& tokenizer_2();
  models::CLIPTextModel& text_encoder_2();
  // SDXL's add_time_ids for images of this size (one row per CFG half: negative, positive).
  torch::Tensor time_ids(const GenerateOptions& g, int width, int height, bool cfg) const;
  models::UNet2DConditionModel& unet() { return unet_; }
  // The model's VAE; an error when a tiny autoencoder stands in for it.
  models::AutoencoderKL& vae();
  // The tiny autoencoder that draws the images, if any (null holder otherwise).
  models::AutoencoderTiny& tiny_vae() { return tiny_vae_; }
  const std::string& scheduler_config() const { return scheduler_config_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  c10::optional<torch::ScalarType> weight_storage() const { return weight_storage_; }
  bool weights_as_file() const { return weights_as_file_; }
  int latent_factor() const;  // image pixels per latent

 private:
  StableDiffusion() = default;
  // Int8 weight storage: every component's Linear weights (built in float16) to int8, once loaded.
  void quantize_if_int8();
  // Tokenizer (unless `refiner`) and scheduler config from `dir` (a pipeline folder or a config folder).
  void load_text_and_schedule(const std::string& dir, bool refiner = false);
  // The tokenizer that cuts prompts into windows: the first, a refiner's only one.
  text::ClipTokenizer& window_tokenizer() { return tokenizer_ ? *tokenizer_ : *tokenizer_2_; }
  // SDXL's second tokenizer and text encoder from `dir`'s configs and `weights`, and
  // model_index.json's settings; checks that the UNet's added conditions fit them.
  void load_sdxl(const std::string& dir, const io::WeightSet& weights, const std::string& what);
  // tokenizer_2 and text_encoder_2 (uninitialised) of `dir`, the SDXL settings of its model
  // index, and diffusers' first-call checks of the UNet's added conditions against them.
  void build_sdxl_encoder(const std::string& dir, const std::string& text_encoder_2_config);
  // The tokenizer's ids must index the text encoder's token table and its prompts fit its
  // positions; otherwise the first prompt fails deep in LibTorch ("index out of range in self").
  static void check_tokenizer(const text::ClipTokenizer& t, const models::CLIPTextModel& e, const std::string& suffix);
  // Width and height for a request (0: the UNet's native size); refuses other than positive
  // multiples of 8.
  std::pair<int, int> output_size(int width, int height) const;
  // generate()'s stages. Refuses what this model cannot do with `g` (before any work).
  void check_request(const GenerateOptions& g) const;
  // The output size: the init image's, else the request's (0: the first control image's, else
  // the UNet's native size).
  std::pair<int, int> canvas_size(const GenerateOptions& g, const torch::Tensor& init) const;
  std::unique_ptr<sched::Scheduler> schedule(const GenerateOptions& g) const;
  at::Generator generator(const GenerateOptions& g) const;
  // txt2img's noise × init_noise_sigma, or img2img's encoded `init` noised to step `begin`.
  torch::Tensor start_latents(const GenerateOptions& g, const torch::Tensor& init, std::vector<int64_t> shape,
                              sched::Scheduler& scheduler, int64_t begin, at::Generator& gen);
  // What the UNet is conditioned on for one generation.
  struct Conditioning {
    torch::Tensor embeds;         // [N or 2N, 77·windows, D]: the negative batch first under CFG
    bool cfg = false;
    double guidance = 1;
    torch::Tensor timestep_cond;  // LCM UNets: the guidance embedding [N, time_cond_proj_dim]
    torch::Tensor text_embeds, time_ids;  // SDXL's added conditions, batched as embeds
  };
  Conditioning conditioning(const GenerateOptions& g, int width, int height);
  // A step counted from the first this generation runs, of `count`.
  struct Step {
    int64_t index, count;
  };
  // The model output for `latents` at the schedule's step index i, guided: the ControlNets'
  // residuals added (those acting at `step`), an inpainting UNet's mask channels joined, the
  // step cache reused or refreshed.
  torch::Tensor predict_noise(const torch::Tensor& latents, sched::Scheduler& scheduler, size_t i, Step step,
                              const Conditioning& c, const ControlStep& control, const InpaintLatents& paint,
                              models::StepCache* cache);
  // The step loop from step `begin`: progress, previews and inpainting's blend after each step.
  torch::Tensor denoise(torch::Tensor latents, const GenerateOptions& g, sched::Scheduler& scheduler, int64_t begin,
                        const Conditioning& cond, const ControlStep& control, const InpaintLatents& paint,
                        at::Generator& gen);
  // img2img's starting latents (× the scaling factor) for N images.
  torch::Tensor encode_image(const torch::Tensor& image, int64_t N, at::Generator& gen, int tile_size);
  // Latents → images [N, H, W, 3] in [0, 1], float32 on the CPU.
  torch::Tensor decode_latents(const torch::Tensor& latents, int tile_size);
  double latent_scaling() const;
  int64_t latent_channels() const;  // of the autoencoder in use
  // Inpainting's starting latents and what every step needs, drawing from `gen` in diffusers'
  // order: the original's latents (ordinary UNets, or strength < 1), the noise, the masked image's.
  torch::Tensor start_inpainting(const InpaintImages& in, const GenerateOptions& g, sched::Scheduler& scheduler,
                                 int64_t begin, int64_t N, at::Generator& gen, InpaintLatents& out);
  PromptEmbeds encode_weighted(const std::vector<std::string>& prompts, int clip_skip);
  // Prompt embeddings of one length: the shorter filled with empty windows.
  void pad_to_longest(std::vector<torch::Tensor>& embeds, int clip_skip);
  // The UNet's encoder_hidden_states for N images: with guidance the negative prompt's, then
  // the prompts' (or the embeddings given), each repeated per image.
  PromptEmbeds text_conditioning(const GenerateOptions& g, bool cfg);
  // The negative half for B prompts: the negative prompt encoded, or zeros (SDXL's
  // force_zeros_for_empty_prompt without one) shaped as `positive`.
  PromptEmbeds negative_embeds(const GenerateOptions& g, size_t B, const PromptEmbeds& positive);
  // Both encoders' readings concatenated and the pooled projection; `weights` [B, L]: A1111's
  // emphasis on each encoder's states.
  PromptEmbeds encode_sdxl(const torch::Tensor& ids, const torch::Tensor& ids_2, int clip_skip,
                           const torch::Tensor& weights = {});
  struct Embedding {
    std::string token;
    torch::Tensor vectors;  // [N, D] in the text encoder's dtype and device
  };
  // Gives the tokenizer and the text encoder these embeddings (ids from the vocabulary's end on).
  void install_embeddings(const std::vector<Embedding>& embeddings);
  std::vector<Embedding> embeddings_;
  std::unique_ptr<text::ClipTokenizer> tokenizer_, tokenizer_2_;
  models::CLIPTextModel text_encoder_{nullptr}, text_encoder_2_{nullptr};  // the second: SDXL's
  // model_index.json's settings of SDXL pipelines (diffusers' register_to_config defaults).
  bool force_zeros_for_empty_prompt_ = true, requires_aesthetics_score_ = false;
  models::UNet2DConditionModel unet_{nullptr};
  models::AutoencoderKL vae_{nullptr};             // null when tiny_vae_ stands in for it
  models::AutoencoderTiny tiny_vae_{nullptr}, preview_vae_{nullptr};
  std::string scheduler_config_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  c10::optional<torch::ScalarType> weight_storage_;
  bool weights_as_file_ = false;
};

}  // namespace bioesp::pipeline
