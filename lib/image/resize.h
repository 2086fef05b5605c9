// Resampling for datasets and for diffusers' image processors: PIL's Image.resize with LANCZOS,
// number for number (its 8-bit fixed-point weights, its rounding between the horizontal and the
// vertical pass), with a support that widens on downscale (antialiasing), over a source box, so
// crops and resizes happen in one pass without stretching.
#pragma once

#include <array>

#include "image/image_io.h"

namespace bioesp::image {

struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // source region in pixels; x1/y1 exclusive
};

// Resamples `box` of `src` to out_w × out_h (same channels).
Image resize(const Image& src, uint32_t out_w, uint32_t out_h, const Box& box);
Image resize(const Image& src, uint32_t out_w, uint32_t out_h);
// Scales so the shorter side is `side` (aspect kept).
Image resize_short_side(const Image& src, uint32_t side);
// The largest centred square.
Box center_square(const Image& src);
// RGB: RGBA composited over `background` (RGB passes through).
Image composite(const Image& img, const std::array<uint8_t, 3>& background);
// Mirrors left-right in place.
void flip_horizontal(Image& img);
// A contact sheet: the images (RGB, or composited over white) in rows of `columns`, each scaled
// to `cell` pixels square (0: the first image's size, others fitted to it), 2-pixel white gaps.
Image grid(const std::vector<Image>& images, uint32_t columns, uint32_t cell);

}  // namespace bioesp::image
