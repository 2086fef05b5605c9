#include "image/resize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bioesp::image {

namespace {

// PIL's lanczos_filter: sinc(x)·sinc(x/3) on [-3, 3).
double lanczos3(double x) {
  auto sinc = [](double v) { return v == 0.0 ? 1.0 : std::sin(v * M_PI) / (v * M_PI); };
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

// PIL's resampling weights in 8-bit fixed point (PRECISION_BITS = 22): per output index the
// first source index, the taps, and their weights.
constexpr int kPrecision = 22;

struct Taps {
  std::vector<int> first, count;
  std::vector<std::vector<int32_t>> w;
};

// precompute_coeffs and normalize_coeffs_8bpc of PIL's Resample.c.
Taps taps(double in0, double in1, uint32_t in_size, uint32_t out_size) {
  const double scale = (in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);  // wider support when shrinking
  const double support = 3.0 * filterscale;
  Taps t;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.w.resize(out_size);
  for (uint32_t i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    const int lo = std::max(0, static_cast<int>(center - support + 0.5));
    const int hi = std::min(static_cast<int>(in_size), static_cast<int>(center + support + 0.5));
    const double ss = 1.0 / filterscale;
    std::vector<double> k;
    double sum = 0;
    for (int x = lo; x < hi; ++x) {
      k.push_back(lanczos3((x - center + 0.5) * ss));
      sum += k.back();
    }
    for (double v : k) {
      const double n = sum != 0.0 ? v / sum : v;
      t.w[i].push_back(static_cast<int32_t>(n < 0 ? -0.5 + n * (1 << kPrecision) : 0.5 + n * (1 << kPrecision)));
    }
    t.first[i] = lo;
    t.count[i] = std::max(hi - lo, 0);
  }
  return t;
}

uint8_t clip8(int64_t acc) { return static_cast<uint8_t>(std::clamp<int64_t>(acc >> kPrecision, 0, 255)); }

}  // namespace

Image resize(const Image& src, uint32_t out_w, uint32_t out_h, const Box& box) {
  if (!src.width || !src.height || !out_w || !out_h) fail(BIOESP_ERR_INVALID_ARGUMENT, "resize: empty image");
  if (box.x0 < 0 || box.y0 < 0 || box.x1 > src.width || box.y1 > src.height || box.x1 <= box.x0 || box.y1 <= box.y0)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "resize: the box lies outside the image");
  // PIL's ImagingResampleInner: a horizontal pass (to 8 bits) over the rows the vertical pass
  // needs, then the vertical pass; a pass the size and box do not call for is skipped.
  const uint32_t c = src.channels;
  const Taps tx = taps(box.x0, box.x1, src.width, out_w), ty = taps(box.y0, box.y1, src.height, out_h);
  const bool horizontal = out_w != src.width || box.x0 != 0 || box.x1 != out_w;
  const bool vertical = out_h != src.height || box.y0 != 0 || box.y1 != out_h;
  const int row0 = ty.first.front(), row1 = ty.first.back() + ty.count.back();
  Image mid;
  if (horizontal) {
    mid.width = out_w, mid.height = static_cast<uint32_t>(row1 - row0), mid.channels = c;
    mid.pixels.resize(static_cast<size_t>(mid.width) * mid.height * c);
    for (uint32_t r = 0; r < mid.height; ++r) {
      const uint8_t* in = src.pixels.data() + static_cast<size_t>(row0 + r) * src.width * c;
      uint8_t* out = mid.pixels.data() + static_cast<size_t>(r) * out_w * c;
      for (uint32_t x = 0; x < out_w; ++x)
        for (uint32_t ch = 0; ch < c; ++ch) {
          int64_t acc = int64_t{1} << (kPrecision - 1);
          for (int k = 0; k < tx.count[x]; ++k) acc += in[static_cast<size_t>(tx.first[x] + k) * c + ch] * int64_t{tx.w[x][k]};
          out[x * c + ch] = clip8(acc);
        }
    }
  }
  const Image& from = horizontal ? mid : src;
  const int shift = horizontal ? row0 : 0;
  if (!vertical) return horizontal ? mid : src;
  Image dst;
  dst.width = out_w, dst.height = out_h, dst.channels = c;
  dst.pixels.resize(static_cast<size_t>(out_w) * out_h * c);
  const size_t stride = static_cast<size_t>(from.width) * c;
  for (uint32_t y = 0; y < out_h; ++y) {
    const uint8_t* base = from.pixels.data() + static_cast<size_t>(ty.first[y] - shift) * stride;
    uint8_t* out = dst.pixels.data() + static_cast<size_t>(y) * out_w * c;
    for (size_t i = 0; i < static_cast<size_t>(out_w) * c; ++i) {
      int64_t acc = int64_t{1} << (kPrecision - 1);
      for (int k = 0; k < ty.count[y]; ++k) acc += base[k * stride + i] * int64_t{ty.w[y][k]};
      out[i] = clip8(acc);
    }
  }
  return dst;
}

Image resize(const Image& src, uint32_t out_w, uint32_t out_h) {
  return resize(src, out_w, out_h, Box{0, 0, static_cast<double>(src.width), static_cast<double>(src.height)});
}

Image resize_short_side(const Image& src, uint32_t side) {
  const double s = static_cast<double>(side) / std::min(src.width, src.height);
  uint32_t w = std::max<uint32_t>(side, static_cast<uint32_t>(std::lround(src.width * s)));
  uint32_t h = std::max<uint32_t>(side, static_cast<uint32_t>(std::lround(src.height * s)));
  if (src.width <= src.height) w = side; else h = side;
  return resize(src, w, h);
}

Box center_square(const Image& src) {
  const double side = std::min(src.width, src.height);
  const double x0 = (src.width - side) / 2.0, y0 = (src.height - side) / 2.0;
  return Box{x0, y0, x0 + side, y0 + side};
}

Image composite(const Image& img, const std::array<uint8_t, 3>& bg) {
  if (img.channels == 3) return img;
  Image out;
  out.width = img.width, out.height = img.height, out.channels = 3;
  out.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
  for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i) {
    const uint8_t* p = &img.pixels[i * 4];
    for (int c = 0; c < 3; ++c) out.pixels[i * 3 + c] = static_cast<uint8_t>((p[c] * p[3] + bg[c] * (255 - p[3]) + 127) / 255);
  }
  return out;
}

void flip_horizontal(Image& img) {
  const uint32_t c = img.channels;
  for (uint32_t y = 0; y < img.height; ++y) {
    uint8_t* row = img.pixels.data() + static_cast<size_t>(y) * img.width * c;
    for (uint32_t a = 0, b = img.width - 1; a < b; ++a, --b)
      for (uint32_t ch = 0; ch < c; ++ch) std::swap(row[a * c + ch], row[b * c + ch]);
  }
}

Image grid(const std::vector<Image>& images, uint32_t columns, uint32_t cell) {
  if (images.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "a grid needs at least one image");
  if (columns == 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "a grid needs at least one column");
  const uint32_t w = cell ? cell : images[0].width, h = cell ? cell : images[0].height, gap = 2;
  if (w == 0 || h == 0 || w > 8192 || h > 8192) fail(BIOESP_ERR_INVALID_ARGUMENT, "grid cells must be 1 to 8192 pixels");
  const uint32_t cols = std::min<uint32_t>(columns, static_cast<uint32_t>(images.size()));
  const uint32_t rows = static_cast<uint32_t>((images.size() + cols - 1) / cols);
  Image out;
  out.channels = 3;
  out.width = cols * w + (cols - 1) * gap;
  out.height = rows * h + (rows - 1) * gap;
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
  for (size_t i = 0; i < images.size(); ++i) {
    Image c = composite(images[i], {255, 255, 255});
    if (c.width != w || c.height != h) c = resize(c, w, h);
    const size_t x0 = (i % cols) * (w + gap), y0 = (i / cols) * (h + gap);
    for (uint32_t y = 0; y < h; ++y)
      std::copy_n(&c.pixels[static_cast<size_t>(y) * w * 3], w * 3, &out.pixels[((y0 + y) * out.width + x0) * 3]);
  }
  return out;
}

}  // namespace bioesp::image
