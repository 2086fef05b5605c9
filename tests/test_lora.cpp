// LoRA files attached as runtime adapters: UNet outputs against diffusers' load_lora_weights for
// the diffusers, kohya and legacy-checkpoint layouts at scales 1.0 and 0.5, a full image, and
// the workshop's LoRA on the full-size SD 1.x UNet. SDXL: the tiny pipeline's UNet (with its added
// conditions), prompt embeddings and image against diffusers for its LoRA in the diffusers, PEFT
// and kohya layouts, and a LoRA of every layer of the full-size SDXL in kohya's names.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "config/model_config.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/single_file.h"
#include "io/weights.h"
#include "lora/adapter.h"
#include "models/clip_text.h"
#include "models/loader.h"
#include "models/unet.h"
#include "pipeline/pipeline.h"
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
static io::WeightSet golden;

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
  golden = io::read_safetensors(path_join(ref_dir(), "golden/tiny-sd1/lora_apply.safetensors"));
  return 0;
}

static torch::Tensor g(const std::string& name) { return models::to_torch(*golden.find("", name)).clone(); }

static void check_unet(const std::string& want, const char* what) {
  torch::NoGradGuard no_grad;
  auto out = sd->unet()->forward(g("sample"), g("timestep"), g("encoder_hidden_states"));
  auto ref = g(want);
  double err = ((out - ref).norm() / ref.norm()).item<double>();
  print_message("%-32s relative L2 error %.2g\n", what, err);
  if (!(err <= 1e-4)) fail_msg("%s: relative L2 error %.3g", what, err);
}

static std::string lora_file(const char* name) { return path_join(ref_dir(), (std::string("golden/tiny-sd1/lora/") + name).c_str()); }

static void test_unet_outputs(void** state) {
  (void)state;
  check_unet("base", "no LoRA");
  struct { const char* file; const char* flavour; } files[] = {
      {"pytorch_lora_weights.safetensors", "diffusers"}, {"kohya_lora.safetensors", "kohya"}, {"legacy_lora.ckpt", "diffusers"}};
  for (const auto& f : files) {
    sd->add_lora(lora_file(f.file), 1.0, "x");
    check_unet(std::string(f.flavour) + ".scale1.0", (std::string(f.file) + " at 1.0").c_str());
    assert_true(sd->set_lora_scale("x", 0.5));
    check_unet(std::string(f.flavour) + ".scale0.5", (std::string(f.file) + " at 0.5").c_str());
    assert_true(sd->remove_lora("x"));
    check_unet("base", "removed: the base model again");
  }
  // two adapters at half scale each equal one at full scale
  sd->add_lora(lora_file("pytorch_lora_weights.safetensors"), 0.5, "a");
  sd->add_lora(lora_file("kohya_lora.safetensors"), 0.5, "b");
  check_unet("diffusers.scale1.0", "two adapters at 0.5");
  sd->remove_lora("a");
  sd->remove_lora("b");
  assert_false(sd->remove_lora("a"));
}

static void test_pipeline_image(void** state) {
  (void)state;
  sd->add_lora(lora_file("legacy_lora.ckpt"), 1.0, "workshop");
  pipeline::GenerateOptions o;
  o.prompts = {"criatura especulativa colombiana"};
  o.negative_prompt = "blurry, low quality";
  o.steps = 10;
  o.guidance = 7.5;
  o.seed = 1234;
  o.scheduler = "ddim";
  auto image = sd->generate(o);
  auto ref = g("pipeline.ddim.steps10.lora1.0");
  double err = ((image - ref).norm() / ref.norm()).item<double>();
  print_message("image with the LoRA: relative L2 error %.2g\n", err);
  assert_true(err <= 1e-3);
  sd->remove_lora("workshop");
}

static void test_refusals(void** state) {
  (void)state;
  // A LoRA for another architecture: the workshop's SD 1.x LoRA on the tiny model.
  try {
    sd->add_lora(path_join(ref_dir(), "workshop/model_lora.ckpt"), 1.0, "w");
    fail_msg("a LoRA for another architecture was attached");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "do not fit the layer"));
  }
  check_unet("base", "nothing attached after a refusal");
  // A file that is not a LoRA at all.
  try {
    sd->add_lora(path_join(ref_dir(), "models/tiny-sd1/vae/diffusion_pytorch_model.safetensors"), 1.0, "v");
    fail_msg("a VAE was attached as a LoRA");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "match no layer"));
  }
}

// A LoRA for `layers` (module → its weight's shape) in one of the three namings, rank 2, alpha 1
// (kohya) or none, with values from `gen`.
enum class Naming { diffusers, peft, kohya };
static io::WeightSet make_lora(const std::vector<std::pair<std::string, std::vector<int64_t>>>& layers, Naming naming,
                               at::Generator& gen) {
  io::WeightSet set;
  const int64_t r = 2;
  for (const auto& [module, w] : layers) {
    std::vector<int64_t> down{r, w[1]}, up{w[0], r};
    if (w.size() == 4) {  // kohya and diffusers: down k×k with the layer's stride and padding, up 1×1
      down.insert(down.end(), {w[2], w[3]});
      up.insert(up.end(), {1, 1});
    }
    std::string stem, d, u;
    switch (naming) {
      case Naming::diffusers: stem = "unet." + module, d = ".lora.down.weight", u = ".lora.up.weight"; break;
      case Naming::peft: stem = "base_model.model." + module, d = ".lora_A.weight", u = ".lora_B.weight"; break;
      case Naming::kohya: stem = lora::kohya_name("unet", module), d = ".lora_down.weight", u = ".lora_up.weight"; break;
    }
    set.tensors.push_back(models::from_torch(stem + d, at::randn(down, gen) * 0.1));
    set.tensors.push_back(models::from_torch(stem + u, at::randn(up, gen) * 0.1));
    if (naming == Naming::kohya) set.tensors.push_back(models::from_torch(stem + ".alpha", torch::tensor(1.0f)));
  }
  set.sort();
  return set;
}

static std::map<std::string, std::vector<std::string>> unet_modules(torch::nn::Module& unet) {
  std::map<std::string, std::vector<std::string>> modules;
  for (const auto& item : unet.named_modules()) modules["unet"].push_back(item.key());
  return modules;
}

// Every Linear and Conv2d of the real SD 1.x UNet (from its manifest): attention, feed-forward,
// proj_in/out, resnet convolutions, shortcuts and time projections, samplers, the time embedding,
// conv_in/out — what LCM-LoRA, TCD-LoRA and Hyper-SD adapt — in each naming, with none left over;
// then stacked with the workshop's DreamBooth LoRA.
static void test_all_layers_lora_on_sd1(void** state) {
  (void)state;
  json manifest = json::parse(io::read_text_file(path_join(ref_dir(), "manifests/sd1.unet.json")));
  std::vector<std::pair<std::string, std::vector<int64_t>>> layers;
  std::set<std::string> kinds;
  for (const auto& [key, v] : manifest.items()) {
    auto shape = v[0].get<std::vector<int64_t>>();
    if (key.size() < 7 || key.compare(key.size() - 7, 7, ".weight") || (shape.size() != 2 && shape.size() != 4)) continue;
    std::string module = key.substr(0, key.size() - 7);
    layers.emplace_back(module, shape);
    kinds.insert(module.substr(module.find_last_of('.') + 1));
  }
  for (const char* k : {"to_q", "to_k", "to_v", "0", "proj", "2", "proj_in", "proj_out", "conv1", "conv2", "conv_shortcut",
                        "time_emb_proj", "conv", "linear_1", "linear_2", "conv_in", "conv_out"})
    if (!kinds.count(k)) fail_msg("the manifest has no %s layer", k);
  json c = json::parse(io::read_text_file(path_join(ref_dir(), "manifests/configs.json")));
  models::UNet2DConditionModel unet(config::parse_unet(c["sd1.unet"].dump(), "sd1.unet"));
  const auto modules = unet_modules(*unet);
  at::Generator gen = at::detail::createCPUGenerator(5);
  auto adapters = [&] {
    size_t n = 0;
    for (const auto& item : unet->named_modules())
      if (auto* l = models::adaptable(item.value())) n += l->adapters.size();
    return n;
  };
  for (Naming naming : {Naming::diffusers, Naming::peft, Naming::kohya}) {
    auto parsed = lora::parse(make_lora(layers, naming, gen), modules);  // no key left unmatched
    assert_int_equal(parsed.size(), 1);
    assert_int_equal(parsed["unet"].size(), layers.size());
    lora::attach(*unet, parsed["unet"], "fast", 1.0, torch::kCPU, torch::kFloat32, "all layers");
    assert_int_equal(adapters(), layers.size());
    if (naming == Naming::kohya) {
      auto* conv = models::adaptable(unet->named_modules()["down_blocks.0.resnets.0.conv1"]);
      assert_true(std::abs(conv->adapters.at(0).factor - 0.5) < 1e-12);  // alpha 1 / rank 2
    }
  }
  print_message("%zu layers adapted in each naming\n", layers.size());
  auto workshop = lora::parse(io::open_weights(path_join(ref_dir(), "workshop/model_lora.ckpt"), {}), modules);
  lora::attach(*unet, workshop["unet"], "workshop", 1.0, torch::kCPU, torch::kFloat32, "workshop");
  assert_int_equal(adapters(), layers.size() + 128);  // both, side by side
  assert_true(lora::detach(*unet, "fast"));
  assert_int_equal(adapters(), 128);
}

// Convolution adapters against a hand-merged weight: W + (alpha / r) · Σ_r up[o, r] · down[r, i, :, :],
// the tiny UNet's whole output with every Linear and Conv2d adapted.
static void test_conv_lora_numerics(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, std::vector<int64_t>>> layers;
  for (const auto& item : sd->unet()->named_modules())
    if (auto* l = models::adaptable(item.value())) layers.emplace_back(item.key(), l->weight_shape().vec());
  at::Generator gen = at::detail::createCPUGenerator(6);
  auto file = make_lora(layers, Naming::kohya, gen);
  auto parsed = lora::parse(file, unet_modules(*sd->unet()));
  // The merged model: a copy of the UNet with every weight merged by hand.
  auto merged = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
  auto params = merged->unet()->named_parameters();
  const double scale = 0.7;
  for (const auto& [module, pair] : parsed["unet"]) {
    auto down = models::to_torch(pair.down), up = models::to_torch(pair.up).flatten(1);  // [out, r]
    auto w = params[module + ".weight"];
    auto delta = w.dim() == 4 ? torch::einsum("or,rikl->oikl", {up, down}) : torch::matmul(up, down);
    w.add_(delta * (scale * pair.alpha / down.size(0)));
  }
  lora::attach(*sd->unet(), parsed["unet"], "convs", scale, torch::kCPU, torch::kFloat32, "all layers");
  auto x = g("sample"), t = g("timestep"), ctx = g("encoder_hidden_states");
  auto adapted = sd->unet()->forward(x, t, ctx), want = merged->unet()->forward(x, t, ctx);
  lora::detach(*sd->unet(), "convs");
  auto base = sd->unet()->forward(x, t, ctx);
  const double err = ((adapted - want).norm() / want.norm()).item<double>();
  const double moved = ((want - base).norm() / base.norm()).item<double>();
  print_message("adapters vs hand-merged weights: relative L2 %.2g (the LoRA moves the output by %.2g)\n", err, moved);
  assert_true(err <= 1e-5);
  assert_true(moved > 1e-2);
}

// A LoRA of SD 1.x's text encoder and a 1×1-convolution-shaped matrix on a Linear (kohya writes
// proj_in so for SD 1.x); a LoRA for SDXL on SD 1.x names the component and layers it lacks.
static void test_lora_shapes_and_refusals(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto* proj = models::adaptable(sd->unet()->named_modules()["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]);
  const auto w = proj->weight_shape().vec();
  io::WeightSet set;
  set.tensors.push_back(models::from_torch("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight",
                                           torch::ones({2, w[1], 1, 1})));
  set.tensors.push_back(models::from_torch("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight",
                                           torch::ones({w[0], 2, 1, 1})));
  auto parsed = lora::parse(set, unet_modules(*sd->unet()));
  lora::attach(*sd->unet(), parsed["unet"], "square", 1.0, torch::kCPU, torch::kFloat32, "1x1");
  assert_int_equal(proj->adapters.at(0).down.dim(), 2);
  lora::detach(*sd->unet(), "square");
  // A 3×3 convolution's LoRA with a 1×1 down matrix does not fit it.
  set.tensors.clear();
  set.tensors.push_back(models::from_torch("unet.conv_in.lora.down.weight", torch::ones({2, 4, 1, 1})));
  set.tensors.push_back(models::from_torch("unet.conv_in.lora.up.weight", torch::ones({32, 2, 1, 1})));
  try {
    lora::attach(*sd->unet(), lora::parse(set, unet_modules(*sd->unet()))["unet"], "bad", 1.0, torch::kCPU,
                 torch::kFloat32, "conv_in");
    fail_msg("a 1x1 LoRA was attached to a 3x3 convolution");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "conv_in: down [2, 4, 1, 1] up [32, 2, 1, 1] do not fit the layer's [32, 4, 3, 3]"));
  }
  try {
    sd->add_lora(path_join(ref_dir(), "golden/tiny-sdxl/lora/pytorch_lora_weights.safetensors"), 1.0, "xl");
    fail_msg("an SDXL LoRA was attached to SD 1.x");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "a LoRA for text_encoder_2"));
    assert_non_null(strstr(e.what(), "transformer_blocks.1"));  // SDXL's second transformer layer
  }
  check_unet("base", "nothing attached after the SDXL refusal");
}

static void test_workshop_lora_on_sd1(void** state) {
  (void)state;
  json c = json::parse(io::read_text_file(path_join(ref_dir(), "manifests/configs.json")));
  models::UNet2DConditionModel unet(config::parse_unet(c["sd1.unet"].dump(), "sd1.unet"));
  std::map<std::string, std::vector<std::string>> modules;
  for (const auto& item : unet->named_modules()) modules["unet"].push_back(item.key());
  auto parsed = lora::parse(io::open_weights(path_join(ref_dir(), "workshop/model_lora.ckpt"), {}), modules);
  assert_int_equal(parsed.size(), 1);
  assert_int_equal(parsed["unet"].size(), 128);
  lora::attach(*unet, parsed["unet"], "workshop", 1.0, torch::kCPU, torch::kFloat32, "workshop");
  size_t attached = 0;
  for (const auto& item : unet->named_modules())
    if (auto* l = dynamic_cast<models::LinearImpl*>(item.value().get())) attached += l->adapters.size();
  assert_int_equal(attached, 128);  // zero unmatched keys
}

using Roots = std::map<std::string, torch::nn::Module*>;

static std::map<std::string, std::vector<std::string>> modules_of(const Roots& roots) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [component, root] : roots)
    for (const auto& item : root->named_modules()) out[component].push_back(item.key());
  return out;
}

static std::string sdxl_path(const char* file) { return path_join(ref_dir(), (std::string("golden/tiny-sdxl/") + file).c_str()); }
static io::WeightSet sdxl_golden(const char* file) { return io::read_safetensors(sdxl_path(file)); }

static torch::Tensor tensor_of(const io::WeightSet& set, const std::string& name) {
  const io::Tensor* t = set.find("", name);
  if (!t) fail_msg("the golden file has no %s", name.c_str());
  return models::to_torch(*t).clone();
}

static void check_close(const torch::Tensor& out, const torch::Tensor& ref, const std::string& what, double tol = 1e-4) {
  double err = ((out - ref).norm() / ref.norm()).item<double>();
  print_message("%-44s relative L2 error %.2g\n", what.c_str(), err);
  if (!(err <= tol)) fail_msg("%s: relative L2 error %.3g", what.c_str(), err);
}

// The UNet call of golden/tiny-sdxl/unet.safetensors, and the pipeline's prompt embeddings of the
// three golden prompts (both penultimate layers, the second encoder's pooled projection), against
// lora_apply.safetensors.
static void check_sdxl(pipeline::StableDiffusion& xl, const std::string& scale, const std::string& what) {
  torch::NoGradGuard no_grad;
  static const io::WeightSet unet_in = sdxl_golden("unet.safetensors"), want = sdxl_golden("lora_apply.safetensors");
  models::UNetExtra extra;
  extra.text_embeds = tensor_of(unet_in, "text_embeds");
  extra.time_ids = tensor_of(unet_in, "time_ids");
  auto out = xl.unet()->forward(tensor_of(unet_in, "sample"), tensor_of(unet_in, "timestep"),
                                tensor_of(unet_in, "encoder_hidden_states"), extra);
  check_close(out, tensor_of(want, scale.empty() ? "base.unet" : "unet.scale" + scale), what + ": UNet");
  if (scale.empty()) return;
  static const json cases = json::parse(io::read_text_file(sdxl_path("tokenizers.json")))["cases"];
  std::vector<std::string> prompts;
  for (const auto& c : cases) prompts.push_back(c["prompt"]);
  auto e = xl.encode_prompts(prompts, 0);
  check_close(e.embeds, tensor_of(want, "prompt_embeds.scale" + scale), what + ": prompt_embeds");
  check_close(e.pooled, tensor_of(want, "pooled_prompt_embeds.scale" + scale), what + ": pooled_prompt_embeds");
}

// The golden diffusers file in another naming, written beside the tests: PEFT's lora_A/lora_B, or
// kohya's (lora_unet_ with the UNet's original names, lora_te1_, lora_te2_, alpha = rank).
static std::string renamed(const io::WeightSet& diffusers, pipeline::StableDiffusion& xl, Naming naming) {
  std::map<std::string, std::string> original;
  for (const auto& [n, o] : io::ldm_unet_names(modules_of(xl.lora_roots())["unet"])) original[n] = o;
  std::vector<io::Tensor> out;
  for (io::Tensor t : diffusers.tensors) {
    std::string key = t.name, component;
    bool down = false;
    for (const char* suffix : {".lora.down.weight", ".lora_linear_layer.down.weight"}) down = down || take_suffix(key, suffix);
    for (const char* suffix : {".lora.up.weight", ".lora_linear_layer.up.weight"}) take_suffix(key, suffix);
    for (const char* c : {"unet", "text_encoder_2", "text_encoder"})
      if (component.empty() && take_prefix(key, std::string(c) + ".")) component = c;
    if (naming == Naming::peft) {
      t.name = component + "." + key + (down ? ".lora_A.weight" : ".lora_B.weight");
    } else {
      std::string stem = lora::kohya_name(component, component == "unet" ? original.at(key) : key);
      if (component == "text_encoder") stem = "lora_te1_" + stem.substr(8);
      t.name = stem + (down ? ".lora_down.weight" : ".lora_up.weight");
      if (down) out.push_back(models::from_torch(stem + ".alpha", torch::tensor(static_cast<float>(t.shape[0]))));
    }
    out.push_back(t);
  }
  const std::string path = path_join(temp_dir(), naming == Naming::peft ? "sdxl_peft.safetensors" : "sdxl_kohya.safetensors");
  io::write_safetensors(path, out, {});
  return path;
}

// diffusers' SDXL LoRA (UNet, text_encoder, text_encoder_2) and the same in PEFT and kohya naming
// on the tiny SDXL pipeline: the UNet and prompt embeddings at 1.0 and 0.5, removal, two at once,
// and the whole image with it.
static void test_sdxl_lora_outputs(void** state) {
  (void)state;
  auto xl = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sdxl"), {});
  check_sdxl(*xl, "", "SDXL, no LoRA");
  const std::string diffusers = sdxl_path("lora/pytorch_lora_weights.safetensors");
  auto parsed = lora::parse(sdxl_golden("lora/pytorch_lora_weights.safetensors"), modules_of(xl->lora_roots()));
  assert_int_equal(parsed.size(), 3);
  assert_int_equal(parsed["unet"].size() + parsed["text_encoder"].size() + parsed["text_encoder_2"].size(), 488 / 2);
  const std::pair<const char*, std::string> files[] = {
      {"diffusers", diffusers},
      {"PEFT", renamed(sdxl_golden("lora/pytorch_lora_weights.safetensors"), *xl, Naming::peft)},
      {"kohya", renamed(sdxl_golden("lora/pytorch_lora_weights.safetensors"), *xl, Naming::kohya)}};
  for (const auto& [flavour, path] : files) {
    xl->add_lora(path, 1.0, "bio");
    check_sdxl(*xl, "1.0", std::string(flavour) + " at 1.0");
    assert_true(xl->set_lora_scale("bio", 0.5));
    check_sdxl(*xl, "0.5", std::string(flavour) + " at 0.5");
    assert_true(xl->remove_lora("bio"));
    check_sdxl(*xl, "", "removed");
  }
  // Several at once: two at half scale equal one at full scale.
  xl->add_lora(files[0].second, 0.5, "a");
  xl->add_lora(files[2].second, 0.5, "b");
  check_sdxl(*xl, "1.0", "diffusers and kohya at 0.5 each");
  xl->remove_lora("a");
  xl->remove_lora("b");
  for (const auto& [component, root] : xl->lora_roots()) assert_false(lora::detach(*root, "a") || lora::detach(*root, "b"));
  // The whole image: StableDiffusionXLPipeline's euler.steps10 with the LoRA at 1.0.
  xl->add_lora(diffusers, 1.0, "bio");
  pipeline::GenerateOptions o;
  o.prompts = {"criatura especulativa colombiana"};
  o.negative_prompt = "blurry, low quality";
  o.steps = 10;
  o.guidance = 5.0;
  o.seed = 1234;
  check_close(xl->generate(o), tensor_of(sdxl_golden("lora_apply.safetensors"), "pipeline.euler.steps10.lora1.0"),
              "SDXL image with the LoRA", 1e-3);
}

// A LoRA of every Linear and Conv2d of the full-size SDXL UNet (in kohya's original names and in
// diffusers' underscored ones) and of both text encoders (lora_te1_, lora_te2_): every key lands.
static void test_full_size_sdxl_lora(void** state) {
  (void)state;
  json c = json::parse(io::read_text_file(path_join(ref_dir(), "manifests/configs.json")));
  models::BuildScope meta(torch::TensorOptions().device(torch::kMeta));  // shapes only, no memory
  json clip_g = c["clip_g"];
  clip_g["architectures"] = {"CLIPTextModelWithProjection"};
  models::UNet2DConditionModel unet(config::parse_unet(c["sdxl.unet"].dump(), "sdxl.unet"));
  models::CLIPTextModel text_encoder(config::parse_clip_text(c["clip_l"].dump(), "clip_l"));
  models::CLIPTextModel text_encoder_2(config::parse_clip_text(clip_g.dump(), "clip_g"));
  const Roots roots = {{"unet", unet.get()}, {"text_encoder", text_encoder.get()}, {"text_encoder_2", text_encoder_2.get()}};
  const auto modules = modules_of(roots);
  std::map<std::string, std::string> original;
  for (const auto& [n, o] : io::ldm_unet_names(modules.at("unet"))) original[n] = o;
  struct { const char* component; const char* manifest; } parts[] = {
      {"unet", "sdxl.unet"}, {"text_encoder", "sdxl.text_encoder"}, {"text_encoder_2", "sdxl.text_encoder_2"}};
  for (bool sgm : {true, false}) {
    io::WeightSet file;
    std::map<std::string, size_t> layers;
    at::Generator gen = at::detail::createCPUGenerator(7);
    for (const auto& p : parts) {
      json manifest = json::parse(io::read_text_file(path_join(ref_dir(), (std::string("manifests/") + p.manifest + ".json").c_str())));
      for (const auto& [key, v] : manifest.items()) {
        auto w = v[0].get<std::vector<int64_t>>();
        std::string module = key;
        if (!take_suffix(module, ".weight") || (w.size() != 2 && w.size() != 4) || module.find("embeddings.") != std::string::npos) continue;
        std::string stem = p.component == std::string("unet") ? lora::kohya_name("unet", sgm ? original.at(module) : module)
                           : p.component == std::string("text_encoder") ? "lora_te1_" + lora::kohya_name("text_encoder", module).substr(8)
                                                                        : lora::kohya_name("text_encoder_2", module);
        std::vector<int64_t> down{2, w[1]}, up{w[0], 2};
        if (w.size() == 4) down.insert(down.end(), {w[2], w[3]}), up.insert(up.end(), {1, 1});
        file.tensors.push_back(models::from_torch(stem + ".lora_down.weight", at::randn(down, gen) * 0.01));
        file.tensors.push_back(models::from_torch(stem + ".lora_up.weight", at::randn(up, gen) * 0.01));
        file.tensors.push_back(models::from_torch(stem + ".alpha", torch::tensor(1.0f)));
        ++layers[p.component];
      }
    }
    file.sort();
    auto parsed = lora::parse(file, modules);  // throws naming any key left unmatched
    for (const auto& p : parts) {
      assert_int_equal(parsed[p.component].size(), layers[p.component]);
      lora::attach(*roots.at(p.component), parsed[p.component], "all", 1.0, torch::kCPU, torch::kFloat32, p.component);
      size_t n = 0;
      for (const auto& item : roots.at(p.component)->named_modules())
        if (auto* l = models::adaptable(item.value())) n += l->adapters.size();
      assert_int_equal(n, layers[p.component]);
    }
    print_message("full-size SDXL, UNet in %s names: %zu + %zu + %zu layers adapted\n", sgm ? "original" : "diffusers",
                  layers["unet"], layers["text_encoder"], layers["text_encoder_2"]);
  }
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unet_outputs), cmocka_unit_test(test_pipeline_image),
      cmocka_unit_test(test_refusals), cmocka_unit_test(test_workshop_lora_on_sd1),
      cmocka_unit_test(test_all_layers_lora_on_sd1), cmocka_unit_test(test_conv_lora_numerics),
      cmocka_unit_test(test_lora_shapes_and_refusals), cmocka_unit_test(test_sdxl_lora_outputs),
      cmocka_unit_test(test_full_size_sdxl_lora)};
  return cmocka_run_group_tests(tests, setup, NULL);
}
