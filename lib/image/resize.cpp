#include "image/resize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bioesp::image {

namespace {

double lanczos3(double x) {
  x = std::fabs(x);
  if (x < 1e-9) return 1.0;
  if (x >= 3.0) return 0.0;
  const double px = M_PI * x;
  return 3.0 * std::sin(px) * std::sin(px / 3.0) / (px * px);
}

// Per output index: first source index and normalised weights.
struct Taps {
  std::vector<int> first;
  std::vector<std::vector<float>> w;
};

Taps taps(double in0, double in1, uint32_t in_size, uint32_t out_size) {
  const double scale = (in1 - in0) / out_size;
  const double stretch = std::max(scale, 1.0);  // wider support when shrinking
  const double support = 3.0 * stretch;
  Taps t;
  t.first.resize(out_size);
  t.w.resize(out_size);
  for (uint32_t i = 0; i < out_size; ++i) {
    const double center = in0 + (i + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(center - support + 0.5)));
    int hi = std::min(static_cast<int>(in_size), static_cast<int>(std::floor(center + support + 0.5)));
    if (hi <= lo) hi = std::min<int>(lo + 1, in_size), lo = hi - 1;
    double sum = 0;
    std::vector<float>& w = t.w[i];
    for (int j = lo; j < hi; ++j) {
      double v = lanczos3((j - center + 0.5) / stretch);
      w.push_back(static_cast<float>(v));
      sum += v;
    }
    if (sum != 0)
      for (float& v : w) v = static_cast<float>(v / sum);
    t.first[i] = lo;
  }
  return t;
}

}  // namespace

Image resize(const Image& src, uint32_t out_w, uint32_t out_h, const Box& box) {
  if (!src.width || !src.height || !out_w || !out_h) fail(BIOESP_ERR_INVALID_ARGUMENT, "resize: empty image");
  if (box.x0 < 0 || box.y0 < 0 || box.x1 > src.width || box.y1 > src.height || box.x1 <= box.x0 || box.y1 <= box.y0)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "resize: the box lies outside the image");
  const uint32_t c = src.channels;
  const Taps tx = taps(box.x0, box.x1, src.width, out_w), ty = taps(box.y0, box.y1, src.height, out_h);
  // Horizontal pass over the rows the vertical pass needs, in float.
  const int row0 = ty.first.front();
  int row1 = 0;
  for (uint32_t i = 0; i < out_h; ++i) row1 = std::max<int>(row1, ty.first[i] + static_cast<int>(ty.w[i].size()));
  const size_t rows = row1 - row0;
  std::vector<float> mid(rows * out_w * c);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* in = src.pixels.data() + (row0 + r) * src.width * c;
    float* out = mid.data() + r * out_w * c;
    for (uint32_t x = 0; x < out_w; ++x) {
      const auto& w = tx.w[x];
      const uint8_t* p = in + static_cast<size_t>(tx.first[x]) * c;
      for (uint32_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (size_t k = 0; k < w.size(); ++k) acc += w[k] * p[k * c + ch];
        out[x * c + ch] = acc;
      }
    }
  }
  Image dst;
  dst.width = out_w, dst.height = out_h, dst.channels = c;
  dst.pixels.resize(static_cast<size_t>(out_w) * out_h * c);
  for (uint32_t y = 0; y < out_h; ++y) {
    const auto& w = ty.w[y];
    const float* base = mid.data() + static_cast<size_t>(ty.first[y] - row0) * out_w * c;
    uint8_t* out = dst.pixels.data() + static_cast<size_t>(y) * out_w * c;
    for (uint32_t i = 0; i < out_w * c; ++i) {
      float acc = 0;
      for (size_t k = 0; k < w.size(); ++k) acc += w[k] * base[k * out_w * c + i];
      out[i] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
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
