#include "image/matte.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace bioesp::image {

namespace {

enum : uint8_t { kOpaque = 0, kBackdrop = 1, kRim = 2 };

// The per-channel median of the outermost ring of pixels.
std::array<uint8_t, 3> border_colour(const Image& img) {
  const uint32_t w = img.width, h = img.height, c = img.channels;
  std::array<std::vector<uint8_t>, 3> values;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      if (y != 0 && y != h - 1 && x != 0 && x != w - 1) continue;
      for (int k = 0; k < 3; ++k) values[k].push_back(img.pixels[(size_t{y} * w + x) * c + k]);
    }
  std::array<uint8_t, 3> out{};
  for (int k = 0; k < 3; ++k) {
    auto mid = values[k].begin() + static_cast<std::ptrdiff_t>(values[k].size() / 2);
    std::nth_element(values[k].begin(), mid, values[k].end());
    out[k] = *mid;
  }
  return out;
}

// Visits, from `stack`, every 4-neighbour q of a visited pixel p for which enter(p, q) holds and
// that is still opaque, marking it `mark`. The set reached does not depend on the order.
template <class Enter>
void flood(std::vector<size_t>& stack, std::vector<uint8_t>& state, uint32_t w, uint32_t h, uint8_t mark, Enter enter) {
  while (!stack.empty()) {
    const size_t p = stack.back();
    stack.pop_back();
    const size_t x = p % w, y = p / w;
    const size_t around[4] = {x > 0 ? p - 1 : p, x + 1 < w ? p + 1 : p, y > 0 ? p - w : p, y + 1 < h ? p + w : p};
    for (size_t q : around)
      if (q != p && state[q] == kOpaque && enter(p, q)) {
        state[q] = mark;
        stack.push_back(q);
      }
  }
}

// Pixels within `r` (Chebyshev distance) of a marked one: a square dilation, row then column.
std::vector<uint8_t> dilate(const std::vector<uint8_t>& mark, uint32_t w, uint32_t h, int r) {
  auto pass = [r](const std::vector<uint8_t>& in, size_t len, size_t lines, size_t step, size_t stride) {
    std::vector<uint8_t> out(in.size(), 0);
    for (size_t line = 0; line < lines; ++line) {
      const size_t base = line * stride;
      ptrdiff_t last = -(r + 1) - 1;  // the latest marked position seen
      for (size_t i = 0; i < len; ++i)
        if (in[base + i * step]) last = static_cast<ptrdiff_t>(i);
        else if (static_cast<ptrdiff_t>(i) - last <= r) out[base + i * step] = 1;
      last = static_cast<ptrdiff_t>(len) + r + 1;
      for (size_t i = len; i-- > 0;) {
        if (in[base + i * step]) out[base + i * step] = 1, last = static_cast<ptrdiff_t>(i);
        else if (last - static_cast<ptrdiff_t>(i) <= r) out[base + i * step] = 1;
      }
    }
    return out;
  };
  return pass(pass(mark, w, h, 1, w), h, w, w, 1);
}

}  // namespace

Image matte(const Image& img, const MatteOptions& o) {
  if (img.channels != 3 && img.channels != 4) fail(BIOESP_ERR_INVALID_ARGUMENT, "a matte needs an RGB or RGBA image");
  if (img.width == 0 || img.height == 0 || img.pixels.size() != size_t{img.width} * img.height * img.channels)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "a matte needs an image with pixels");
  if (o.tolerance < 0 || o.softness <= 0)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "the matte's tolerance must be ≥ 0 and its softness > 0");
  const uint32_t w = img.width, h = img.height, c = img.channels;
  const size_t n = size_t{w} * h;
  const auto backdrop = border_colour(img);
  std::vector<int> diff(n);
  for (size_t p = 0; p < n; ++p)
    for (int k = 0; k < 3; ++k) diff[p] = std::max(diff[p], std::abs(img.pixels[p * c + k] - backdrop[k]));

  const int solid = o.tolerance + o.softness;
  std::vector<uint8_t> state(n, kOpaque);
  std::vector<size_t> stack;
  // The border ring is backdrop wherever it is not solid creature (a VAE often tints it).
  for (size_t p = 0; p < n; ++p) {
    const size_t x = p % w, y = p / w;
    if ((x == 0 || y == 0 || x == w - 1 || y == h - 1) && diff[p] < solid) {
      state[p] = kBackdrop;
      stack.push_back(p);
    }
  }
  flood(stack, state, w, h, kBackdrop, [&](size_t, size_t q) { return diff[q] <= o.tolerance; });
  std::vector<uint8_t> backdrop_mask(n);
  for (size_t p = 0; p < n; ++p) {
    backdrop_mask[p] = state[p] == kBackdrop;
    if (backdrop_mask[p]) stack.push_back(p);
  }
  const auto near = dilate(backdrop_mask, w, h, o.rim_width > 0 ? o.rim_width : 1 + static_cast<int>(std::min(w, h) / 256));
  // Into the rim, only outwards in difference: a gradient back towards the backdrop's colour
  // (a pale patch inside the creature) is not crossed.
  flood(stack, state, w, h, kRim, [&](size_t p, size_t q) {
    return near[q] && diff[q] > o.tolerance && diff[q] < solid && (state[p] == kBackdrop || diff[q] >= diff[p]);
  });

  Image out;
  out.width = w, out.height = h, out.channels = 4;
  out.text = img.text;
  out.pixels.resize(n * 4);
  for (size_t p = 0; p < n; ++p) {
    uint8_t* px = &out.pixels[p * 4];
    for (int k = 0; k < 3; ++k) px[k] = img.pixels[p * c + k];
    px[3] = state[p] == kBackdrop ? 0 : 255;
    if (state[p] != kRim) continue;
    const int alpha = std::clamp(static_cast<int>(std::lround(255.0 * (diff[p] - o.tolerance) / o.softness)), 1, 254);
    const double a = alpha / 255.0;
    // The observed colour is a·creature + (1 − a)·backdrop: keep the creature's part.
    for (int k = 0; k < 3; ++k)
      px[k] = static_cast<uint8_t>(std::clamp(std::lround((px[k] - (1 - a) * backdrop[k]) / a), 0L, 255L));
    px[3] = static_cast<uint8_t>(alpha);
  }
  return out;
}

}  // namespace bioesp::image
