// A whole training step — loss, backward, clipping, AdamW — captured once as a CUDA graph and
// replayed. Eager LibTorch spends most of a GPU training step launching kernels (a 256 px step
// costs nearly what a 512 px one does); a replay launches them all at once. Every number stays on
// the device: the clipping coefficient, the learning rate and fused AdamW's step count, so the
// only synchronisation left is reading the loss. For LoRA training of the UNet in bf16 or float32
// on CUDA with LibTorch 2.x; other setups train eagerly (unsupported() says why).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "train/trainer.h"

namespace bioesp::train {

class CapturedStep {
 public:
  // Empty when `tr` can train captured with `accumulation` micro-batches a step; otherwise why not.
  static std::string unsupported(const Trainer& tr, int accumulation);
  // Warms up on `first` and captures; the warm-up steps are undone (parameters and optimizer
  // state restored), also when capturing fails (which throws).
  CapturedStep(Trainer& tr, const StepInputs& first);
  ~CapturedStep();
  CapturedStep(const CapturedStep&) = delete;
  CapturedStep& operator=(const CapturedStep&) = delete;
  // One optimizer step on `in` (shaped as the first inputs) at learning rate `lr`: the loss and
  // the gradient norm before clipping, as Trainer::backward and update return them.
  std::pair<double, double> run(const StepInputs& in, double lr);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace bioesp::train
