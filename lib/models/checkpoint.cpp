#include "models/checkpoint.h"

#include <memory>

#include "models/layers.h"

namespace bioesp::models {

namespace {

thread_local bool active = false;

// What the recomputation needs: the body, and the dropout generator with its state at forward time.
struct Saved {
  Body body;
  c10::optional<at::Generator> gen;
  torch::Tensor gen_state;
};

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // The inputs as a TensorList: that is how autograd sees each one as an input.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, int64_t saved,
                                                at::TensorList inputs) {
    ctx->saved_data["saved"] = saved;
    ctx->save_for_backward(inputs.vec());
    torch::NoGradGuard no_grad;
    return {reinterpret_cast<Saved*>(saved)->body(inputs.vec())};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    std::unique_ptr<Saved> s(reinterpret_cast<Saved*>(ctx->saved_data["saved"].toInt()));
    auto inputs = ctx->get_saved_variables();
    std::vector<torch::Tensor> detached;
    for (const auto& x : inputs) detached.push_back(x.detach().requires_grad_(x.requires_grad()));
    torch::Tensor out;
    {
      // The backward pass may run on an autograd worker thread: dropout is set up here again.
      c10::optional<DropoutScope> dropout;
      torch::Tensor now;
      if (s->gen) {
        now = s->gen->get_state();
        s->gen->set_state(s->gen_state);
        dropout.emplace(*s->gen);
      }
      torch::AutoGradMode grad(true);
      out = s->body(detached);
      if (s->gen) s->gen->set_state(now);
    }
    // Blocks with nothing trainable inside (and inputs that need no gradient) pass nothing back.
    if (out.requires_grad()) torch::autograd::backward({out}, {grad_out[0]});
    torch::autograd::variable_list grads{torch::Tensor()};  // for `saved`
    for (const auto& d : detached) grads.push_back(d.requires_grad() ? d.grad() : torch::Tensor());
    return grads;
  }
};

}  // namespace

CheckpointScope::CheckpointScope() : previous_(active) { active = true; }
CheckpointScope::~CheckpointScope() { active = previous_; }

bool checkpointing() { return active && torch::GradMode::is_enabled(); }

torch::Tensor checkpoint(Body body, const std::vector<torch::Tensor>& inputs) {
  auto* s = new Saved{std::move(body), dropout_generator(), {}};
  if (s->gen) s->gen_state = s->gen->get_state();
  // Autograd records the node only when an input requires grad; the trained weights (LoRA) are
  // inside the body, not inputs, so an input that always does stands for them.
  thread_local const torch::Tensor anchor = torch::zeros({}, torch::requires_grad());
  std::vector<torch::Tensor> all = inputs;
  all.push_back(anchor);
  return CheckpointFunction::apply(reinterpret_cast<int64_t>(s), at::TensorList(all))[0];
}

}  // namespace bioesp::models
