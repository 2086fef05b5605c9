// The start of training from scratch: a model folder from component configs, with freshly
// initialised weights and a vocabulary learned from the training captions.
#pragma once

#include <cstdint>
#include <string>

#include "io/weights.h"

namespace bioesp::train {

struct NewModelOptions {
  std::string configs;  // unet/, text_encoder/, vae/ config.json, scheduler/scheduler_config.json,
                        // optionally model_index.json
  std::string data;     // a dataset whose captions the vocabulary is learned from
  int vocab_size = 0;   // 0: the text encoder config's
  uint64_t seed = 0;
  std::string out;      // must not exist yet; written whole or not at all
  io::Logger log;
};

// Writes the folder and returns its path. The text encoder's vocab_size and special token ids
// are set from the learned vocabulary.
std::string new_model(const NewModelOptions& o);

}  // namespace bioesp::train
