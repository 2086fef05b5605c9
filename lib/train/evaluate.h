// How well a model knows captioned pictures it never trained on: its mean denoising loss with
// their captions, and the diffusion classifier of Li et al. 2023 ("Your Diffusion Model is
// Secretly a Zero-Shot Classifier"): for each picture, the same loss with its caption and K − 1
// others, over the same fixed timesteps and noises for every caption; the lowest loss names the
// caption the model reads in the picture. Top-1 accuracy among K measures its grip on prompts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/weights.h"
#include "pipeline/pipeline.h"

namespace bioesp::train {

struct EvaluateOptions {
  std::string data;      // captioned pictures (a dataset folder, as training reads it)
  std::string captions;  // a dataset whose captions are the wrong candidates; empty: data's own
  int classify = 0;      // K ≥ 2: classify among K captions; 0: the loss alone
  int timesteps = 10;    // spread evenly over the schedule: t_i = (i + ½) · T / n
  int noises = 1;        // fixed noises at each timestep
  uint64_t seed = 0;     // the noises and each picture's wrong captions and their order
  io::Logger log;
};

// Losses this close (relative) are a tie: the same caption in another row of the batch can differ
// in the last float32 bit (the kernels' row blocking and memory alignment).
constexpr double kTie = 1e-6;

struct PictureEvaluation {
  std::string path, caption;
  std::vector<std::string> candidates;  // the K captions in the order scored (the right one among them)
  std::vector<double> losses;           // their mean denoising losses
  size_t chosen = 0;                    // the lowest loss; a tie (within kTie) goes to the earlier candidate
  double loss = 0;                      // with its own caption
  bool correct = false;                 // the chosen caption is its own (the same text)
};

struct Evaluation {
  std::vector<PictureEvaluation> pictures;
  double loss = 0;      // mean over the pictures, with their own captions
  double accuracy = 0;  // top-1 among `classify` captions; NaN without classifying
};

Evaluation evaluate(pipeline::StableDiffusion& sd, const EvaluateOptions& o);

}  // namespace bioesp::train
