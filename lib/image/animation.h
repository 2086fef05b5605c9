// Animations from frames: GIF (giflib: one palette for the whole sequence, so colours do not
// flicker between frames, looping forever), MP4 (H.264) or WebM (VP9) through FFmpeg's
// libraries, or a folder of PNG frames. Each output is written atomically.
#pragma once

#include <string>
#include <vector>

#include "image/image_io.h"

namespace bioesp::image {

struct AnimationOptions {
  double fps = 8;
  bool loop = true;   // GIF: repeat forever (else play once)
  int quality = 80;   // video: 1 (smallest) … 100 (best)
};

// By the path: *.gif, *.mp4, *.webm, or a folder (created) of frame-0000.png … All frames share
// one size. Formats this build lacks fail with BIOESP_ERR_UNSUPPORTED.
void save_animation(const std::vector<Image>& frames, const std::string& path, const AnimationOptions& options);

// The 256-colour palette (RGB triples) median cut finds for a set of frames, and each frame's
// pixels as palette indices: what the GIF holds.
struct Quantized {
  std::vector<uint8_t> palette;
  std::vector<std::vector<uint8_t>> indices;
};
Quantized quantize(const std::vector<Image>& frames);

}  // namespace bioesp::image
