// A whole training run from options, as `bioesp train` and bioesp_train() do it: the model and
// data loaded, class images made, then step after step (train/batches.h feeds the trainer of
// train/trainer.h), with checkpoints and the log (train/checkpoint.h), validation pictures, and
// the result saved.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "io/weights.h"
#include "train/distributed.h"
#include "train/lr_schedule.h"
#include "train/trainer.h"

namespace bioesp::train {

struct Progress {
  int step = 0, total = 0;
  double loss = 0, lr = 0, seconds_per_step = 0, eta_seconds = 0;  // the loss averaged over the ranks
  std::string stage;  // "prepare", "class-images", "cache-latents", "train", "validate", "save"
  int world_size = 1;
  double samples_per_second = 0;  // of all ranks together
};

struct RunOptions {
  std::string model;                 // diffusers folder, or single file with config_dir
  std::string config_dir;
  std::string data, prompt;          // instance images and prompt
  std::string class_data, class_prompt;
  int num_class_images = 0;          // with a class folder: generate up to this many first
  int resolution = 512;
  bool random_crop = false, flip = false, use_captions = true, cache_latents = false;
  // Captions as comma-separated tags: each tag dropped with this probability (one always stays),
  // the kept ones shuffled; and the whole caption replaced by "" with caption_dropout, which
  // classifier-free guidance needs in a model trained from scratch.
  double tag_dropout = 0, caption_dropout = 0;
  bool shuffle_tags = false;
  int steps = 0, epochs = 1;         // steps > 0 wins over epochs
  int batch = 1, grad_accum = 1;
  double lr = 1e-4;
  bool scale_lr = false;
  // The text encoders' base rate (train_dreambooth_lora_sdxl.py's --text_encoder_lr, not scaled
  // by scale_lr): 0 the UNet's; negative 5e-6 for SDXL, the UNet's for SD 1.x/2.x.
  double text_encoder_lr = -1;
  // A diffusers AutoencoderKL folder encoding the pictures in place of the model's VAE (the
  // script's --pretrained_vae_model_name_or_path); empty: the model's.
  std::string vae;
  LrSchedule lr_schedule;
  Setup setup;
  std::string mixed_precision = "no";  // no, fp16, bf16
  torch::Device device = torch::kCPU;
  int checkpoint_every = 0, checkpoints_kept = 3;
  bool resume = false;
  std::string validation_prompt;
  int validation_every = 0, validation_steps = 25;
  bool save_kohya = false;
  torch::ScalarType save_dtype = torch::kFloat32;  // of a saved model folder (full, VAE)
  std::string out;                   // folder
  // Across processes (train/distributed.h): every rank runs run() with the same options but its
  // rank; rank 0 alone writes into `out`.
  DistributedOptions distributed;
  io::Logger log;
  // Return false to cancel: a checkpoint is written first, then BIOESP_ERR_CANCELLED. Every rank
  // is asked each step; when any says stop, all stop after the same step.
  std::function<bool(const Progress&)> progress;
};

// Runs and returns the path of the saved result (the LoRA file, or the model folder).
std::string run(const RunOptions& o);

}  // namespace bioesp::train
