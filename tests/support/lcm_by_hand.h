// LCM's sampling loop written out by hand, for the tests that hold the pipeline to it: the prompt
// embedded, w = guidance − 1 as the UNet's guidance embedding (no CFG batch), at every step of
// the `lcm` scheduler the UNet (with what `add` puts into its extra inputs: a ControlNet's
// residuals) and the step with its fresh noise from the seeded CPU generator, then the VAE.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "pipeline/pipeline.h"
#include "sched/scheduler.h"

namespace bioesp::testing {

// What the LCM tests draw: "colibrí", 4 steps of `lcm`, guidance 8 (w = 7), seed 7.
inline pipeline::GenerateOptions lcm_options() {
  pipeline::GenerateOptions g;
  g.prompts = {"colibrí"};
  g.steps = 4;
  g.guidance = 8;
  g.seed = 7;
  g.scheduler = "lcm";
  return g;
}

// add(input, t, embeds, extra) at each step, before the UNet runs.
using AddExtra = std::function<void(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, models::UNetExtra&)>;

inline torch::Tensor lcm_by_hand(pipeline::StableDiffusion& sd, const pipeline::GenerateOptions& g, const AddExtra& add = {}) {
  auto embeds = sd.encode_prompts(g.prompts, 0).embeds;
  models::UNetExtra extra;
  extra.timestep_cond = models::guidance_embedding(torch::full({1}, static_cast<float>(g.guidance - 1)),
                                                   sd.unet()->config().time_cond_proj_dim);
  auto scheduler = sched::make_scheduler(sd.scheduler_config(), "lcm");
  scheduler->set_timesteps(g.steps);
  at::Generator gen = at::detail::createCPUGenerator(g.seed);
  const int64_t side = sd.unet()->config().sample_size;
  auto x = at::randn({1, 4, side, side}, gen, torch::TensorOptions().dtype(torch::kFloat32)) * scheduler->init_noise_sigma();
  for (size_t i = 0; i < scheduler->timesteps().size(); ++i) {
    auto t = torch::tensor(scheduler->timesteps()[i], torch::TensorOptions().dtype(torch::kFloat32));
    auto input = scheduler->scale_model_input(x, static_cast<int64_t>(i));
    if (add) add(input, t, embeds, extra);
    x = scheduler->step(sd.unet()->forward(input, t, embeds, extra), static_cast<int64_t>(i), x, &gen);
  }
  return (sd.vae()->decode(x / sd.vae()->config().scaling_factor) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1});
}

}  // namespace bioesp::testing
