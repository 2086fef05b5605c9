// How far an opt-in path's image is from the exact one (tests of weight storage, token merging):
// mean absolute difference in 0..255 levels and PSNR in dB, on the settings both measure with.
#pragma once

#include <cmath>

#include "image/image_io.h"
#include "pipeline/pipeline.h"

struct Drift {
  double mae, psnr;
};

inline Drift drift(const bioesp::image::Image& a, const bioesp::image::Image& b) {
  double abs_sum = 0, sq_sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - double(b.pixels[i]);
    abs_sum += std::fabs(d);
    sq_sum += d * d;
  }
  const double n = static_cast<double>(a.pixels.size()), mse = sq_sum / n;
  return {abs_sum / n, mse > 0 ? 10 * std::log10(255.0 * 255.0 / mse) : INFINITY};
}

// The drift measurements' request: the workshop's prompt, a negative one, seed 1234.
inline bioesp::pipeline::GenerateOptions drift_options(int steps, double guidance) {
  bioesp::pipeline::GenerateOptions g;
  g.prompts = {"criatura especulativa colombiana"};
  g.negative_prompt = "blurry, low quality";
  g.steps = steps;
  g.guidance = guidance;
  g.seed = 1234;
  return g;
}
