// What a run leaves to be resumed: checkpoints (the trained tensors, AdamW's moments, the random
// generator, the data orders) in <out>/checkpoints, and train_log.jsonl, one line per step.
#pragma once

#include <torch/torch.h>

#include <string>

#include "io/weights.h"
#include "pipeline/pipeline.h"
#include "train/batches.h"
#include "train/trainer.h"

namespace bioesp::train {

// Where a run is: the optimizer steps done and the data orders.
struct RunState {
  int step = 0;
  DataOrder data, prior;
};

// Identifies the base model: its UNet's parameter names and shapes and a checksum of two weights.
std::string model_fingerprint(pipeline::StableDiffusion& sd);

class Checkpoints {
 public:
  // `kept` > 0: older checkpoints beyond that many are removed after each save.
  Checkpoints(std::string dir, std::string fingerprint, int kept, io::Logger log);
  // Writes checkpoint-<step>.safetensors atomically.
  void save(Trainer& tr, const RunState& st, at::Generator& gen) const;
  // Restores the newest checkpoint into the trainer, state and generator; false when there is none.
  bool resume(Trainer& tr, RunState& st, at::Generator& gen) const;

 private:
  void load(const std::string& path, Trainer& tr, RunState& st, at::Generator& gen) const;
  std::string dir_, fingerprint_;
  int kept_;
  io::Logger log_;
};

// train_log.jsonl: the loss, learning rate and gradient norm of every step, rewritten whole.
class TrainLog {
 public:
  // Keeps the lines of an earlier run up to `resumed_step`.
  TrainLog(std::string path, int resumed_step);
  void add(int step, double loss, double lr, double grad_norm);
  void write() const;

 private:
  std::string path_, lines_;
};

}  // namespace bioesp::train
