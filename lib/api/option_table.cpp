// The options table: every field of every options struct in bioesp.h, in the struct's order —
// its command-line flag (derived from the name unless given), type, range, choices and one line
// of help. Defaults are not written here: they are whatever the *_options_init functions set.
#include "api/option_table.h"

#include "sched/names.h"
#include "train/distributed_options.h"
#include "train/lr_schedule.h"

namespace bioesp::options {

Row& Row::one_of(std::vector<std::string> c) {
  choices = std::move(c);
  choices_text.clear();
  for (const auto& v : choices) choices_text += (choices_text.empty() ? "" : "|") + v;
  return *this;
}

namespace {

// A row for field `field` of the struct O, stored as `store` (checked against its C type).
#define F(field, store) make_row<Store::store, decltype(O::field)>(#field, offsetof(O, field))

const char* const kLog = "a C function pointer: the command line passes its own printer; bindings do not pass one";
const char* const kLogUser = "the pointer handed back to log";
const char* const kProgress =
    "a C function pointer: the command line passes its progress bar, each binding its own progress object";
const char* const kProgressUser = "the pointer handed back to progress";

template <class O>
Row struct_size() {
  return F(struct_size, Size).not_exposed("set by the init function: the size of the struct the caller compiled against");
}

template <class O>
void log_rows(std::vector<Row>& rows) {
  rows.push_back(F(log, Function).not_exposed(kLog));
  rows.push_back(F(log_user, Pointer).not_exposed(kLogUser));
}

template <class O>
void progress_rows(std::vector<Row>& rows) {
  rows.push_back(F(progress, Function).not_exposed(kProgress));
  rows.push_back(F(progress_user, Pointer).not_exposed(kProgressUser));
}

// A list and its count field, as two rows.
#define LIST(field, store, count_field, flag_name, help_text)                                  \
  rows.push_back(F(field, store).cli(flag_name).counted_by(#count_field).about(help_text)); \
  rows.push_back(F(count_field, Size).not_exposed("the length of " #field ": set with the list"))

const std::vector<std::string> kDevices = {"cpu", "cuda"};
static_assert(BIOESP_DEVICE_CPU == 0 && BIOESP_DEVICE_CUDA == 1, "device choices are in enum order");

template <class O>
Row device() {
  return F(device, Enum).one_of(kDevices).about("where it runs");
}

template <class O>
Row device_index() {
  return F(device_index, Int).at_least(0).about("which GPU of several");
}

template <class O>
Row threads() {
  return F(threads, Int).at_least(0).about("CPU intra-op threads (0: a share of the physical cores, split between the jobs running at once)");
}

template <class O>
Row seed(const char* what) {
  return F(seed, U64).about(what);
}

// The fields generate and animate share, in their structs' words.
template <class O>
Row negative_prompt() {
  return F(negative_prompt, String).about("what the images should not show (empty: unconditional)");
}
template <class O>
Row steps() {
  return F(steps, Int).range(1, 1000).about("denoising steps");
}
template <class O>
Row guidance() {
  return F(guidance, Float).at_least(0).about("classifier-free guidance scale (on above 1)");
}
template <class O>
Row scheduler() {
  return F(scheduler, Text).one_of(sched::scheduler_names()).with_settings().about(
      "the sampler, optionally with from_config settings as NAME:KEY=VALUE,… (unset: the model's own)");
}
template <class O>
void size_rows(std::vector<Row>& rows) {
  rows.push_back(F(width, Int).range(0, 16384).about("image width, a multiple of 8 (0: the model's size)"));
  rows.push_back(F(height, Int).range(0, 16384).about("image height, a multiple of 8 (0: the model's size)"));
}
template <class O>
Row clip_skip() {
  return F(clip_skip, Int).at_least(0).about("text-encoder layers to skip from the end (0: use the last)");
}
template <class O>
Row vae_tile_size() {
  return F(vae_tile_size, Int).range(0, 16384).cli("vae-tiles").about(
      "decode (and encode) in tiles of this many pixels: big images in less memory, the same pixels (0: whole)");
}
template <class O>
Row prompt_syntax() {
  static_assert(BIOESP_PROMPT_PLAIN == 0 && BIOESP_PROMPT_WEIGHTED == 1, "prompt_syntax choices are in enum order");
  return F(prompt_syntax, Enum).one_of({"plain", "weighted"}).about(
      "plain: as diffusers (77 tokens, brackets are words); weighted: as A1111 ((x:1.3), [x], BREAK, any length)");
}

// SDXL's size and crop conditioning and refiners' aesthetic scores.
template <class O>
void micro_conditioning_rows(std::vector<Row>& rows) {
  rows.push_back(F(original_width, Int).range(0, 16384).about("SDXL: the original width it is conditioned on (0: the image's)"));
  rows.push_back(F(original_height, Int).range(0, 16384).about("SDXL: the original height it is conditioned on (0: the image's)"));
  rows.push_back(F(crop_left, Int).range(0, 16384).about("SDXL: the crop's left edge it is conditioned on"));
  rows.push_back(F(crop_top, Int).range(0, 16384).about("SDXL: the crop's top edge it is conditioned on"));
  rows.push_back(F(target_width, Int).range(0, 16384).about("SDXL: the target width it is conditioned on (0: the image's)"));
  rows.push_back(F(target_height, Int).range(0, 16384).about("SDXL: the target height it is conditioned on (0: the image's)"));
  rows.push_back(F(negative_original_width, Int).range(0, 16384).about(
      "SDXL: the negative half's original width (0: the positive one's)"));
  rows.push_back(F(negative_original_height, Int).range(0, 16384).about(
      "SDXL: the negative half's original height (0: the positive one's)"));
  rows.push_back(F(negative_crop_left, Int).range(0, 16384).about(
      "SDXL: the negative half's crop left edge (once any negative_* size or crop is set)"));
  rows.push_back(F(negative_crop_top, Int).range(0, 16384).about(
      "SDXL: the negative half's crop top edge (once any negative_* size or crop is set)"));
  rows.push_back(F(negative_target_width, Int).range(0, 16384).about(
      "SDXL: the negative half's target width (0: the positive one's)"));
  rows.push_back(F(negative_target_height, Int).range(0, 16384).about(
      "SDXL: the negative half's target height (0: the positive one's)"));
  rows.push_back(F(aesthetic_score, Float).range(0, 10).about("SDXL refiners: the aesthetic score conditioned on"));
  rows.push_back(F(negative_aesthetic_score, Float).range(0, 10).about("SDXL refiners: the negative half's aesthetic score"));
}

// Retries and the Hub's endpoint and token, which fetch, pull and push share.
template <class O>
void retry_rows(std::vector<Row>& rows) {
  rows.push_back(F(max_retries, Int).range(0, 100).cli("retries").about("retries of a failed request"));
  rows.push_back(F(retry_delay, Double).range(0, 3600).about("the first retry's wait in seconds, doubling"));
}
template <class O>
void hub_rows(std::vector<Row>& rows) {
  rows.push_back(F(endpoint, String).about("the Hub's address (unset: $HF_ENDPOINT, else https://huggingface.co)"));
  rows.push_back(F(token, String).about("a Hub token (unset: $HF_TOKEN, else $HF_HOME/token); never logged"));
}

#define KIND(name, type, init) Kind{name, sizeof(type), [](void* p) { init(static_cast<type*>(p)); }, {}}

Kind weights() {
  using O = bioesp_weights_options;
  Kind k = KIND("weights", O, bioesp_weights_options_init);
  auto& rows = k.rows;
  rows = {struct_size<O>(),
          F(variant, String).about("prefer <name>.<variant>.safetensors files in folders, e.g. fp16"),
          F(to_diffusers, Bool).about("rename a single-file checkpoint's tensors to diffusers components"),
          F(config_dir, String).cli("config").about("a diffusers folder whose configs describe a single file's architecture")};
  log_rows<O>(rows);
  return k;
}

Kind model() {
  using O = bioesp_model_options;
  Kind k = KIND("model", O, bioesp_model_options_init);
  auto& rows = k.rows;
  static_assert(BIOESP_DTYPE_F32 == 0 && BIOESP_DTYPE_F16 == 1 && BIOESP_DTYPE_BF16 == 2, "dtype choices are in enum order");
  rows = {struct_size<O>(),
          F(config_dir, String).cli("config").about("a diffusers folder (or Hub id) with the configs and tokenizer of a single file"),
          F(variant, String).about("prefer *.<variant>.safetensors weights, e.g. fp16"),
          device<O>(),
          device_index<O>(),
          F(dtype, Enum).one_of({"f32", "f16", "bf16"}).about("the weights' precision"),
          threads<O>()};
  log_rows<O>(rows);
  rows.push_back(F(vae, String).about(
      "an autoencoder in place of the model's VAE: a full one, or TAESD (madebyollin/taesd, taesd_decoder.pth …)"));
  rows.push_back(F(preview_vae, String).about("a tiny autoencoder (TAESD) that decodes only the live previews"));
  static_assert(BIOESP_WEIGHTS_AS_DTYPE == 0 && BIOESP_WEIGHTS_F16 == 1 && BIOESP_WEIGHTS_BF16 == 2 &&
                    BIOESP_WEIGHTS_INT8 == 3 && BIOESP_WEIGHTS_AS_FILE == 4,
                "weight storage choices are in enum order");
  rows.push_back(F(weight_storage, Enum).one_of({"dtype", "f16", "bf16", "int8", "file"}).about(
      "Linear and Conv2d weights held as the file holds them (16-bit ones widened per call: the same numbers), in dtype, "
      "or in f16/bf16 (int8: Linear ones) and widened per call: less memory, some drift"));
  return k;
}

Kind generate() {
  using O = bioesp_generate_options;
  Kind k = KIND("generate", O, bioesp_generate_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  LIST(prompts, Strings, num_prompts, "prompt", "a prompt; several make a batch");
  rows.push_back(negative_prompt<O>());
  rows.push_back(steps<O>());
  rows.push_back(guidance<O>());
  rows.push_back(seed<O>("the seed of the noise (a CPU generator, as torch.Generator(\"cpu\").manual_seed)"));
  rows.push_back(scheduler<O>());
  size_rows<O>(rows);
  rows.push_back(F(images_per_prompt, Int).range(1, 1024).cli("num-images").about("images per prompt"));
  rows.push_back(clip_skip<O>());
  rows.push_back(F(init_image, Image).about("img2img: the picture to start from (cropped to multiples of 8)"));
  rows.push_back(F(strength, Float).above(0).at_most(1).about("img2img: how much of the init image is redrawn"));
  progress_rows<O>(rows);
  log_rows<O>(rows);
  rows.push_back(F(device_generator, Bool).about("draw the noise on the model's device (other images than the CPU's)"));
  rows.push_back(vae_tile_size<O>());
  rows.push_back(F(tiling, Text).one_of({"none", "x", "y", "both"})
                     .about("textures that repeat without seams along these axes (unset: none; not with vae_tile_size)"));
  rows.push_back(F(background, Text).one_of({"opaque", "transparent"})
                     .about("transparent: a sprite, its plain backdrop matted away into RGBA (unset: opaque)"));
  rows.push_back(F(eta, Float).at_most(1).about(
      "DDIM's eta and TCD's gamma: the share of fresh noise per step, 0 to 1 (negative: the scheduler's own)"));
  rows.push_back(F(controls, Structs).counted_by("num_controls").not_exposed(
      "a list of bioesp_control structs (a ControlNet, its image, scale and window): the command line's --control, "
      "the bindings' add_control"));
  rows.push_back(F(num_controls, Size).not_exposed("the length of controls: set with the list"));
  rows.push_back(F(guess_mode, Bool).about("ControlNets see only the prompt's half of the CFG batch, residuals scaled by depth"));
  rows.push_back(F(mask, Image).about("inpainting the init image: white repaints, black keeps (any size: resized to it)"));
  rows.push_back(F(mask_blur, Float).range(0, 1024).about("the mask blurred first by a Gaussian of this radius in pixels"));
  rows.push_back(F(padding_mask_crop, Int).range(0, 16384).about(
      "paint only the region around the mask, widened by this many pixels, at the image's size (0: the whole image)"));
  rows.push_back(F(outpaint_left, Int).range(0, 8192).about("outpainting: pixels the canvas grows on the left, painted anew"));
  rows.push_back(F(outpaint_top, Int).range(0, 8192).about("outpainting: pixels the canvas grows at the top, painted anew"));
  rows.push_back(F(outpaint_right, Int).range(0, 8192).about("outpainting: pixels the canvas grows on the right, painted anew"));
  rows.push_back(F(outpaint_bottom, Int).range(0, 8192).about("outpainting: pixels the canvas grows at the bottom, painted anew"));
  rows.push_back(prompt_syntax<O>());
  rows.push_back(F(preview_every, Int).range(0, 1000).about("a live preview of each image every this many steps (0: none)"));
  rows.push_back(F(preview, Function).not_exposed(
      "a C function pointer: the command line writes the previews with --preview-dir, bindings keep the job's latest"));
  rows.push_back(F(preview_user, Pointer).not_exposed("the pointer handed back to preview"));
  rows.push_back(F(cache_interval, Int).range(0, 1000).about(
      "step caching (DeepCache): a full UNet pass every this many steps, the deep features reused between (0, 1: off)"));
  rows.push_back(F(cache_branch, Int).range(0, 1000).about(
      "step caching: the skip connection down to which the shallow branch is recomputed (0: conv_in's; SD 1.x: up to 11)"));
  micro_conditioning_rows<O>(rows);
  rows.push_back(F(token_merging, Float).range(0, 0.75).about(
      "token merging (ToMe): the share of tokens merged before the top level's self-attention (0: off, exact)"));
  return k;
}

Kind animate() {
  using O = bioesp_animate_options;
  Kind k = KIND("animate", O, bioesp_animate_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  LIST(prompts, Strings, num_prompts, "prompt", "a keyframe's prompt (one is held for every keyframe)");
  LIST(seeds, U64s, num_seeds, "seed", "a keyframe's seed (one is held); as many as prompts, or one");
  rows.push_back(F(frames, Int).range(2, 10000).about("frames from the first keyframe to the last"));
  rows.push_back(F(pingpong, Bool).about("play back again without repeating the ends: a smooth loop"));
  rows.push_back(negative_prompt<O>());
  rows.push_back(steps<O>());
  rows.push_back(guidance<O>());
  rows.push_back(scheduler<O>());
  size_rows<O>(rows);
  rows.push_back(clip_skip<O>());
  progress_rows<O>(rows);
  log_rows<O>(rows);
  rows.push_back(vae_tile_size<O>());
  rows.push_back(prompt_syntax<O>());
  return k;
}

Kind animation() {
  using O = bioesp_animation_options;
  Kind k = KIND("animation", O, bioesp_animation_options_init);
  k.rows = {struct_size<O>(), F(fps, Double).above(0).at_most(240).about("frames per second"),
            F(loop, Bool).about("GIF: repeat forever"),
            F(quality, Int).range(1, 100).about("MP4 and WebM: 1 (smallest) to 100 (best)")};
  return k;
}

Kind save() {
  using O = bioesp_save_options;
  Kind k = KIND("save", O, bioesp_save_options_init);
  k.rows = {struct_size<O>(), F(jpeg_quality, Int).range(1, 100).about("JPEG files: 1 (smallest) to 100 (best)")};
  return k;
}

Kind fetch() {
  using O = bioesp_fetch_options;
  Kind k = KIND("fetch", O, bioesp_fetch_options_init);
  auto& rows = k.rows;
  static_assert(BIOESP_SOURCE_CATEGORY == 0 && BIOESP_SOURCE_TITLES == 3, "source choices are in enum order");
  rows.push_back(struct_size<O>());
  rows.push_back(F(source, Enum).one_of({"category", "campaign", "search", "titles"}).about("what value names"));
  rows.push_back(F(value, String).about("the category, upload campaign or search text"));
  LIST(titles, Strings, num_titles, "title", "a file title (\"File:…\") for source titles");
  rows.push_back(F(limit, Int).at_least(0).about("at most this many files, a seeded random sample (0: all)"));
  rows.push_back(seed<O>("which files a limited sample takes"));
  rows.push_back(F(width, Int).range(20, 3840).about("the thumbnail width, one Commons serves (20 … 500 … 3840)"));
  rows.push_back(F(original, Bool).about("download the originals instead (SHA-1 verified)"));
  rows.push_back(F(licenses, String).about("licenses to keep, a comma list (unset: cc0,pd,cc-by,cc-by-sa)"));
  rows.push_back(F(allow_restricted, Bool).about("keep files with restrictions such as personality rights"));
  rows.push_back(F(keywords, String).about("a comma list: keep files mentioning any"));
  rows.push_back(F(contact, String).about("your e-mail or URL for the User-Agent, as Wikimedia asks"));
  rows.push_back(F(api, String).about("the MediaWiki endpoint (unset: $BIOESP_COMMONS_API, else Commons)"));
  rows.push_back(F(out, String).about("the dataset folder: images, manifest.jsonl, ATTRIBUTION.md"));
  retry_rows<O>(rows);
  progress_rows<O>(rows);
  log_rows<O>(rows);
  return k;
}

Kind prepare() {
  using O = bioesp_prepare_options;
  Kind k = KIND("prepare", O, bioesp_prepare_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  rows.push_back(F(in, String).about("a folder of PNG and JPEG images"));
  rows.push_back(F(out, String).about("the prepared dataset's folder"));
  rows.push_back(F(size, Int).range(8, 8192).about("the square side in pixels, a multiple of 8"));
  rows.push_back(F(crop, Text).one_of({"center", "attention", "pad"})
                     .about("how a picture becomes square: never stretched (unset: center)"));
  rows.push_back(F(background, Rgb).about("padding and transparency colour"));
  rows.push_back(F(caption, String).about("every image's caption (unset: the manifest's, else the file name)"));
  rows.push_back(F(caption_from_metadata, Bool).about("append the species or object name from the manifest"));
  rows.push_back(F(near_duplicate_distance, Int).cli("near-duplicates").at_most(64)
                     .about("difference-hash bits that make a near duplicate (negative: exact duplicates only)"));
  progress_rows<O>(rows);
  log_rows<O>(rows);
  return k;
}

// Training: data, optimisation, what is trained, and where it runs and is kept.
void train_data_rows(std::vector<Row>& rows) {
  using O = bioesp_train_options;
  rows.push_back(F(model, String).about("the base model: a diffusers folder, a single file with config, or a Hub id"));
  rows.push_back(F(config_dir, String).cli("config").about("configs and tokenizer for a single-file model"));
  rows.push_back(F(data, String).about("the instance images: a folder of PNG and JPEG, or a bioesp dataset"));
  rows.push_back(F(prompt, String).about("the instance prompt, for images without a caption of their own"));
  rows.push_back(F(use_captions, Bool).cli("captions").about("use manifest.jsonl and <image>.txt captions where present"));
  rows.push_back(F(class_data, String).about("prior preservation: the class images' folder"));
  rows.push_back(F(class_prompt, String).about("prior preservation: the class prompt"));
  rows.push_back(F(num_class_images, Int).at_least(0).about("class images to have (missing ones are generated first)"));
  rows.push_back(F(prior_weight, Float).at_least(0).about("the weight of the prior-preservation loss"));
  rows.push_back(F(resolution, Int).range(8, 8192).about("training size in pixels, a multiple of 8"));
  rows.push_back(F(random_crop, Bool).about("crop at random places instead of the centre"));
  rows.push_back(F(flip, Bool).about("mirror images at random"));
  rows.push_back(F(cache_latents, Bool).about("encode every image once, and its mirror image with flip (the VAE then does no more work)"));
  rows.push_back(F(steps, Int).at_least(0).about("optimizer steps (0: epochs passes over the data)"));
  rows.push_back(F(epochs, Int).at_least(1).about("passes over the data when steps is 0"));
  rows.push_back(F(batch_size, Int).range(1, 4096).cli("batch").about("images per micro-batch"));
  rows.push_back(F(grad_accumulation, Int).range(1, 4096).cli("grad-accum").about("micro-batches per optimizer step"));
}

void train_optimizer_rows(std::vector<Row>& rows) {
  using O = bioesp_train_options;
  rows.push_back(F(learning_rate, Float).above(0).cli("lr").about("the learning rate"));
  rows.push_back(F(scale_lr, Bool).about("multiply the rate by batch size × accumulation × processes"));
  rows.push_back(F(lr_scheduler, Text).one_of(train::lr_schedule_names()).about("the learning-rate schedule (unset: constant)"));
  rows.push_back(F(lr_warmup_steps, Int).at_least(0).cli("warmup").about("steps of linear warm-up"));
  rows.push_back(F(lr_cycles, Int).at_least(1).about("cosine_with_restarts: cycles"));
  rows.push_back(F(lr_power, Float).above(0).about("polynomial: the power"));
  rows.push_back(F(adam_beta1, Float).at_least(0).below(1).about("AdamW's first-moment decay"));
  rows.push_back(F(adam_beta2, Float).at_least(0).below(1).about("AdamW's second-moment decay"));
  rows.push_back(F(adam_weight_decay, Float).at_least(-1).cli("weight-decay").about(
      "AdamW's decoupled weight decay of the UNet's weights (negative: 1e-4 for SDXL, 1e-2 for SD 1.x/2.x, as the scripts)"));
  rows.push_back(F(adam_epsilon, Float).at_least(0).about("AdamW's epsilon"));
  rows.push_back(F(max_grad_norm, Float).at_least(0).about("clip the gradients' norm to this (0: no clipping)"));
}

void train_model_rows(std::vector<Row>& rows) {
  using O = bioesp_train_options;
  rows.push_back(F(rank, Int).range(1, 1024).about("the LoRA rank"));
  rows.push_back(F(alpha, Float).at_least(0).about("the LoRA alpha (0: the rank)"));
  rows.push_back(F(lora_dropout, Float).at_least(0).below(1).about("dropout on the LoRA layers' input"));
  rows.push_back(F(train_text_encoder, Bool).about("LoRA on the text encoders' attention too (SDXL: both)"));
  rows.push_back(F(full, Bool).about("train every UNet weight instead of a LoRA; saves a model folder"));
  rows.push_back(F(noise_offset, Float).about("offset noise (0: off)"));
  rows.push_back(F(snr_gamma, Float).at_least(0).about("min-SNR loss weighting (0: off; 5 is common)"));
  rows.push_back(F(mixed_precision, Text).one_of({"no", "fp16", "bf16"})
                     .about("frozen weights in that type, trained ones in float32 (unset: no; fp16 needs CUDA)"));
  rows.push_back(F(gradient_checkpointing, Bool).about("recompute the UNet's blocks in the backward pass: less memory"));
}

void train_run_rows(std::vector<Row>& rows) {
  using O = bioesp_train_options;
  rows.push_back(device<O>());
  rows.push_back(device_index<O>());
  rows.push_back(threads<O>());
  rows.push_back(seed<O>("LoRA initialisation, data order, crops, noise and timesteps"));
  rows.push_back(F(checkpoint_every, Int).at_least(0).about("write a checkpoint every this many steps (0: only at the end or a stop)"));
  rows.push_back(F(checkpoints_kept, Int).at_least(0).about("checkpoints kept (0: all)"));
  rows.push_back(F(resume, Bool).about("continue from the newest checkpoint in out/checkpoints"));
  rows.push_back(F(validation_prompt, String).about("draw this every validation_every steps and at the end"));
  rows.push_back(F(validation_every, Int).at_least(0).about("steps between validation images (0: only at the end)"));
  rows.push_back(F(validation_steps, Int).range(1, 1000).about("denoising steps of validation and class images"));
  rows.push_back(F(save_kohya, Bool).cli("kohya").about("also write kohya_lora.safetensors (A1111 / ComfyUI naming)"));
  rows.push_back(F(out, String).about("the output folder: the LoRA (or model folder), checkpoints/, validation/, train_log.jsonl"));
}

Kind train() {
  using O = bioesp_train_options;
  Kind k = KIND("train", O, bioesp_train_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  train_data_rows(rows);
  train_optimizer_rows(rows);
  train_model_rows(rows);
  train_run_rows(rows);
  progress_rows<O>(rows);
  log_rows<O>(rows);
  rows.push_back(F(train_vae, Bool).about("train the VAE alone (L1 + KL) and measure its scaling factor"));
  rows.push_back(F(kl_weight, Float).at_least(0).about("VAE training: the KL term's weight against the summed L1"));
  rows.push_back(F(tag_dropout, Float).at_least(0).below(1).about("drop each comma-separated caption tag with this probability"));
  rows.push_back(F(shuffle_tags, Bool).about("shuffle the kept caption tags"));
  rows.push_back(F(caption_dropout, Float).at_least(0).below(1).about("train on the empty caption this often"));
  rows.push_back(F(save_half, Bool).about("write model folders in float16"));
  // Across processes (train/distributed.h): torchrun's variables when world_size is 0.
  rows.push_back(F(world_size, Int).range(0, 65536).about(
      "processes training together (0: torchrun's WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, else 1)"));
  rows.push_back(F(process_rank, Int).range(0, 65535).about("this process's rank, 0 to world_size - 1 (with world_size)"));
  rows.push_back(F(local_rank, Int).range(0, 65535).about("its place on this machine: with CUDA, the GPU it takes"));
  rows.push_back(F(master_addr, String).about("where rank 0 hosts the rendezvous (unset: 127.0.0.1)"));
  rows.push_back(F(master_port, Int).range(1, 65535).about("the rendezvous port on rank 0's machine"));
  rows.push_back(F(backend, Text).one_of(train::backend_names()).about(
      "the process group: auto (unset: nccl for CUDA where the build has it, else gloo), gloo or nccl"));
  rows.push_back(F(timeout, Float).above(0).at_most(1e7).about(
      "seconds to join and to wait for any other rank; one that dies or freezes stops the others within it"));
  rows.push_back(F(vae, String).about(
      "a VAE folder or Hub id that encodes the pictures in place of the model's, with its own scaling factor "
      "(e.g. madebyollin/sdxl-vae-fp16-fix; not TAESD)"));
  rows.push_back(F(adam_weight_decay_text_encoder, Float).at_least(-1).cli("weight-decay-text-encoder").about(
      "AdamW's weight decay of the text encoders' LoRA (negative: 1e-3 for SDXL, --weight-decay's for SD 1.x/2.x)"));
  rows.push_back(F(text_encoder_lr, Float).at_least(-1).about(
      "the text encoders' learning rate (0: --lr; negative: 5e-6 for SDXL, --lr for SD 1.x/2.x, as the scripts)"));
  return k;
}

Kind new_model() {
  using O = bioesp_new_model_options;
  Kind k = KIND("new_model", O, bioesp_new_model_options_init);
  auto& rows = k.rows;
  rows = {struct_size<O>(),
          F(configs, String).about("a folder with the unet, text_encoder, vae and scheduler configs"),
          F(data, String).about("the dataset whose captions the vocabulary is learned from"),
          F(vocab_size, Int).at_least(0).about("the vocabulary's size (0: the text encoder config's)"),
          seed<O>("weight initialisation"),
          F(out, String).about("a folder that does not exist yet")};
  log_rows<O>(rows);
  return k;
}

Kind pull() {
  using O = bioesp_pull_options;
  Kind k = KIND("pull", O, bioesp_pull_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  rows.push_back(F(repo, String).about("ORG/NAME or ORG/NAME@REVISION"));
  rows.push_back(F(revision, String).about("a branch, tag or commit (unset: the one in repo, else main)"));
  LIST(include, Strings, num_include, "include", "a glob of files to fetch (none: what a pipeline needs)");
  rows.push_back(F(variant, String).about("prefer *.<variant>.* weights, e.g. fp16"));
  hub_rows<O>(rows);
  rows.push_back(F(cache_dir, String).about("the cache (unset: $HF_HUB_CACHE, else $HF_HOME/hub)"));
  rows.push_back(F(offline, Bool).about("use only the cache (also when $HF_HUB_OFFLINE=1)"));
  retry_rows<O>(rows);
  progress_rows<O>(rows);
  log_rows<O>(rows);
  return k;
}

Kind push() {
  using O = bioesp_push_options;
  Kind k = KIND("push", O, bioesp_push_options_init);
  auto& rows = k.rows;
  rows.push_back(struct_size<O>());
  rows.push_back(F(path, String).about("a LoRA file, a training output folder or a model folder"));
  rows.push_back(F(repo, String).about("ORG/NAME, created when missing"));
  rows.push_back(F(private_repo, Bool).cli("private").about("create the repository private"));
  rows.push_back(F(commit_message, String).cli("message").about("the commit message (unset: \"Upload with bioesp\")"));
  rows.push_back(F(base_model, String).about("the base model for the model card (unset: from the weights' metadata)"));
  rows.push_back(F(dataset, String).about("a dataset folder whose manifest credits the images (unset: the training's copy)"));
  hub_rows<O>(rows);
  retry_rows<O>(rows);
  progress_rows<O>(rows);
  log_rows<O>(rows);
  return k;
}

Kind evaluate() {
  using O = bioesp_evaluate_options;
  Kind k = KIND("evaluate", O, bioesp_evaluate_options_init);
  auto& rows = k.rows;
  rows = {struct_size<O>(),
          F(data, String).about("captioned pictures the model did not train on (a dataset folder)"),
          F(captions, String).about("a dataset whose captions are the wrong candidates (unset: data's own)"),
          F(classify, Int).range(0, 1000).about(
              "the diffusion classifier's top-1 accuracy among this many captions (0: the loss alone; 1 is refused)"),
          F(timesteps, Int).range(1, 100000).about("timesteps spread evenly over the schedule"),
          F(noises, Int).range(1, 1000).about("fixed noises at each timestep"),
          seed<O>("the noises and the wrong captions drawn for each picture")};
  log_rows<O>(rows);
  return k;
}

// Flags default to the name with dashes; fields not set by name have none.
void derive_flags(Kind& k) {
  for (Row& r : k.rows) {
    if (r.hidden) {
      r.flag.clear();
    } else if (r.flag.empty()) {
      r.flag = r.name;
      for (char& c : r.flag) c = c == '_' ? '-' : c;
    }
  }
}

}  // namespace

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> all = [] {
    std::vector<Kind> k = {weights(), model(),   generate(), animate(),   animation(), save(),
                           fetch(),   prepare(), train(),    new_model(), pull(),      push(),
                           evaluate()};
    for (auto& kind : k) derive_flags(kind);
    return k;
  }();
  return all;
}

}  // namespace bioesp::options
