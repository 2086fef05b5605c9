// ControlNets, masks and outpainting through the C API.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "api/control.h"
#include "api/guard.h"
#include "hub/pull.h"
#include "image/filter.h"

using namespace bioesp;

namespace bioesp::api {

image::Image copy_image(const bioesp_image& img, const char* what) {
  const std::string name = what;
  if (!img.pixels || img.width == 0 || img.height == 0) fail(BIOESP_ERR_INVALID_ARGUMENT, name + " has no pixels");
  if (img.channels != 1 && img.channels != 3 && img.channels != 4)
    fail(BIOESP_ERR_INVALID_ARGUMENT, name + " must have 1, 3 or 4 channels");
  if (static_cast<uint64_t>(img.width) * img.height > image::kMaxPixels)
    fail(BIOESP_ERR_INVALID_ARGUMENT, name + " is larger than " + std::to_string(image::kMaxPixels) + " pixels");
  image::Image out;
  out.width = img.width, out.height = img.height, out.channels = img.channels;
  out.pixels.assign(img.pixels, img.pixels + static_cast<size_t>(img.width) * img.height * img.channels);
  return out;
}

torch::Tensor init_tensor(const image::Image& img) {
  const int64_t w = img.width - img.width % 8, h = img.height - img.height % 8;
  if (w == 0 || h == 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "init image smaller than 8×8");
  auto t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, img.channels}, torch::kUInt8);
  t = img.channels == 1 ? t.expand({img.height, img.width, 3}) : t.slice(2, 0, 3);
  t = t.slice(0, 0, h).slice(1, 0, w);
  return t.permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
}

models::ControlNetModel load_controlnet(pipeline::StableDiffusion& sd, const std::string& path, const io::Logger& log) {
  models::WeightScope storage(sd.weight_storage(), sd.weights_as_file());
  auto net = pipeline::load_controlnet(hub::resolve_model(path, log), "", sd.device(), sd.dtype(), log, &sd.unet()->config());
  models::check_fits(net->config(), sd.unet()->config(), sd.unet()->config().out_channels);
  if (sd.weight_storage() == torch::kInt8) models::quantize_linears(*net);
  return net;
}

namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

image::Image preprocessed(image::Image img, const char* preprocess) {
  const std::string p = preprocess ? preprocess : "none";
  if (p == "none") return img;
  if (p == "canny") return image::canny(img);
  if (p == "scribble") return image::scribble(img);
  fail(BIOESP_ERR_INVALID_ARGUMENT, "preprocess must be none, canny or scribble (got \"" + p + "\")");
}

// A mask of the init image's own size is cut as the init image is (to multiples of 8); others
// are resized by the pipeline.
image::Image cut_like_init(image::Image mask, uint32_t init_w, uint32_t init_h) {
  if (mask.width != init_w || mask.height != init_h) return mask;
  pipeline::CropBox box{0, 0, static_cast<int>(init_w - init_w % 8), static_cast<int>(init_h - init_h % 8)};
  return box.x2 > 0 && box.y2 > 0 ? pipeline::crop_image(mask, box) : mask;
}

}  // namespace

ImageRequest set_images(const bioesp_generate_options& o, pipeline::GenerateOptions& g) {
  ImageRequest r;
  auto& recorded = r.recorded;
  require(o.num_controls <= 16, "at most 16 ControlNets at once");
  std::string listed;
  // The caller's array strides by the struct_size it was compiled with (an older one is shorter).
  const size_t stride = o.num_controls ? o.controls[0].struct_size : 0;
  require(o.num_controls == 0 || stride >= sizeof(size_t), "a control's struct_size is too small (bioesp_control_init sets it)");
  for (size_t i = 0; i < o.num_controls; ++i) {
    bioesp_control c;
    bioesp_control_init(&c);
    const auto* given = reinterpret_cast<const uint8_t*>(o.controls) + i * stride;
    std::memcpy(&c, given, std::min(stride, sizeof c));
    c.struct_size = sizeof c;
    require(c.image != nullptr, "a control without an image");
    require(c.controlnet || (c.path && *c.path), "a control names no ControlNet (controlnet or path)");
    pipeline::Control control;
    if (c.controlnet) control.net = c.controlnet->net;
    r.paths.emplace_back(c.controlnet ? "" : c.path);
    control.image = preprocessed(copy_image(*c.image, "a control image"), c.preprocess);
    control.scale = c.scale;
    control.start = c.start;
    control.end = c.end;
    g.controls.push_back(std::move(control));
    listed += (listed.empty() ? "" : "; ") + std::string(c.controlnet ? c.controlnet->path : c.path) + ":" + number(c.scale);
    if (c.start != 0 || c.end != 1) listed += ":" + number(c.start) + "-" + number(c.end);
    if (c.preprocess && std::strcmp(c.preprocess, "none")) listed += std::string(" (") + c.preprocess + ")";
  }
  g.guess_mode = o.guess_mode != 0;
  if (!listed.empty()) recorded.emplace_back("controlnets", listed);
  if (g.guess_mode) recorded.emplace_back("guess_mode", "1");

  const int grow[] = {o.outpaint_left, o.outpaint_top, o.outpaint_right, o.outpaint_bottom};
  const bool outpaint = grow[0] || grow[1] || grow[2] || grow[3];
  if (!o.mask && !outpaint)
    require(o.mask_blur == 0 && o.padding_mask_crop == 0, "mask_blur and padding_mask_crop need a mask or outpainting");
  if (!o.init_image) {
    require(!o.mask && !outpaint, "a mask and outpainting need an init image: the picture to paint into");
    return r;
  }
  image::Image init = copy_image(*o.init_image, "the init image");
  image::Image mask;
  if (o.mask) mask = cut_like_init(copy_image(*o.mask, "the mask"), init.width, init.height);
  if (outpaint) {
    auto canvas = pipeline::outpaint(init, o.mask ? &mask : nullptr, grow[0], grow[1], grow[2], grow[3]);
    init = std::move(canvas.first);
    mask = cut_like_init(std::move(canvas.second), init.width, init.height);
    recorded.emplace_back("outpaint", std::to_string(grow[0]) + "," + std::to_string(grow[1]) + "," +
                                          std::to_string(grow[2]) + "," + std::to_string(grow[3]));
  }
  g.init_image = init_tensor(init).clone();
  g.mask = std::move(mask);
  g.mask_blur = o.mask_blur;
  g.padding_mask_crop = o.padding_mask_crop;
  if (o.mask_blur != 0) recorded.emplace_back("mask_blur", number(o.mask_blur));
  if (o.padding_mask_crop != 0) recorded.emplace_back("padding_mask_crop", std::to_string(o.padding_mask_crop));
  return r;
}

}  // namespace bioesp::api

extern "C" {

void bioesp_control_init(bioesp_control* c) {
  if (!c) return;
  std::memset(c, 0, sizeof *c);
  c->struct_size = sizeof *c;
  c->scale = 1.0f;
  c->end = 1.0f;
}

void bioesp_controlnet_free(bioesp_controlnet* controlnet) { delete controlnet; }

}  // extern "C"
