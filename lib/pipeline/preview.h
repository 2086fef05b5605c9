// Live previews without a decoder: latents as colours by a fixed linear map.
#pragma once

#include <torch/torch.h>

namespace bioesp::pipeline {

// SD 1.x latents (the UNet's space, [N, 4, h, w]) as RGB [N, h, w, 3] in [0, 1], one pixel per
// latent: the linear fit of SD 1.x's VAE that ComfyUI's SD15 latent format carries
// (comfy/latent_formats.py, latent_rgb_factors; the method of Keturn's 2022 "decoding latents to
// RGB without upscaling"). Other latent spaces get SD's colours, which only roughly fit them.
torch::Tensor latent_rgb(const torch::Tensor& latents);

}  // namespace bioesp::pipeline
