#include "pipeline/inpaint.h"

#include <algorithm>

#include "core/error.h"
#include "image/filter.h"
#include "image/resize.h"

namespace bioesp::pipeline {

image::Image crop_image(const image::Image& img, const CropBox& b) {
  if (b.x1 < 0 || b.y1 < 0 || b.x2 > static_cast<int>(img.width) || b.y2 > static_cast<int>(img.height) || b.x2 <= b.x1 ||
      b.y2 <= b.y1)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "the crop around the mask does not lie inside a " + std::to_string(img.width) + "×" +
                                          std::to_string(img.height) + " image (give images of the picture's size)");
  image::Image out;
  out.width = b.x2 - b.x1, out.height = b.y2 - b.y1, out.channels = img.channels;
  const size_t row = static_cast<size_t>(out.width) * img.channels;
  out.pixels.resize(row * out.height);
  for (int y = b.y1; y < b.y2; ++y)
    std::copy_n(&img.pixels[(static_cast<size_t>(y) * img.width + b.x1) * img.channels], row,
                &out.pixels[(y - b.y1) * row]);
  return out;
}

namespace {

image::Image sized(const image::Image& img, uint32_t w, uint32_t h) {
  return img.width == w && img.height == h ? img : image::resize(img, w, h);
}

torch::Tensor pixels(const image::Image& img) {
  return torch::from_blob(const_cast<uint8_t*>(img.pixels.data()),
                          {static_cast<int64_t>(img.height), static_cast<int64_t>(img.width), static_cast<int64_t>(img.channels)},
                          torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat32)
      .unsqueeze(0);
}

}  // namespace

CropBox crop_region(const image::Image& mask, int width, int height, int pad) {
  const int w = static_cast<int>(mask.width), h = static_cast<int>(mask.height);
  int left = w, right = -1, top = h, bottom = -1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      if (mask.pixels[static_cast<size_t>(y) * w + x]) left = std::min(left, x), right = std::max(right, x),
                                                        top = std::min(top, y), bottom = std::max(bottom, y);
  if (right < 0) return {0, 0, w, h};
  int x1 = std::max(left - pad, 0), y1 = std::max(top - pad, 0);
  int x2 = std::min(right + 1 + pad, w), y2 = std::min(bottom + 1 + pad, h);
  // Widened to the processing aspect ratio, shifted back inside the image.
  const double ratio = static_cast<double>(width) / height;
  auto widen = [](int& a1, int& a2, double desired, int limit) {
    const int diff = static_cast<int>(desired - (a2 - a1));
    a1 -= diff / 2;
    a2 += diff - diff / 2;
    if (a2 >= limit) a1 -= a2 - limit, a2 = limit;
    if (a1 < 0) a2 -= a1, a1 = 0;
    if (a2 >= limit) a2 = limit;
  };
  if (static_cast<double>(x2 - x1) / (y2 - y1) > ratio) widen(y1, y2, (x2 - x1) / ratio, h);
  else widen(x1, x2, (y2 - y1) * ratio, w);
  return {x1, y1, x2, y2};
}

InpaintImages prepare_inpainting(const image::Image& init, const image::Image& mask, double blur, int pad) {
  if (init.channels != 3) fail(BIOESP_ERR_INVALID_ARGUMENT, "the picture to inpaint must be RGB");
  if (mask.pixels.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "the mask has no pixels");
  if (pad < 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "padding_mask_crop is 0 (off) or a margin in pixels");
  InpaintImages in;
  in.original = init;
  const image::Image gray = image::gaussian_blur(image::to_gray(mask), blur);
  in.overlay = sized(gray, init.width, init.height);
  image::Image picture = init, painted = gray;
  if (pad > 0) {
    // The crop is found on the mask as given and cut from both (diffusers assumes equal sizes).
    if (gray.width != init.width || gray.height != init.height)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "padding_mask_crop needs a mask of the picture's size");
    in.crop = crop_region(gray, static_cast<int>(init.width), static_cast<int>(init.height), pad);
    picture = crop_image(init, *in.crop);
    painted = crop_image(gray, *in.crop);
  }
  picture = sized(picture, init.width, init.height);
  painted = sized(painted, init.width, init.height);
  in.image = pixels(picture) / 255.0 * 2 - 1;
  in.mask = (pixels(painted) / 255.0 >= 0.5).to(torch::kFloat32);
  return in;
}

torch::Tensor InpaintLatents::unet_input(const torch::Tensor& scaled, bool cfg) const {
  auto m = cfg ? torch::cat({mask, mask}) : mask;
  auto z = cfg ? torch::cat({masked_latents, masked_latents}) : masked_latents;
  return torch::cat({scaled, m.to(scaled.dtype()), z.to(scaled.dtype())}, 1);
}

torch::Tensor InpaintLatents::blend(const torch::Tensor& latents, sched::Scheduler& scheduler, size_t i) const {
  const bool last = i + 1 >= scheduler.timesteps().size();
  auto original = last ? image_latents : scheduler.add_noise_at(image_latents, noise, static_cast<int64_t>(i + 1));
  auto m = mask.to(latents.dtype());
  return (1 - m) * original.to(latents.dtype()) + m * latents;
}

torch::Tensor composite(const torch::Tensor& images, const InpaintImages& in) {
  const int64_t W = in.original.width, H = in.original.height;
  auto original = pixels(in.original)[0].permute({1, 2, 0}) / 255.0;  // [H, W, 3]
  auto m = (pixels(in.overlay)[0].permute({1, 2, 0}) / 255.0);        // [H, W, 1]
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); ++i) {
    torch::Tensor made = images[i];
    if (in.crop) {
      // As apply_overlay: the picture as 8-bit, resized into the crop box on a blank canvas.
      const CropBox& b = *in.crop;
      auto u8 = (made * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
      image::Image gen;
      gen.width = static_cast<uint32_t>(made.size(1)), gen.height = static_cast<uint32_t>(made.size(0)), gen.channels = 3;
      gen.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
      gen = sized(gen, b.x2 - b.x1, b.y2 - b.y1);
      auto canvas = torch::zeros({H, W, 3});
      canvas.slice(0, b.y1, b.y2).slice(1, b.x1, b.x2).copy_(pixels(gen)[0].permute({1, 2, 0}) / 255.0);
      made = canvas;
    }
    out.push_back(original * (1 - m) + made * m);
  }
  return torch::stack(out);
}

std::pair<image::Image, image::Image> outpaint(const image::Image& picture, const image::Image* mask, int left, int top,
                                               int right, int bottom) {
  const uint32_t W = picture.width + left + right, H = picture.height + top + bottom, c = picture.channels;
  if (static_cast<uint64_t>(W) * H > image::kMaxPixels) fail(BIOESP_ERR_INVALID_ARGUMENT, "the outpainted canvas is too large");
  image::Image canvas, painted;
  canvas.width = painted.width = W, canvas.height = painted.height = H;
  canvas.channels = c, painted.channels = 1;
  canvas.pixels.resize(static_cast<size_t>(W) * H * c);
  painted.pixels.assign(static_cast<size_t>(W) * H, 255);
  image::Image given;
  if (mask) given = sized(image::to_gray(*mask), picture.width, picture.height);
  for (uint32_t y = 0; y < H; ++y)
    for (uint32_t x = 0; x < W; ++x) {
      const int sx = std::clamp(static_cast<int>(x) - left, 0, static_cast<int>(picture.width) - 1);
      const int sy = std::clamp(static_cast<int>(y) - top, 0, static_cast<int>(picture.height) - 1);
      const size_t from = static_cast<size_t>(sy) * picture.width + sx, to = static_cast<size_t>(y) * W + x;
      std::copy_n(&picture.pixels[from * c], c, &canvas.pixels[to * c]);
      const bool inside = static_cast<int>(x) - left == sx && static_cast<int>(y) - top == sy;
      if (inside) painted.pixels[to] = mask ? given.pixels[from] : 0;
    }
  return {std::move(canvas), std::move(painted)};
}

image::Image to_image(const torch::Tensor& chw) {
  auto u8 = ((chw.to(torch::kFloat32).cpu() + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  image::Image img;
  img.height = static_cast<uint32_t>(u8.size(0)), img.width = static_cast<uint32_t>(u8.size(1)), img.channels = 3;
  img.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return img;
}

}  // namespace bioesp::pipeline
