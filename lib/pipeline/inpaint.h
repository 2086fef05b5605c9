// Inpainting as diffusers' StableDiffusionInpaintPipeline prepares and runs it — for inpainting
// UNets (9 input channels: the latents, the mask and the masked image's latents) and for
// ordinary ones (the original, noised to each step's level, blended in outside the mask) — with
// padding_mask_crop, and the result composited over the original outside the mask.
#pragma once

#include <torch/torch.h>

#include <optional>

#include "image/image_io.h"
#include "sched/scheduler.h"

namespace bioesp::pipeline {

// A region x1 ≤ x < x2, y1 ≤ y < y2.
struct CropBox {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// diffusers' get_crop_region: the bounding box of the mask's nonzero pixels (one channel),
// widened by `pad` on every side and then to the aspect ratio width:height, kept inside the
// mask. An empty mask gives the whole image.
CropBox crop_region(const image::Image& mask, int width, int height, int pad);
// The box's pixels; refuses a box that does not lie inside the image.
image::Image crop_image(const image::Image& img, const CropBox& box);

// An image and its mask at the size the UNet works at.
struct InpaintImages {
  torch::Tensor image;  // [1, 3, H, W] in [-1, 1]
  torch::Tensor mask;   // [1, 1, H, W]: 1 where the image is repainted (binarized at 0.5)
  // What the result is composited with: the original, the mask at its size (blurred, not
  // binarized), and the crop the UNet saw (padding_mask_crop).
  image::Image original, overlay;
  std::optional<CropBox> crop;
};

// `init`: the picture (RGB); `mask`: white repaints, black keeps (any channels, converted as PIL's
// convert("L"); any size, resized to the picture with Lanczos as diffusers' mask processor does),
// first blurred by PIL's GaussianBlur(blur) when blur > 0. pad > 0: the UNet sees only the crop
// around the mask (crop_region, widened by pad), resized to the picture's size.
InpaintImages prepare_inpainting(const image::Image& init, const image::Image& mask, double blur, int pad);

// The latent side of an inpainting generation.
struct InpaintLatents {
  torch::Tensor mask;            // [N, 1, h, w]: the mask at latent size (nearest)
  torch::Tensor masked_latents;  // inpainting UNets: [N, 4, h, w], the masked image's latents × scaling
  torch::Tensor image_latents, noise;  // ordinary UNets: the original's latents and the starting noise

  // An inpainting UNet's input: scale_model_input of the latents (both CFG halves) with the mask
  // and the masked image's latents.
  torch::Tensor unet_input(const torch::Tensor& scaled, bool cfg) const;
  // Ordinary UNets, after step i: outside the mask, the original noised to the next step's level
  // (clean after the last step).
  torch::Tensor blend(const torch::Tensor& latents, sched::Scheduler& scheduler, size_t i) const;
};

// Decoded images [N, H, W, 3] in [0, 1] composited over the original outside the mask (the
// crop resized back into place first), as diffusers' apply_overlay pastes them.
torch::Tensor composite(const torch::Tensor& images, const InpaintImages& in);

// Outpainting's canvas and mask: `picture` at (left, top) on a canvas grown by the four margins,
// the new pixels copied from the nearest edge; the mask white over the new area and wherever
// `mask` (if given; resized to the picture) is white.
std::pair<image::Image, image::Image> outpaint(const image::Image& picture, const image::Image* mask, int left, int top,
                                               int right, int bottom);

// RGB images [3, H, W] in [-1, 1] (as generate takes init images) as 8-bit pixels.
image::Image to_image(const torch::Tensor& chw);

}  // namespace bioesp::pipeline
