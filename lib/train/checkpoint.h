// What a run leaves to be resumed: checkpoints (the trained tensors, AdamW's moments, the step,
// where the data orders are, every rank's random generator, the loss scaler) in
// <out>/checkpoints, and train_log.jsonl, one line per step. Every field of a checkpoint is
// checked before any of it is used; a corrupt one is moved aside and the one before it is used.
#pragma once

#include <torch/torch.h>

#include <string>

#include "io/weights.h"
#include "pipeline/pipeline.h"
#include "train/batches.h"
#include "train/trainer.h"

namespace bioesp::train {

// Where a run is: the optimizer steps done and the data orders (of `data_size` instance and
// `prior_size` class images).
struct RunState {
  int step = 0;
  DataOrder data, prior;
  int64_t data_size = 0, prior_size = 0;
};

// Identifies the base model: its UNet's parameter names and shapes and a checksum of two weights.
std::string model_fingerprint(pipeline::StableDiffusion& sd);

// A run's hold on its output folder: one training writes there at a time (a lock the system
// drops when the process dies, however it dies), so the temporaries an interrupted write left
// behind can be removed.
class OutputFolder {
 public:
  OutputFolder(const std::string& out, const io::Logger& log);
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

 private:
  int lock_ = -1;
};

class Checkpoints {
 public:
  // `kept` > 0: older checkpoints beyond that many are removed after each save.
  Checkpoints(std::string dir, std::string fingerprint, int kept, io::Logger log);
  // Writes checkpoint-<step>.safetensors atomically, with every rank's generator state (`rngs`,
  // in rank order).
  void save(Trainer& tr, const RunState& st, const std::vector<torch::Tensor>& rngs) const;

  struct Resumed {
    bool found = false;
    // The generator state of every rank, when the run continues exactly: the same number of
    // processes on the same pictures. Otherwise empty: the data orders start a new epoch and the
    // generators are drawn anew (said in the log).
    std::vector<torch::Tensor> rngs;
  };
  // Restores the newest usable checkpoint into the trainer and state, for a run of `world`
  // processes on `examples` instance and `prior` class images and at most `total` steps. One from
  // another model, mode or LoRA is refused (BIOESP_ERR_MISMATCH); a corrupt one is renamed
  // <name>.corrupt, said in the log, and the one before it tried.
  Resumed resume(Trainer& tr, RunState& st, int world, int64_t examples, int64_t prior, int total) const;

 private:
  struct Snapshot;
  Snapshot read(const std::string& path, int64_t name_step, Trainer& tr, int world, int64_t examples, int64_t prior,
                int total) const;
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
