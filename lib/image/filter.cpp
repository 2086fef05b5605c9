#include "image/filter.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "image/resize.h"

namespace bioesp::image {

namespace {

void check(const Image& img, const char* what) {
  if (!img.width || !img.height || img.pixels.size() != static_cast<size_t>(img.width) * img.height * img.channels)
    fail(BIOESP_ERR_INVALID_ARGUMENT, std::string(what) + ": an empty or malformed image");
}

Image blank(uint32_t w, uint32_t h, uint32_t c) {
  Image out;
  out.width = w, out.height = h, out.channels = c;
  out.pixels.assign(static_cast<size_t>(w) * h * c, 0);
  return out;
}

// PIL's _gaussian_blur_radius: the box radius (with a fractional part) whose `passes` box blurs
// have the Gaussian's variance.
float box_radius(float radius, int passes) {
  const float sigma2 = radius * radius / passes;
  const float L = std::sqrt(12.0f * sigma2 + 1.0f);
  const float l = std::floor((L - 1.0f) / 2.0f);
  float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

// PIL's ImagingLineBoxBlur8 over one line of `n` values `stride` apart: a box of 2·radius + 1
// whole pixels plus the fractional weight `fw` at either end, 8-bit fixed point (24 bits).
void box_blur_line(uint8_t* line, size_t n, size_t stride, float radius, std::vector<uint8_t>& in) {
  in.resize(n);
  for (size_t x = 0; x < n; ++x) in[x] = line[x * stride];
  const int r = static_cast<int>(radius), last = static_cast<int>(n) - 1;
  const uint32_t ww = static_cast<uint32_t>((1 << 24) / (radius * 2 + 1));
  const uint32_t fw = ((1 << 24) - (r * 2 + 1) * ww) / 2;
  auto at = [&](int x) { return static_cast<uint32_t>(in[std::clamp(x, 0, last)]); };
  uint32_t acc = at(0) * (r + 1);
  for (int x = 0; x < r; ++x) acc += at(x);
  for (int x = 0; x <= last; ++x) {
    acc += at(x + r) - at(x - r - 1);
    const uint32_t bulk = acc * ww + (at(x - r - 1) + at(x + r + 1)) * fw;
    line[x * stride] = static_cast<uint8_t>((bulk + (1 << 23)) >> 24);
  }
}

}  // namespace

Image to_gray(const Image& img) {
  check(img, "to_gray");
  if (img.channels == 1) return img;
  Image out = blank(img.width, img.height, 1);
  for (size_t i = 0, n = out.pixels.size(); i < n; ++i) {
    const uint8_t* p = &img.pixels[i * img.channels];
    out.pixels[i] = static_cast<uint8_t>((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
  }
  return out;
}

Image gaussian_blur(const Image& img, double radius) {
  check(img, "gaussian_blur");
  if (!(radius >= 0) || radius > 1024) fail(BIOESP_ERR_INVALID_ARGUMENT, "blur radius must be from 0 to 1024");
  if (radius == 0) return img;
  const float box = box_radius(static_cast<float>(radius), 3);
  Image out = img;
  const size_t c = img.channels, w = img.width, h = img.height;
  std::vector<uint8_t> scratch;
  for (size_t ch = 0; ch < c; ++ch) {
    for (int pass = 0; pass < 3; ++pass)
      for (size_t y = 0; y < h; ++y) box_blur_line(&out.pixels[y * w * c + ch], w, c, box, scratch);
    for (int pass = 0; pass < 3; ++pass)
      for (size_t x = 0; x < w; ++x) box_blur_line(&out.pixels[x * c + ch], h, w * c, box, scratch);
  }
  return out;
}

Image canny(const Image& img, const CannyOptions& o) {
  check(img, "canny");
  if (!(o.low >= 0) || !(o.high >= 0) || !std::isfinite(o.low) || !std::isfinite(o.high))
    fail(BIOESP_ERR_INVALID_ARGUMENT, "Canny thresholds must be finite numbers ≥ 0");
  const Image src = o.blur > 0 ? gaussian_blur(img, o.blur) : img;
  const int w = static_cast<int>(src.width), h = static_cast<int>(src.height);
  const int c = std::min<int>(static_cast<int>(src.channels), 3);
  auto px = [&](int y, int x, int ch) {
    return static_cast<int>(src.pixels[(static_cast<size_t>(std::clamp(y, 0, h - 1)) * w + std::clamp(x, 0, w - 1)) *
                                           src.channels + ch]);
  };
  // Per pixel the gradient of the channel with the largest L1 magnitude (the first on ties).
  std::vector<int> dx(static_cast<size_t>(w) * h), dy(dx.size()), mag((w + 2) * static_cast<size_t>(h + 2), 0);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int best = -1;
      for (int ch = 0; ch < c; ++ch) {
        const int gx = px(y - 1, x + 1, ch) + 2 * px(y, x + 1, ch) + px(y + 1, x + 1, ch) - px(y - 1, x - 1, ch) -
                       2 * px(y, x - 1, ch) - px(y + 1, x - 1, ch);
        const int gy = px(y + 1, x - 1, ch) + 2 * px(y + 1, x, ch) + px(y + 1, x + 1, ch) - px(y - 1, x - 1, ch) -
                       2 * px(y - 1, x, ch) - px(y - 1, x + 1, ch);
        const int m = std::abs(gx) + std::abs(gy);
        if (m > best) best = m, dx[y * w + x] = gx, dy[y * w + x] = gy;
      }
      mag[(y + 1) * static_cast<size_t>(w + 2) + x + 1] = best;
    }
  double lo = std::min(o.low, o.high), hi = std::max(o.low, o.high);
  const int low = static_cast<int>(std::floor(lo)), high = static_cast<int>(std::floor(hi));
  // OpenCV's sectors in fixed point: tan(22.5°) and tan(67.5°) = tan(22.5°) + 2.
  constexpr int kShift = 15;
  const int tg22 = static_cast<int>(0.4142135623730950488016887242097 * (1 << kShift) + 0.5);
  const size_t stride = w + 2;
  // 0: below low or suppressed; 1: weak; 2: strong.
  std::vector<uint8_t> state(static_cast<size_t>(w) * h, 0);
  std::vector<int> stack;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t k = (y + 1) * stride + x + 1;
      const int m = mag[k];
      if (m <= low) continue;
      const int gx = dx[y * w + x], gy = dy[y * w + x];
      const int ax = std::abs(gx), ay = std::abs(gy) << kShift, tg22x = ax * tg22;
      bool peak;
      if (ay < tg22x) {
        peak = m > mag[k - 1] && m >= mag[k + 1];
      } else if (ay > tg22x + (ax << (kShift + 1))) {
        peak = m > mag[k - stride] && m >= mag[k + stride];
      } else {
        const int s = (gx ^ gy) < 0 ? -1 : 1;
        peak = m > mag[k - stride - s] && m > mag[k + stride + s];
      }
      if (!peak) continue;
      state[y * w + x] = m > high ? 2 : 1;
      if (m > high) stack.push_back(y * w + x);
    }
  while (!stack.empty()) {
    const int p = stack.back(), y = p / w, x = p % w;
    stack.pop_back();
    for (int yy = std::max(y - 1, 0); yy <= std::min(y + 1, h - 1); ++yy)
      for (int xx = std::max(x - 1, 0); xx <= std::min(x + 1, w - 1); ++xx)
        if (state[yy * w + xx] == 1) state[yy * w + xx] = 2, stack.push_back(yy * w + xx);
  }
  Image out = blank(src.width, src.height, 3);
  for (size_t i = 0; i < state.size(); ++i)
    if (state[i] == 2) std::fill_n(&out.pixels[i * 3], 3, 255);
  return out;
}

Image scribble(const Image& img, int threshold) {
  check(img, "scribble");
  if (threshold < 1 || threshold > 255) fail(BIOESP_ERR_INVALID_ARGUMENT, "the scribble threshold must be from 1 to 255");
  const Image rgb = img.channels == 4 ? composite(img, {255, 255, 255}) : img;
  const size_t n = static_cast<size_t>(rgb.width) * rgb.height, c = rgb.channels;
  auto darkest = [&](size_t i) { return *std::min_element(&rgb.pixels[i * c], &rgb.pixels[i * c] + c); };
  auto brightest = [&](size_t i) { return *std::max_element(&rgb.pixels[i * c], &rgb.pixels[i * c] + c); };
  uint64_t light = 0;
  for (size_t i = 0; i < n; ++i) light += darkest(i) >= threshold;
  const bool light_background = 2 * light >= n;
  Image out = blank(rgb.width, rgb.height, 3);
  for (size_t i = 0; i < n; ++i) {
    const bool line = light_background ? darkest(i) < threshold : brightest(i) > 255 - threshold;
    if (line) std::fill_n(&out.pixels[i * 3], 3, 255);
  }
  return out;
}

}  // namespace bioesp::image
