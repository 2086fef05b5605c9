// ControlNets and inpainting against diffusers (golden/control): the ControlNet's residuals at
// scale 1 and 0.5 and in guess mode, the UNet with residuals (and with step caching), whole
// ControlNet pipelines (txt2img, a guidance window, guess mode, MultiControlNet, img2img; an LCM
// UNet against the loop by hand), inpainting with a 9-channel UNet and with latent blending,
// padding_mask_crop; original single-file ControlNets renamed as diffusers renames them; the
// pre-processors (Canny as OpenCV finds edges, PIL's blur, scribbles).
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "config/infer.h"
#include "config/model_config.h"
#include "core/error.h"
#include "image/filter.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/single_file.h"
#include "models/layers.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "support/lcm_by_hand.h"
extern "C" {
#include "support/testutil.h"
}

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp;
using nlohmann::json;

static std::unique_ptr<pipeline::StableDiffusion> sd;
static models::ControlNetModel cn{nullptr}, cn2{nullptr};
static io::WeightSet residuals, cn_golden, inpaint_golden;

static std::string control_dir() { return path_join(ref_dir(), "golden/control"); }
static json read_json(const std::string& path) { return json::parse(config::from_python_json(io::read_text_file(path))); }
static torch::Tensor ref(const io::WeightSet& set, const std::string& key) {
  const io::Tensor* t = set.find("", key);
  if (!t) fail_msg("no %s in the golden file", key.c_str());
  return models::to_torch(*t).clone();
}

static double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

static void check_close(const torch::Tensor& got, const torch::Tensor& want, double tol, const std::string& what) {
  if (got.sizes() != want.sizes()) fail_msg("%s: shape differs", what.c_str());
  const double err = rel_err(got, want);
  print_message("%-40s relative L2 error %.2g\n", what.c_str(), err);
  if (!(err <= tol)) fail_msg("%s: relative L2 error %.3g exceeds %.0e", what.c_str(), err, tol);
}

// An 8-bit golden array (H×W×C or H×W) as an image.
static image::Image u8_image(const torch::Tensor& t) {
  auto c = t.dim() == 2 ? t.unsqueeze(2) : t;
  image::Image img;
  img.height = static_cast<uint32_t>(c.size(0)), img.width = static_cast<uint32_t>(c.size(1));
  img.channels = static_cast<uint32_t>(c.size(2));
  auto u8 = c.contiguous();
  img.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return img;
}

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
  cn = pipeline::load_controlnet(control_dir() + "/controlnet", "", torch::kCPU, torch::kFloat32, {});
  cn2 = pipeline::load_controlnet(control_dir() + "/controlnet_2", "", torch::kCPU, torch::kFloat32, {});
  residuals = io::read_safetensors(control_dir() + "/controlnet_residuals.safetensors");
  cn_golden = io::read_safetensors(control_dir() + "/pipeline_controlnet.safetensors");
  inpaint_golden = io::read_safetensors(control_dir() + "/pipeline_inpaint.safetensors");
  return 0;
}

static void check_residuals(models::ControlNetModel& net, const std::string& tag, double scale, bool guess) {
  torch::NoGradGuard no_grad;
  auto r = net->forward(ref(residuals, "sample"), ref(residuals, "timestep"), ref(residuals, "encoder_hidden_states"),
                        ref(residuals, "controlnet_cond"), scale, guess);
  assert_int_equal(r.down.size(), 9);
  for (size_t i = 0; i < r.down.size(); ++i)
    check_close(r.down[i], ref(residuals, tag + ".down." + std::to_string(i)), 1e-4, tag + ".down." + std::to_string(i));
  check_close(r.mid, ref(residuals, tag + ".mid"), 1e-4, tag + ".mid");
}

static void test_residuals(void** state) {
  (void)state;
  check_residuals(cn, "controlnet.scale1.0", 1.0, false);
  check_residuals(cn, "controlnet.scale0.5", 0.5, false);
  check_residuals(cn, "controlnet.guess_mode.scale1.0", 1.0, true);
  check_residuals(cn2, "controlnet_2.scale1.0", 1.0, false);
}

// diffusers' residuals of the golden ControlNet at scale 1, as the UNet's extra inputs.
static models::UNetExtra golden_extra() {
  models::UNetExtra extra;
  for (int i = 0; i < 9; ++i)
    extra.down_block_additional_residuals.push_back(ref(residuals, "controlnet.scale1.0.down." + std::to_string(i)));
  extra.mid_block_additional_residual = ref(residuals, "controlnet.scale1.0.mid");
  return extra;
}

static void test_unet_with_residuals(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  models::UNetExtra extra = golden_extra();
  auto sample = ref(residuals, "sample"), t = ref(residuals, "timestep"), ehs = ref(residuals, "encoder_hidden_states");
  check_close(sd->unet()->forward(sample, t, ehs, extra), ref(residuals, "unet_with_residuals.scale1.0"), 1e-4, "unet_with_residuals");
  check_close(sd->unet()->forward(sample, t, ehs), ref(residuals, "unet_without_residuals"), 1e-4, "unet_without_residuals");
  extra.down_block_additional_residuals.pop_back();
  try {
    sd->unet()->forward(sample, t, ehs, extra);
    fail_msg("8 residuals were taken by a UNet with 9 skips");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
  }
}

// Step caching with a ControlNet: a full pass fills the cache and gives what no cache gives; a
// pass reusing it recomputes skips 0 … branch and adds their residuals, while the deep residuals
// and the mid one reach it only through the cached features. So a reusing pass on the full
// pass's own inputs gives the full pass's output, whatever the deep residuals are then, and
// another output without its shallow residuals.
static void test_step_cache_residuals(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  models::UNetExtra extra = golden_extra();
  auto sample = ref(residuals, "sample"), t = ref(residuals, "timestep"), ehs = ref(residuals, "encoder_hidden_states");
  auto unet = sd->unet();
  models::StepCache cache;
  cache.branch = 2;
  auto full = unet->forward(sample, t, ehs, extra, &cache);
  assert_true(torch::equal(full, unet->forward(sample, t, ehs, extra)));
  cache.reuse = true;
  models::UNetExtra deep_changed = extra;
  for (size_t i = 3; i < 9; ++i) deep_changed.down_block_additional_residuals[i] = extra.down_block_additional_residuals[i] * 100;
  deep_changed.mid_block_additional_residual = extra.mid_block_additional_residual * 100;
  check_close(unet->forward(sample, t, ehs, deep_changed, &cache), full, 1e-6, "a reusing pass with its shallow residuals");
  models::UNetExtra shallow_zero = extra;
  for (size_t i = 0; i < 3; ++i) shallow_zero.down_block_additional_residuals[i] = torch::zeros_like(extra.down_block_additional_residuals[i]);
  assert_true(rel_err(unet->forward(sample, t, ehs, shallow_zero, &cache), full) > 1e-3);
}

static pipeline::GenerateOptions golden_options(const json& call, uint64_t seed) {
  pipeline::GenerateOptions g;
  g.prompts = {call["prompt"].get<std::string>()};
  g.negative_prompt = call["negative_prompt"].get<std::string>();
  g.steps = call["num_inference_steps"];
  g.guidance = call["guidance_scale"];
  g.seed = seed;
  g.scheduler = "ddim";
  g.width = call["width"];
  g.height = call["height"];
  return g;
}

static torch::Tensor init_tensor(const io::WeightSet& set, const std::string& key) {
  return ref(set, key).permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
}

static void test_controlnet_pipelines(void** state) {
  (void)state;
  json meta = read_json(control_dir() + "/pipeline_controlnet.json");
  int cases = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    const json& call = c["call"];
    auto g = golden_options(call, c["seed"]);
    std::vector<std::string> images = c["control_image"].is_array() ? c["control_image"].get<std::vector<std::string>>()
                                                                    : std::vector<std::string>{c["control_image"]};
    // Unset, the pipeline's default: 1.0, but 0.8 in StableDiffusionControlNetImg2ImgPipeline.
    const double default_scale = c["pipeline"] == "StableDiffusionControlNetImg2ImgPipeline" ? 0.8 : 1.0;
    std::vector<double> scales = call.contains("controlnet_conditioning_scale")
                                     ? call["controlnet_conditioning_scale"].get<std::vector<double>>()
                                     : std::vector<double>(images.size(), default_scale);
    for (size_t k = 0; k < images.size(); ++k) {
      pipeline::Control control;
      control.net = k == 0 ? cn : cn2;
      control.image = u8_image(ref(cn_golden, images[k]));
      control.scale = scales[k];
      control.start = call.value("control_guidance_start", 0.0);
      control.end = call.value("control_guidance_end", 1.0);
      g.controls.push_back(control);
    }
    g.guess_mode = call.value("guess_mode", false);
    if (c.contains("init_image")) {
      g.init_image = init_tensor(cn_golden, c["init_image"]);
      g.strength = call["strength"];
    }
    check_close(sd->generate(g), ref(cn_golden, c["image"]), 1e-3, key);
    ++cases;
  }
  assert_int_equal(cases, 5);
}

// An LCM UNet steered by a ControlNet, as diffusers' StableDiffusionControlNetPipeline runs one:
// no CFG batch for a UNet with time_cond_proj_dim, so the net sees the latents and the prompt
// once (and no guidance embedding). The pipeline's image equals that loop written out by hand.
static void test_lcm_controlnet(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto lcm = pipeline::StableDiffusion::load(tiny_lcm_model(), {});
  auto g = testing::lcm_options();
  pipeline::Control control;
  control.net = cn;
  control.image = u8_image(ref(cn_golden, "control_edges_uint8"));
  control.scale = 0.7;
  g.controls = {control};
  auto image = lcm->generate(g);

  auto hint = (ref(cn_golden, "control_edges_uint8").permute({2, 0, 1}).to(torch::kFloat32) / 255.0).unsqueeze(0);
  auto want = testing::lcm_by_hand(*lcm, g, [&](const torch::Tensor& input, const torch::Tensor& t, const torch::Tensor& embeds,
                                                  models::UNetExtra& extra) {
    auto r = cn->forward(input, t, embeds, hint, control.scale, false);
    extra.down_block_additional_residuals = r.down;
    extra.mid_block_additional_residual = r.mid;
  });
  check_close(image, want, 1e-6, "LCM with a ControlNet vs the loop by hand");
  g.controls.clear();
  assert_true(rel_err(lcm->generate(g), image) > 1e-3);  // it steers
}

// Inpainting keeps the original outside the mask: the golden images (diffusers' decoded output)
// are compared where the mask repaints, the original everywhere else.
static void test_inpainting(void** state) {
  (void)state;
  json meta = read_json(control_dir() + "/pipeline_inpaint.json");
  auto sd9 = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1-inpaint"), {});
  int cases = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    const json& call = c["call"];
    auto g = golden_options(call, c["seed"]);
    g.init_image = init_tensor(inpaint_golden, c["init_image"]);
    g.mask = u8_image(ref(inpaint_golden, c["mask"]));
    g.strength = call["strength"];
    g.padding_mask_crop = call.value("padding_mask_crop", 0);
    auto image = (key.rfind("inpaint9", 0) == 0 ? sd9 : sd)->generate(g)[0];
    auto original = ref(inpaint_golden, c["init_image"]).to(torch::kFloat32) / 255.0;
    auto repaint = (ref(inpaint_golden, c["mask"]) > 127).unsqueeze(2).expand({-1, -1, 3});
    if (g.padding_mask_crop) {
      // The returned 8-bit picture, ±1 for rounding in PIL's resize and paste.
      auto want = ref(inpaint_golden, c["image"])[0].to(torch::kFloat32);
      const double worst = ((image * 255).round() - want).abs().max().item<double>();
      print_message("%-40s largest difference %.0f / 255\n", key.c_str(), worst);
      if (worst > 1) fail_msg("%s: %.0f / 255 from diffusers' picture", key.c_str(), worst);
    } else {
      auto want = ref(inpaint_golden, c["image"])[0];
      check_close(image.masked_select(repaint), want.masked_select(repaint), 1e-3, key + " (inside the mask)");
      assert_true(torch::equal(image.masked_select(~repaint), original.masked_select(~repaint)));
    }
    ++cases;
  }
  assert_int_equal(cases, 5);
}

static void test_crop_region(void** state) {
  (void)state;
  auto mask = u8_image(ref(inpaint_golden, "inpaint.mask_rect_uint8"));
  auto box = pipeline::crop_region(mask, 128, 128, 16);
  assert_int_equal(box.x1, 60), assert_int_equal(box.y1, 24), assert_int_equal(box.x2, 124), assert_int_equal(box.y2, 88);
  // Widened to 2:1 (the rectangle is 32 × 32, padded 48 × 48) and shifted back inside.
  box = pipeline::crop_region(mask, 256, 128, 8);
  assert_int_equal(box.x2 - box.x1, 2 * (box.y2 - box.y1));
  assert_true(box.x2 <= 128 && box.x1 >= 0);
  image::Image empty = mask;
  std::fill(empty.pixels.begin(), empty.pixels.end(), 0);
  box = pipeline::crop_region(empty, 128, 128, 16);
  assert_int_equal(box.x2, 128), assert_int_equal(box.y2, 128);
}

// A mask of another size is resized to the picture with Lanczos and binarized, as diffusers'
// mask processor does: a 64 × 64 right half becomes the 128 × 128 one.
static void test_mask_sizes(void** state) {
  (void)state;
  auto init = u8_image(ref(inpaint_golden, "inpaint.init_uint8"));
  auto full = ref(inpaint_golden, "inpaint.mask_right_half_uint8");
  auto small = u8_image(full.slice(0, 0, 128, 2).slice(1, 0, 128, 2).contiguous());
  assert_int_equal(small.width, 64);
  auto a = pipeline::prepare_inpainting(init, small, 0, 0), b = pipeline::prepare_inpainting(init, u8_image(full), 0, 0);
  assert_true(torch::equal(a.mask, b.mask));
  assert_int_equal(a.overlay.width, 128);
  // RGB masks are converted as PIL's convert("L").
  image::Image rgb = init;
  for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = full.data_ptr<uint8_t>()[i / 3];
  assert_true(torch::equal(pipeline::prepare_inpainting(init, rgb, 0, 0).mask, b.mask));
}

// All white: nothing of the original stays — a plain generation from the noise that follows
// the original's draw; all black: the original comes back.
static void test_white_and_black_masks(void** state) {
  (void)state;
  auto init = ref(inpaint_golden, "inpaint.init_uint8");
  pipeline::GenerateOptions g;
  g.prompts = {"lagarto"};
  g.steps = 3;
  g.scheduler = "ddim";
  g.seed = 9;
  g.init_image = init.permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
  g.strength = 1.0;
  g.mask = u8_image(torch::full({128, 128}, 255, torch::kUInt8));
  auto white = sd->generate(g);
  auto gen = at::detail::createCPUGenerator(9);
  at::randn({1, 4, 16, 16}, gen);  // the original's posterior sample
  pipeline::GenerateOptions plain = g;
  plain.init_image = torch::Tensor();
  plain.mask = {};
  plain.initial_noise = at::randn({1, 4, 16, 16}, gen);
  assert_true(torch::equal(white, sd->generate(plain)));

  g.mask = u8_image(torch::zeros({128, 128}, torch::kUInt8));
  g.mask_blur = 3;
  assert_true(torch::equal((sd->generate(g)[0] * 255).round().to(torch::kUInt8), init));
}

// Original ControlNet files: the golden ControlNet written under lllyasviel's names loads as
// the diffusers folder does.
static std::string ldm_name(const std::string& n) {
  auto sub = [&](const std::string& from, const std::string& to) {
    return n.rfind(from, 0) == 0 ? to + n.substr(from.size()) : std::string();
  };
  std::string r;
  const std::pair<const char*, const char*> direct[] = {
      {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
      {"conv_in.", "input_blocks.0.0."}, {"controlnet_mid_block.", "middle_block_out.0."},
      {"controlnet_cond_embedding.conv_in.", "input_hint_block.0."},
      {"controlnet_cond_embedding.conv_out.", "input_hint_block.14."}};
  for (const auto& [a, b] : direct)
    if (!(r = sub(a, b)).empty()) return r;
  int i, j;
  char rest[256];
  if (sscanf(n.c_str(), "controlnet_down_blocks.%d.%255s", &i, rest) == 2) return "zero_convs." + std::to_string(i) + ".0." + rest;
  if (sscanf(n.c_str(), "controlnet_cond_embedding.blocks.%d.%255s", &i, rest) == 2)
    return "input_hint_block." + std::to_string(2 * i + 2) + "." + rest;
  auto resnet = [](std::string s) {
    const std::pair<const char*, const char*> ren[] = {{"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."},
                                                       {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."},
                                                       {"time_emb_proj.", "emb_layers.1."}, {"conv_shortcut.", "skip_connection."}};
    for (const auto& [a, b] : ren)
      if (s.rfind(a, 0) == 0) return b + s.substr(strlen(a));
    return s;
  };
  if (sscanf(n.c_str(), "down_blocks.%d.resnets.%d.%255s", &i, &j, rest) == 3)
    return "input_blocks." + std::to_string(3 * i + j + 1) + ".0." + resnet(rest);
  if (sscanf(n.c_str(), "down_blocks.%d.attentions.%d.%255s", &i, &j, rest) == 3)
    return "input_blocks." + std::to_string(3 * i + j + 1) + ".1." + rest;
  if (sscanf(n.c_str(), "down_blocks.%d.downsamplers.0.conv.%255s", &i, rest) == 2)
    return "input_blocks." + std::to_string(3 * i + 3) + ".0.op." + rest;
  if (sscanf(n.c_str(), "mid_block.resnets.%d.%255s", &i, rest) == 2) return "middle_block." + std::to_string(2 * i) + "." + resnet(rest);
  if (sscanf(n.c_str(), "mid_block.attentions.0.%255s", rest) == 1) return std::string("middle_block.1.") + rest;
  fail_msg("no original name for %s", n.c_str());
  return "";
}

static void test_single_file_controlnet(void** state) {
  (void)state;
  std::vector<io::Tensor> tensors;
  for (const auto& p : cn->named_parameters()) tensors.push_back(models::from_torch("control_model." + ldm_name(p.key()), p.value()));
  // An original file also carries the base model's weights, which are not the ControlNet's.
  tensors.push_back(models::from_torch("model.diffusion_model.out.2.bias", torch::zeros({4})));
  const std::string file = std::string(temp_dir()) + "/control_sd15_tiny.safetensors";
  io::write_safetensors(file, tensors, {});
  // Its heads (4 per block) and norm groups (8), not in the shapes, come from the base model.
  auto single = pipeline::load_controlnet(file, "", torch::kCPU, torch::kFloat32, {}, &sd->unet()->config());
  const auto loaded = single->named_parameters();
  for (const auto& p : cn->named_parameters())
    if (!torch::equal(loaded[p.key()], p.value())) fail_msg("%s differs from the folder's", p.key().c_str());
  check_residuals(single, "controlnet.scale1.0", 1.0, false);
}

// The names of a real SD 1.5 ControlNet (control_v11p_sd15_*.pth: control_model.* with the
// UNet's input and middle blocks as the single-file manifest lists them, 12 zero convs,
// middle_block_out, input_hint_block 0–14) map one-to-one onto diffusers' ControlNetModel built
// for the config its shapes give — the config of lllyasviel/sd-controlnet-*.
static void test_sd15_controlnet_names(void** state) {
  (void)state;
  json single = read_json(std::string(path_join(ref_dir(), "manifests")) + "/sd1.single_file_ldm.json");
  io::WeightSet ldm;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    io::Tensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.nbytes = static_cast<size_t>(io::checked_numel(t.shape, name)) * 4;
    ldm.tensors.push_back(t);
  };
  for (const auto& [k, v] : single.items()) {
    std::string rest = k;
    if (rest.rfind("model.diffusion_model.", 0) != 0) continue;
    rest = rest.substr(strlen("model.diffusion_model."));
    if (rest.rfind("time_embed.", 0) && rest.rfind("input_blocks.", 0) && rest.rfind("middle_block.", 0)) continue;
    add("control_model." + rest, (v.is_array() && !v.empty() && v[0].is_array() ? v[0] : v).get<std::vector<int64_t>>());
    add("model.diffusion_model." + rest, {1});  // the base model beside it
  }
  const int64_t zero[] = {320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 1280};
  for (int i = 0; i < 12; ++i) {
    add("control_model.zero_convs." + std::to_string(i) + ".0.weight", {zero[i], zero[i], 1, 1});
    add("control_model.zero_convs." + std::to_string(i) + ".0.bias", {zero[i]});
  }
  add("control_model.middle_block_out.0.weight", {1280, 1280, 1, 1});
  add("control_model.middle_block_out.0.bias", {1280});
  const int64_t hint[][2] = {{3, 16}, {16, 16}, {16, 32}, {32, 32}, {32, 96}, {96, 96}, {96, 256}, {256, 320}};
  for (int i = 0; i < 8; ++i) {
    add("control_model.input_hint_block." + std::to_string(2 * i) + ".weight", {hint[i][1], hint[i][0], 3, 3});
    add("control_model.input_hint_block." + std::to_string(2 * i) + ".bias", {hint[i][1]});
  }
  ldm.sort();
  std::vector<std::string> ignored;
  auto set = io::ldm_controlnet_to_diffusers(ldm, &ignored);
  for (const auto& k : ignored)
    if (k.rfind("model.diffusion_model.", 0) != 0) fail_msg("%s maps nowhere", k.c_str());
  auto config = config::parse_controlnet(config::infer_config(set, "controlnet"), "inferred");
  assert_true(config.unet.block_out_channels == std::vector<int>({320, 640, 1280, 1280}));
  assert_true(config.unet.cross_attention_dim == std::vector<int>(4, 768));
  assert_true(config.unet.num_attention_heads == std::vector<int>(4, 8));
  assert_true(config.conditioning_embedding_out_channels == std::vector<int>({16, 32, 96, 256}));
  models::BuildScope meta(torch::TensorOptions().device(torch::kMeta));
  models::ControlNetModel net(config);
  size_t params = 0;
  for (const auto& p : net->named_parameters()) {
    const io::Tensor* t = set.find("controlnet", p.key());
    if (!t) fail_msg("diffusers' %s has no original source", p.key().c_str());
    if (p.value().sizes() != at::IntArrayRef(t->shape)) fail_msg("%s: shape differs", p.key().c_str());
    ++params;
  }
  assert_int_equal(params, set.tensors.size());
  // diffusers' convert_controlnet_checkpoint names, spelled out.
  assert_string_equal(io::map_controlnet_key("input_hint_block.14.weight", 2, 14).c_str(), "controlnet_cond_embedding.conv_out.weight");
  assert_string_equal(io::map_controlnet_key("input_hint_block.2.bias", 2, 14).c_str(), "controlnet_cond_embedding.blocks.0.bias");
  assert_string_equal(io::map_controlnet_key("input_hint_block.12.weight", 2, 14).c_str(), "controlnet_cond_embedding.blocks.5.weight");
  assert_string_equal(io::map_controlnet_key("zero_convs.11.0.weight", 2, 14).c_str(), "controlnet_down_blocks.11.weight");
  assert_string_equal(io::map_controlnet_key("middle_block_out.0.bias", 2, 14).c_str(), "controlnet_mid_block.bias");
  assert_string_equal(io::map_controlnet_key("input_blocks.3.0.op.weight", 2, 14).c_str(), "down_blocks.0.downsamplers.0.conv.weight");
  assert_string_equal(io::map_controlnet_key("middle_block.2.in_layers.2.weight", 2, 14).c_str(), "mid_block.resnets.1.conv1.weight");
  assert_true(io::map_controlnet_key("input_hint_block.1.weight", 2, 14).empty());  // a SiLU has none
}

// A ControlNet for another base is refused naming what differs; the tiny one fits tiny-sd1.
static void test_other_base_refused(void** state) {
  (void)state;
  models::check_fits(cn->config(), sd->unet()->config(), 4);
  auto sd2 = cn->config();
  sd2.unet.cross_attention_dim.assign(sd2.unet.cross_attention_dim.size(), 1024);
  auto unet = sd->unet()->config();
  unet.cross_attention_dim.assign(unet.cross_attention_dim.size(), 768);
  try {
    models::check_fits(sd2, unet, 4);
    fail_msg("an SD 2.x ControlNet fitted an SD 1.x UNet");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "cross_attention_dim"));
    assert_non_null(strstr(e.what(), "SD 2.x"));
    assert_non_null(strstr(e.what(), "SD 1.x"));
  }
  pipeline::GenerateOptions g;
  g.prompts = {"x"};
  g.steps = 1;
  pipeline::Control c;
  c.net = cn;
  c.image = u8_image(ref(cn_golden, "control_edges_uint8"));
  c.start = 0.5, c.end = 0.5;
  g.controls = {c};
  try {
    sd->generate(g);
    fail_msg("an empty guidance window was taken");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "window"));
  }
}

static image::Image gray_image(uint32_t w, uint32_t h, uint8_t v) {
  image::Image img;
  img.width = w, img.height = h, img.channels = 1;
  img.pixels.assign(static_cast<size_t>(w) * h, v);
  return img;
}

static bool white(const image::Image& e, int x, int y) { return e.pixels[(static_cast<size_t>(y) * e.width + x) * 3] == 255; }

// cv2.Canny's edges for a square: OpenCV keeps the left and top edges on the dark side and the
// right and bottom ones on the bright side (non-maximum suppression takes the first of equal
// neighbours); steps of |dx|+|dy| at most `low` vanish; weak edges stay only when 8-connected to
// strong ones.
static void test_canny(void** state) {
  (void)state;
  auto square = [](uint8_t left, uint8_t right) {
    image::Image img = gray_image(32, 32, 0);
    for (int y = 10; y < 20; ++y)
      for (int x = 10; x < 20; ++x) img.pixels[y * 32 + x] = x < 15 ? left : right;
    return img;
  };
  auto e = image::canny(square(200, 200));
  assert_int_equal(e.channels, 3);
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 32; ++x) {
      const bool want = (y >= 11 && y <= 18 && (x == 9 || x == 19)) || (x >= 11 && x <= 18 && (y == 9 || y == 19));
      if (want && !white(e, x, y)) fail_msg("no edge at (%d, %d)", x, y);
      const bool far = x < 8 || x > 20 || y < 8 || y > 20 || (x > 10 && x < 18 && y > 10 && y < 18);
      if (far && white(e, x, y)) fail_msg("an edge at (%d, %d)", x, y);
    }
  // A step of 20 gives |dx| = 80 ≤ 100: nothing. 30 (120, weak) alone: nothing; beside 60 (240,
  // strong) it is kept.
  auto none = image::canny(square(20, 20)), weak = image::canny(square(30, 30)), both = image::canny(square(60, 30));
  for (int i = 0; i < 32 * 32; ++i) assert_true(none.pixels[i * 3] == 0 && weak.pixels[i * 3] == 0);
  assert_true(white(both, 9, 15) && white(both, 19, 15));
  // Colour: the channel with the largest gradient counts.
  image::Image rgb;
  rgb.width = rgb.height = 32, rgb.channels = 3;
  rgb.pixels.assign(32 * 32 * 3, 0);
  for (int y = 10; y < 20; ++y)
    for (int x = 10; x < 20; ++x) rgb.pixels[(y * 32 + x) * 3 + 2] = 200;
  assert_true(image::canny(rgb).pixels == e.pixels);
  // The step of 200 has |dx| = 800: kept above a high threshold of 799, gone at a low one of 800.
  image::CannyOptions t;
  t.low = 700, t.high = 799;
  assert_true(white(image::canny(square(200, 200), t), 9, 15));
  t.low = 800, t.high = 900;
  assert_false(white(image::canny(square(200, 200), t), 9, 15));
}

static void test_blur_and_scribble(void** state) {
  (void)state;
  // PIL's box-blur approximation keeps a flat image flat and spreads a point symmetrically.
  auto flat = gray_image(20, 10, 77);
  assert_true(image::gaussian_blur(flat, 4).pixels == flat.pixels);
  auto dot = gray_image(21, 21, 0);
  dot.pixels[10 * 21 + 10] = 255;
  assert_true(image::gaussian_blur(dot, 0).pixels == dot.pixels);
  auto b = image::gaussian_blur(dot, 2);
  // Mirrored exactly; transposed within 1 (PIL rounds to 8 bits after the horizontal passes).
  for (int y = 0; y < 21; ++y)
    for (int x = 0; x < 21; ++x) {
      assert_true(std::abs(b.pixels[y * 21 + x] - b.pixels[x * 21 + y]) <= 1);
      assert_int_equal(b.pixels[y * 21 + x], b.pixels[y * 21 + 20 - x]);
      assert_int_equal(b.pixels[y * 21 + x], b.pixels[(20 - y) * 21 + x]);
    }
  assert_true(b.pixels[10 * 21 + 10] > b.pixels[10 * 21 + 12] && b.pixels[10 * 21 + 12] > b.pixels[10 * 21 + 16]);
  // Black lines on white and white lines on black give the same scribble.
  auto drawing = gray_image(16, 16, 255), negative = gray_image(16, 16, 0);
  for (int x = 0; x < 16; ++x) drawing.pixels[5 * 16 + x] = 20, negative.pixels[5 * 16 + x] = 235;
  image::Image rgb;
  rgb.width = rgb.height = 16, rgb.channels = 3;
  for (uint8_t v : drawing.pixels) rgb.pixels.insert(rgb.pixels.end(), 3, v);
  image::Image rgb_negative = rgb;
  for (auto& v : rgb_negative.pixels) v = 255 - v;
  auto s = image::scribble(rgb), t = image::scribble(rgb_negative);
  assert_true(s.pixels == t.pixels);
  assert_true(white(s, 3, 5) && !white(s, 3, 6));
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_residuals),
      cmocka_unit_test(test_unet_with_residuals),
      cmocka_unit_test(test_step_cache_residuals),
      cmocka_unit_test(test_controlnet_pipelines),
      cmocka_unit_test(test_lcm_controlnet),
      cmocka_unit_test(test_inpainting),
      cmocka_unit_test(test_crop_region),
      cmocka_unit_test(test_mask_sizes),
      cmocka_unit_test(test_white_and_black_masks),
      cmocka_unit_test(test_single_file_controlnet),
      cmocka_unit_test(test_sd15_controlnet_names),
      cmocka_unit_test(test_other_base_refused),
      cmocka_unit_test(test_canny),
      cmocka_unit_test(test_blur_and_scribble),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
