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

// Where a dataset is in its shuffled epochs.
struct DataOrder {
  torch::Tensor order;  // a permutation of the examples
  int64_t position = 0;
  int64_t epoch = 0;
  // The next `count` example indices, starting a new epoch (a new permutation) when one ends.
  std::vector<int64_t> next(int64_t count, int64_t size, at::Generator& gen);
};

class Batches {
 public:
  // With cached latents, every picture is encoded once here; `stage` reports the progress.
  Batches(const RunOptions& o, pipeline::StableDiffusion& sd, Trainer& tr, const std::vector<Example>& examples,
          const std::vector<Example>& prior, const std::function<void(const char*, int, int)>& stage);
  // The next micro-batch in the data orders (instance images, then as many class images), every
  // random draw from `gen`.
  StepInputs next(DataOrder& data, DataOrder& prior_data, at::Generator& gen);

 private:
  torch::Tensor ids(const std::string& caption);
  torch::Tensor embedding(const std::string& caption);
  // The latents' posteriors (mean, std) of the pictures, or their pixels, and the VAE noise.
  void add_images(StepInputs& in, const std::vector<const Example*>& batch,
                  const std::vector<std::pair<torch::Tensor, torch::Tensor>>& posts, at::Generator& gen);
  const RunOptions& o_;
  pipeline::StableDiffusion& sd_;
  Trainer& tr_;
  const std::vector<Example>& examples_;
  const std::vector<Example>& prior_;
  bool varied_;  // captions vary per step, so their embeddings are not kept
  std::map<std::string, torch::Tensor> text_cache_;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> cached_, cached_prior_;
  int64_t latent_size_, channels_;
};

// A caption as training feeds it: tags dropped and shuffled, or dropped whole (see RunOptions).
std::string vary_caption(const std::string& caption, double tag_dropout, bool shuffle, double caption_dropout,
                         at::Generator& gen);

}  // namespace bioesp::train
