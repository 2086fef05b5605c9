// Transparent sprites from pictures drawn on a plain backdrop: an alpha matte grown from the
// image's border colour.
#pragma once

#include <cstdint>

#include "image/image_io.h"

namespace bioesp::image {

struct MatteOptions {
  // A pixel whose channels all lie within `tolerance` of the backdrop colour is backdrop.
  int tolerance = 24;
  // Above the tolerance, alpha rises linearly over this many levels of difference: the soft,
  // anti-aliased rim where the creature meets the backdrop.
  int softness = 48;
  // The rim lies within this many pixels of the backdrop (0: 1 + the shorter side / 256, the
  // width of an anti-aliased outline), so a pale creature fades only along its outline.
  int rim_width = 0;
};

// RGB (or RGBA, whose alpha is replaced) → RGBA. The backdrop colour is the per-channel median
// of the outermost ring of pixels. Backdrop is that ring, except where it is solid creature
// (beyond tolerance + softness), and what a flood fill from it reaches through 4-connected
// pixels within the tolerance: alpha 0. From there the fill goes on into the rim
// (pixels near the backdrop, above the tolerance and below tolerance + softness), only towards
// pixels that differ more from the backdrop, with alpha rising with the difference; rim pixels
// get their colour with the backdrop's share taken out. Everything else
// keeps its colour with alpha 255 — holes inside the creature stay opaque even when they have
// the backdrop's colour, as they are not reached from the border. Deterministic.
// What it cannot do: a creature that touches the border is cut where it has the backdrop's
// colour there (the border is taken as backdrop); a backdrop that is not plain (a gradient
// beyond the tolerance, a texture) stays partly opaque; a creature coloured like its backdrop
// fades where its outline does.
Image matte(const Image& image, const MatteOptions& options = {});

}  // namespace bioesp::image
