// Gradient checkpointing: while a CheckpointScope is alive on the thread (and gradients are being
// recorded), the UNet's resnet and transformer blocks keep no activations; the backward pass runs
// each block again from its saved inputs. Less memory for one more forward pass, as diffusers'
// enable_gradient_checkpointing. LoRA dropout draws the same masks in the recomputation.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace bioesp::models {

class CheckpointScope {
 public:
  CheckpointScope();
  ~CheckpointScope();
  CheckpointScope(const CheckpointScope&) = delete;
  CheckpointScope& operator=(const CheckpointScope&) = delete;

 private:
  bool previous_;
};

// True inside a CheckpointScope while autograd records.
bool checkpointing();

using Body = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;
// body(inputs), without keeping its intermediate tensors for the backward pass.
torch::Tensor checkpoint(Body body, const std::vector<torch::Tensor>& inputs);

}  // namespace bioesp::models
