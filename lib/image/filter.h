// Pictures made into what ControlNets and masks take, with the numerics of the tools their users
// know: PIL's grayscale conversion and Gaussian blur (diffusers' mask processor), OpenCV's Canny
// (ControlNet's canny annotator), and the scribble models' threshold.
#pragma once

#include "image/image_io.h"

namespace bioesp::image {

// One channel, as PIL's convert("L"): L = (19595·R + 38470·G + 7471·B + 2^15) >> 16; alpha is
// dropped. A one-channel image is returned as it is.
Image to_gray(const Image& img);

// PIL's ImageFilter.GaussianBlur(radius), channel by channel: per axis, three box blurs of the
// extended box radius that matches the Gaussian's variance (Gwosdek et al. 2011), each rounded to
// 8 bits as PIL computes it, edges extended. radius 0 returns the image unchanged.
Image gaussian_blur(const Image& img, double radius);

struct CannyOptions {
  double low = 100, high = 200;  // hysteresis thresholds on |dx| + |dy| (the annotator's defaults)
  double blur = 0;               // > 0: a Gaussian blur of this radius first (the annotator has none)
};
// Edges, white on black (RGB), as cv2.Canny(image, low, high) finds them: a 3×3 Sobel per channel
// with replicated borders, the channel of largest |dx| + |dy|, non-maximum suppression across the
// gradient's direction (one of four sectors), and hysteresis that keeps weak edges (above `low`)
// 8-connected to strong ones (above `high`).
Image canny(const Image& img, const CannyOptions& options = {});

// The lines of a drawing, white on black (RGB), as ControlNet's scribble and lineart models take
// them: on a light background (alpha composited over white) the pixels whose darkest channel is
// below `threshold` (the scribble demo's rule), on a dark one those whose brightest is above
// 255 − threshold.
Image scribble(const Image& img, int threshold = 127);

}  // namespace bioesp::image
