// The trainer of one model as diffusers' train_dreambooth_lora.py / train_dreambooth.py train it
// (SDXL as train_dreambooth_lora_sdxl.py: both text encoders, the UNet's added conditions), and
// CompVis' autoencoder, for a VAE of one's own: LoRA adapters or every weight, the loss of one
// micro-batch with every random draw given, backward, clipping and AdamW, and the LoRA saved in
// diffusers' (and kohya's) layout. A whole run (data, checkpoints, validation, the saved result)
// is train/run.h.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "io/weights.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"
#include "train/lr_schedule.h"
#include "train/optim.h"

namespace bioesp::train {

// What is trained and how; shared by the explicit-input entry point and the full run.
struct Setup {
  int rank = 4;
  double alpha = 0;          // 0: the rank (scale 1, as diffusers' script)
  double dropout = 0;
  std::vector<std::string> unet_targets{"to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_v_proj"};
  std::vector<std::string> text_targets{"q_proj", "k_proj", "v_proj", "out_proj"};
  bool train_text_encoder = false;  // SDXL: both text encoders
  bool full = false;         // every UNet weight (and the text encoders' when train_text_encoder)
  bool vae = false;          // every VAE weight, on reconstruction + KL (a from-scratch model's first stage)
  double kl_weight = 1e-6;   // the VAE's KL term against its L1 reconstruction, both summed (CompVis' weighting)
  // Negative decays are the scripts' defaults (with_script_defaults): train_dreambooth_lora_sdxl.py
  // decays the UNet's weights by 1e-4 and the text encoders' by 1e-3, train_dreambooth_lora.py
  // all by 1e-2.
  AdamWOptions adam{0.9, 0.999, -1, 1e-8};
  double text_encoder_weight_decay = -1;
  double max_grad_norm = 1.0;
  double prior_weight = 1.0;
  double noise_offset = 0;   // kohya: noise += offset · N(0, 1) per sample and channel
  double snr_gamma = 0;      // min-SNR-γ loss weighting when > 0
  bool fp16_loss_scaling = false;
  bool gradient_checkpointing = false;  // recompute UNet blocks in the backward pass (less memory)
  uint64_t seed = 0;         // LoRA initialisation
};

// The setup with its negative weight decays replaced by the scripts' defaults for the family.
Setup with_script_defaults(Setup s, bool sdxl);

// One micro-batch with every random draw given. Either pixel_values + vae_eps, or latents.
struct StepInputs {
  torch::Tensor pixel_values;           // [B, 3, H, W] in [-1, 1]
  torch::Tensor vae_eps;                // [B, 4, h, w]: posterior sample = mean + std · eps
  torch::Tensor latents;                // [B, 4, h, w], already × scaling_factor
  torch::Tensor noise;                  // [B, 4, h, w]
  torch::Tensor timesteps;              // [B] int64 in [0, num_train_timesteps)
  torch::Tensor encoder_hidden_states;  // [B or 1, 77, D] (frozen text encoders)
  torch::Tensor pooled;                 // SDXL, with them: the second encoder's pooled projection [B or 1, P]
  torch::Tensor input_ids, input_ids_2; // [B, 77] instead, when the text encoders train (SDXL: both tokenizers')
  torch::Tensor time_ids;               // SDXL: add_time_ids [B, 6] of each picture's original size and crop
  int64_t prior = 0;                    // the last `prior` entries are class images
};

// The forward process training noises latents with (DDPM, from the model's scheduler config);
// refused unless the model predicts epsilon or velocity.
std::unique_ptr<sched::Scheduler> noise_schedule(const pipeline::StableDiffusion& sd);

// The VAE posterior of images in [-1, 1] (mean, std), float32, without gradients; upcast from
// float16 when that overflows.
std::pair<torch::Tensor, torch::Tensor> posterior(pipeline::StableDiffusion& sd, const torch::Tensor& pixel_values);

// The UNet's squared prediction error on `latents` noised at `timesteps`, one mean per sample
// ([B], float32): against the noise, or the velocity for a v_prediction schedule. The objective
// training minimises and evaluation (train/evaluate.h) measures. Text embeddings of batch 1
// serve every sample; SDXL's UNet takes the pooled projection and `time_ids` as added conditions.
torch::Tensor denoising_errors(pipeline::StableDiffusion& sd, const sched::Scheduler& noise_schedule,
                               const torch::Tensor& latents, const torch::Tensor& noise, const torch::Tensor& timesteps,
                               const pipeline::PromptEmbeds& text, const torch::Tensor& time_ids = {});

// SDXL's add_time_ids of a training picture, as train_dreambooth_lora_sdxl.py's compute_time_ids
// makes them: [original height, width, crop top, left, resolution, resolution], float32 [1, 6].
torch::Tensor training_time_ids(int original_width, int original_height, int64_t crop_top, int64_t crop_left,
                                int resolution);

class Trainer {
 public:
  Trainer(pipeline::StableDiffusion& sd, const Setup& s);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Forward and backward of one micro-batch; gradients accumulate, the loss is divided by
  // `accumulation` for the backward pass. Returns the loss (undivided). `gen` feeds LoRA dropout.
  double backward(const StepInputs& in, int accumulation, at::Generator* gen = nullptr);
  // The loss of one micro-batch as a tensor, without a host synchronisation when the inputs are
  // on the model's device already (what a captured step records).
  torch::Tensor loss(const StepInputs& in, at::Generator* gen = nullptr);
  // Clips, then one AdamW step at `lr` (the text encoders' LoRA at `text_encoder_lr`); returns
  // the gradient norm before clipping. A step whose fp16 gradients overflowed is skipped
  // (returns a non-finite norm).
  double update(double lr, double text_encoder_lr);
  double update(double lr) { return update(lr, lr); }

  // Trainable tensors under their saved names ("unet.<module>.lora.down.weight", the text
  // encoders' under "text_encoder." and "text_encoder_2.", or
  // "unet.<param>" / "vae.<param>" when training fully), in a fixed order.
  const std::vector<std::pair<std::string, torch::Tensor>>& parameters() const { return params_; }
  AdamW& optimizer() { return *adam_; }
  GradScaler& scaler() { return scaler_; }
  const Setup& setup() const { return s_; }  // with the scripts' defaults in place
  torch::Device device() const { return sd_.device(); }
  const sched::Scheduler& noise_schedule() const { return *noise_; }
  // posterior() of the trained model.
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& pixel_values);
  // The LoRA, written atomically: diffusers keys (alpha folded into up when alpha ≠ rank), or
  // kohya keys with .alpha (SDXL: lora_te1_/lora_te2_, the UNet's layers by their original names).
  void save_lora(const std::string& path, const std::vector<std::pair<std::string, std::string>>& metadata,
                 bool kohya) const;

 private:
  // The text encoders by the component names their LoRA layers are saved under.
  std::vector<std::pair<std::string, torch::nn::Module*>> text_encoders();
  void add_adapters(torch::nn::Module& root, const std::string& component, const std::vector<std::string>& targets,
                    at::Generator& gen);
  // The two objectives: the UNet's noise (or velocity) prediction, and the VAE's reconstruction.
  torch::Tensor denoising_loss(const StepInputs& in, at::Generator* gen);
  torch::Tensor vae_loss(const StepInputs& in);
  pipeline::StableDiffusion& sd_;
  Setup s_;
  std::unique_ptr<sched::Scheduler> noise_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::unique_ptr<AdamW> adam_;
  GradScaler scaler_;
};

}  // namespace bioesp::train
