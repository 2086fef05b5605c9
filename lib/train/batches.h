// The data pipeline of a training run: the examples in shuffled epochs, and each micro-batch as
// the trainer takes it (StepInputs) — pictures cropped and flipped or their cached latents,
// captions varied and encoded, and the noise and timesteps drawn.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/pipeline.h"
#include "train/dataset.h"
#include "train/trainer.h"

namespace bioesp::train {

struct RunOptions;

// Where a dataset is in its shuffled epochs, as PyTorch's DistributedSampler deals them: epoch e
// is a permutation drawn from seed + e (the same on every rank), padded by its first indices to a
// multiple of the world size; rank r takes every world-th index from the r-th on.
struct DataOrder {
  uint64_t seed = 0;
  int rank = 0, world = 1;
  int64_t epoch = 0;
  int64_t position = 0;  // within this rank's share of the epoch
  // The next `count` indices of a dataset of `size`, starting a new epoch when one ends.
  std::vector<int64_t> next(int64_t count, int64_t size);
  // This rank's share of an epoch: ⌈size / world⌉ indices.
  static int64_t share(int64_t size, int world) { return (size + world - 1) / world; }

 private:
  std::vector<int64_t> indices_;  // this rank's share of `epoch`
  int64_t dealt_ = -1;            // the epoch indices_ holds
};

class Batches {
 public:
  // With cached latents, every picture is encoded once here (twice with flips: as it is and
  // mirrored, one of the two drawn each step); `stage` reports the progress.
  Batches(const RunOptions& o, pipeline::StableDiffusion& sd, Trainer& tr, const std::vector<Example>& examples,
          const std::vector<Example>& prior, const std::function<void(const char*, int, int)>& stage);
  // The next micro-batch in the data orders (instance images, then as many class images), every
  // other random draw (crops, flips, VAE noise, noise, timesteps, captions) from `gen`.
  StepInputs next(DataOrder& data, DataOrder& prior_data, at::Generator& gen);

 private:
  // A picture's latent posterior (mean, std) and the centre crop it was encoded from; with flips,
  // the mirrored picture's too (flipping a latent is not the latent of the flipped picture).
  struct Cached {
    torch::Tensor mean, std, mirrored_mean, mirrored_std;
    Crop crop, mirrored_crop;
  };
  Cached encode(const Example& e);
  // A caption's ids from each tokenizer (the second undefined but for SDXL).
  std::pair<torch::Tensor, torch::Tensor> ids(const std::string& caption);
  pipeline::PromptEmbeds embedding(const std::string& caption);
  // The latents' posteriors of the pictures, or their pixels, and the VAE noise; SDXL's time ids.
  void add_images(StepInputs& in, const std::vector<const Example*>& batch, const std::vector<const Cached*>& cached,
                  at::Generator& gen);
  const RunOptions& o_;
  pipeline::StableDiffusion& sd_;
  Trainer& tr_;
  const std::vector<Example>& examples_;
  const std::vector<Example>& prior_;
  bool varied_;  // captions vary per step, so their embeddings are not kept
  std::map<std::string, pipeline::PromptEmbeds> text_cache_;
  std::vector<Cached> cached_, cached_prior_;
  int64_t latent_size_, channels_;
};

// A caption as training feeds it: tags dropped and shuffled, or dropped whole (see RunOptions).
std::string vary_caption(const std::string& caption, double tag_dropout, bool shuffle, double caption_dropout,
                         at::Generator& gen);

}  // namespace bioesp::train
