// ControlNets in a generation, as diffusers' StableDiffusionControlNet(Img2Img)Pipeline runs
// them: loaded once, their control images prepared for the output size and the CFG batch, and
// at every step the residuals they add to the UNet (summed over several, MultiControlNetModel).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "image/image_io.h"
#include "io/weights.h"
#include "models/controlnet.h"

namespace bioesp::pipeline {

// A diffusers ControlNetModel folder (config.json and its weights, `variant` preferred), or one
// weights file: diffusers-named or an original ControlNet (io::looks_like_ldm_controlnet), with
// the config inferred from its shapes — and what shapes do not show (attention heads, norm
// groups and epsilon) from `base`, the UNet it is made for, as ControlNetModel.from_unet copies
// them, when given. In `dtype` on `device`.
models::ControlNetModel load_controlnet(const std::string& path, const std::string& variant, torch::Device device,
                                        torch::ScalarType dtype, const io::Logger& log,
                                        const config::UNetConfig* base = nullptr);

// One ControlNet of a generation.
struct Control {
  models::ControlNetModel net{nullptr};
  // RGB (alpha dropped as PIL's convert("RGB") drops it), any size: resized to the output with
  // Lanczos as diffusers' control image processor does, fed in [0, 1].
  image::Image image;
  double scale = 1.0;              // controlnet_conditioning_scale
  double start = 0.0, end = 1.0;   // control_guidance_start / _end: the share of the steps it acts on
};

// The output size diffusers takes from a control image when none is asked: its own, rounded
// down to multiples of 8.
std::pair<int, int> control_size(const Control& c);

// The controls of one generation at the output size, batched.
class ControlStep {
 public:
  // batch: images made (N); cfg: the UNet sees [negative, positive] halves; guess mode: the nets
  // see only the positive half, residuals scaled from 0.1 (shallow) to 1 (deep).
  ControlStep(const std::vector<Control>& controls, bool guess_mode, int width, int height, int64_t batch, bool cfg,
              torch::Device device, torch::ScalarType dtype);
  // The residuals for step `i` of the `steps` the generation runs (counted from its first), for
  // the UNet input `scaled` (scale_model_input of the latents, both CFG halves) at timestep t
  // with `embeds`: each net inside its window (i/steps ≥ start and (i+1)/steps ≤ end), summed.
  // None (an empty extra) when no net acts at this step.
  models::UNetExtra residuals(const torch::Tensor& scaled, const torch::Tensor& t, const torch::Tensor& embeds, int64_t i,
                              int64_t steps) const;

 private:
  const std::vector<Control>& controls_;
  std::vector<torch::Tensor> images_;  // per control [N or 2N, 3, H, W]
  bool guess_, cfg_;
};

}  // namespace bioesp::pipeline
