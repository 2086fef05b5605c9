#include "pipeline/control.h"

#include "config/infer.h"
#include "core/error.h"
#include "image/resize.h"
#include "io/file.h"
#include "models/layers.h"
#include "models/loader.h"

namespace bioesp::pipeline {

models::ControlNetModel load_controlnet(const std::string& path, const std::string& variant, torch::Device device,
                                        torch::ScalarType dtype, const io::Logger& log, const config::UNetConfig* base) {
  io::WeightSet weights;
  std::string config;
  bool inferred = false;
  if (io::is_directory(path)) {
    if (!io::is_file(path + "/config.json"))
      fail(BIOESP_ERR_NOT_FOUND, path + ": not a ControlNet folder (no config.json)");
    config = io::read_text_file(path + "/config.json");
    io::OpenOptions open;
    open.variant = variant;
    open.log = log;
    io::read_component(path, "controlnet", open, weights);
  } else {
    if (!io::exists(path)) fail(BIOESP_ERR_NOT_FOUND, path + ": no such ControlNet folder or file");
    weights = io::open_weights(path, {});
    if (io::looks_like_ldm_controlnet(weights)) {
      std::vector<std::string> ignored;
      weights = io::ldm_controlnet_to_diffusers(weights, &ignored);
      if (log && !ignored.empty())
        log(BIOESP_LOG_INFO, std::to_string(ignored.size()) + " tensors are not the ControlNet's and were left out (first: " +
                                 ignored.front() + ")");
    } else {
      for (auto& t : weights.tensors) t.component = "controlnet";
    }
    config = config::infer_config(weights, "controlnet");
    inferred = true;
  }
  const std::string what = path + " (controlnet)";
  config::ControlNetConfig c = config::parse_controlnet(config, what);
  if (inferred && base && base->num_attention_heads.size() == c.unet.num_attention_heads.size()) {
    c.unet.num_attention_heads = base->num_attention_heads;
    c.unet.norm_num_groups = base->norm_num_groups;
    c.unet.norm_eps = base->norm_eps;
  }
  models::BuildScope scope(torch::TensorOptions().dtype(dtype).device(device));
  auto net = models::build_checked<models::ControlNetModel>(c, what);
  models::load_state(*net, weights, "controlnet", what);
  net->eval();
  return net;
}

std::pair<int, int> control_size(const Control& c) {
  const int w = static_cast<int>(c.image.width - c.image.width % 8), h = static_cast<int>(c.image.height - c.image.height % 8);
  if (w == 0 || h == 0) fail(BIOESP_ERR_INVALID_ARGUMENT, "a control image smaller than 8×8");
  return {w, h};
}

namespace {

// diffusers' control_image_processor: RGB, resized to the output with Lanczos, in [0, 1].
torch::Tensor control_tensor(const image::Image& img, int width, int height) {
  if (img.pixels.empty()) fail(BIOESP_ERR_INVALID_ARGUMENT, "a ControlNet without a control image");
  if (img.channels != 1 && img.channels != 3 && img.channels != 4)
    fail(BIOESP_ERR_INVALID_ARGUMENT, "a control image must have 1, 3 or 4 channels");
  image::Image rgb = img;
  if (img.channels != 3) {
    rgb.channels = 3;
    rgb.pixels.resize(static_cast<size_t>(img.width) * img.height * 3);
    for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i)
      for (size_t c = 0; c < 3; ++c) rgb.pixels[i * 3 + c] = img.pixels[i * img.channels + (img.channels == 1 ? 0 : c)];
  }
  if (rgb.width != static_cast<uint32_t>(width) || rgb.height != static_cast<uint32_t>(height))
    rgb = image::resize(rgb, width, height);
  auto t = torch::from_blob(rgb.pixels.data(), {height, width, 3}, torch::kUInt8);
  return (t.permute({2, 0, 1}).to(torch::kFloat32) / 255.0).unsqueeze(0);
}

}  // namespace

ControlStep::ControlStep(const std::vector<Control>& controls, bool guess_mode, int width, int height, int64_t batch,
                         bool cfg, torch::Device device, torch::ScalarType dtype)
    : controls_(controls), guess_(guess_mode), cfg_(cfg) {
  for (const auto& c : controls) {
    if (!c.net) fail(BIOESP_ERR_INVALID_ARGUMENT, "a control without a ControlNet");
    if (!std::isfinite(c.scale)) fail(BIOESP_ERR_INVALID_ARGUMENT, "a ControlNet's scale must be finite");
    if (!(c.start >= 0 && c.start < c.end && c.end <= 1))
      fail(BIOESP_ERR_INVALID_ARGUMENT, "a ControlNet's window needs 0 ≤ start < end ≤ 1 (got " + std::to_string(c.start) +
                                            ", " + std::to_string(c.end) + ")");
    auto image = control_tensor(c.image, width, height).repeat_interleave(batch, 0).to(device, dtype);
    images_.push_back(cfg && !guess_mode ? torch::cat({image, image}) : image);
  }
  // The first net's global pooling turns guess mode on, as the pipelines do.
  if (!controls.empty() && controls.front().net->config().global_pool_conditions) guess_ = true;
}

models::UNetExtra ControlStep::residuals(const torch::Tensor& scaled, const torch::Tensor& t, const torch::Tensor& embeds,
                                         int64_t i, int64_t steps) const {
  const bool half = guess_ && cfg_;  // the nets see only the conditional half
  const auto input = half ? scaled.chunk(2)[1] : scaled;
  const auto context = half ? embeds.chunk(2)[1] : embeds;
  models::UNetExtra extra;
  for (size_t k = 0; k < controls_.size(); ++k) {
    const Control& c = controls_[k];
    const double at = static_cast<double>(i) / steps, next = static_cast<double>(i + 1) / steps;
    // Outside its window diffusers runs the net with scale 0; its residuals would add nothing.
    if (at < c.start || next > c.end || c.scale == 0) continue;
    auto r = c.net.ptr()->forward(input, t, context, images_[k], c.scale, guess_);
    if (extra.down_block_additional_residuals.empty()) {
      extra.down_block_additional_residuals = std::move(r.down);
      extra.mid_block_additional_residual = r.mid;
      continue;
    }
    auto& down = extra.down_block_additional_residuals;
    if (down.size() != r.down.size())
      fail(BIOESP_ERR_MISMATCH, "ControlNets with different numbers of residuals cannot be combined");
    for (size_t j = 0; j < down.size(); ++j) down[j] = down[j] + r.down[j];
    extra.mid_block_additional_residual = extra.mid_block_additional_residual + r.mid;
  }
  if (half && !extra.down_block_additional_residuals.empty()) {
    // The unconditional half gets zeros: unchanged.
    for (auto& d : extra.down_block_additional_residuals) d = torch::cat({torch::zeros_like(d), d});
    auto& mid = extra.mid_block_additional_residual;
    mid = torch::cat({torch::zeros_like(mid), mid});
  }
  return extra;
}

}  // namespace bioesp::pipeline
