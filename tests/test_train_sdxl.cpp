// SDXL DreamBooth-LoRA training: three steps against train_dreambooth_lora_sdxl.py's recorded run
// (text embeddings, time ids, losses, gradient norms, final weights), the LoRA saved in diffusers'
// and kohya's SDXL layouts and loaded back, SDXL's crop coordinates, and a whole run with the
// text encoders and class images that resumes bit for bit.
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "config/model_config.h"
#include "core/strings.h"
#include "image/image_io.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "train/dataset.h"
#include "train/run.h"
#include "train/trainer.h"
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

static std::string ref(const char* rel) { return path_join(ref_dir(), rel); }
static std::string tmp(const std::string& name) { return path_join(temp_dir(), name.c_str()); }
static std::string model_dir() { return ref("models/tiny-sdxl"); }

static double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-12); }
static double rel_l2(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

static void test_parity_with_diffusers(void** state) {
  (void)state;
  auto sd = pipeline::StableDiffusion::load(model_dir(), {});
  auto golden = io::read_safetensors(ref("golden/tiny-sdxl/lora_train.safetensors"));
  auto info = json::parse(io::read_text_file(ref("golden/tiny-sdxl/lora_train.json")));
  auto g = [&](const std::string& n) {
    const io::Tensor* t = golden.find("", n);
    if (!t) fail_msg("golden lacks %s", n.c_str());
    return models::to_torch(*t).clone();
  };
  // The text as Batches encodes a frozen caption, and the time ids of the recorded pictures.
  auto text = sd->encode_prompts({info["instance_prompt"].get<std::string>()}, 0);
  const double e_err = rel_l2(text.embeds, g("train.encoder_hidden_states")), p_err = rel_l2(text.pooled, g("train.text_embeds"));
  print_message("prompt embeds rel %.2g, pooled rel %.2g\n", e_err, p_err);
  assert_true(e_err <= 1e-4 && p_err <= 1e-4);
  auto ids = torch::cat({train::training_time_ids(80, 96, 16, 8, 64), train::training_time_ids(128, 64, 0, 32, 64)});
  assert_true(torch::equal(ids, g("train.step0.time_ids")));

  // rank 4, alpha 4, to_k/to_q/to_v/to_out.0 (SDXL has no add_k_proj/add_v_proj), clip 1.0, and
  // the script's weight decay 1e-4 as the default for SDXL.
  train::Setup setup;
  train::Trainer tr(*sd, setup);
  assert_int_equal(tr.optimizer().groups().size(), 1);
  assert_true(tr.optimizer().groups()[0].weight_decay == 1e-4);
  size_t init = 0;
  for (const auto& t : golden.tensors) init += starts_with(t.name, "lora.init.");
  assert_int_equal(tr.parameters().size(), init);
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, p] : tr.parameters()) const_cast<torch::Tensor&>(p).copy_(g("lora.init." + name));
  }
  double worst_loss = 0;
  for (int step = 0; step < 3; ++step) {
    const std::string s = "train.step" + std::to_string(step) + ".";
    train::StepInputs in;
    in.pixel_values = g(s + "pixel_values");
    in.vae_eps = g(s + "vae_eps");
    in.noise = g(s + "noise");
    in.timesteps = g(s + "timesteps");
    in.time_ids = g(s + "time_ids");
    in.encoder_hidden_states = text.embeds;
    in.pooled = text.pooled;
    double loss = tr.backward(in, 1);
    double norm = tr.update(1e-4);
    double want_loss = info["losses"][step], want_norm = info["grad_norms_before_clip"][step];
    print_message("step %d: loss %.7f (diffusers %.7f, rel %.2g), grad norm %.7f (%.7f, rel %.2g)\n", step, loss,
                  want_loss, rel(loss, want_loss), norm, want_norm, rel(norm, want_norm));
    worst_loss = std::max(worst_loss, rel(loss, want_loss));
    assert_true(rel(norm, want_norm) <= 1e-4);
  }
  assert_true(worst_loss <= 1e-4);
  double worst = 0;
  for (const auto& [name, p] : tr.parameters()) worst = std::max(worst, rel_l2(p.detach(), g("lora.final." + name)));
  print_message("final LoRA weights: worst relative L2 error %.2g\n", worst);
  assert_true(worst <= 1e-4);
}

// With the text encoders: one step moves all three LoRAs; diffusers' file has exactly the keys
// and shapes StableDiffusionXLPipeline.save_lora_weights writes, kohya's lora_unet_ (original
// names), lora_te1_ and lora_te2_; both load back with every key placed and change the output.
static void test_saved_layouts(void** state) {
  (void)state;
  auto sd = pipeline::StableDiffusion::load(model_dir(), {});
  train::Setup setup;
  setup.train_text_encoder = true;
  setup.seed = 3;
  std::string diffusers = tmp("xl-lora.safetensors"), kohya = tmp("xl-kohya.safetensors");
  {
    train::Trainer tr(*sd, setup);
    at::Generator gen = at::detail::createCPUGenerator(4);
    train::StepInputs in;
    in.latents = at::randn({2, 4, 8, 8}, gen);
    in.noise = at::randn({2, 4, 8, 8}, gen);
    in.timesteps = torch::tensor({10, 700}, torch::kLong);
    auto ids = [&](text::ClipTokenizer& t) {
      return torch::tensor(t.encode("a photo of sks creature").ids, torch::kLong).unsqueeze(0).repeat({2, 1});
    };
    in.input_ids = ids(sd->tokenizer());
    in.input_ids_2 = ids(sd->tokenizer_2());
    in.time_ids = torch::cat({train::training_time_ids(64, 64, 0, 0, 64), train::training_time_ids(96, 64, 8, 0, 64)});
    tr.backward(in, 1);
    tr.update(1e-2);
    for (const char* component : {"unet.", "text_encoder.", "text_encoder_2."}) {
      double moved = 0;
      for (const auto& [name, p] : tr.parameters())
        if (starts_with(name, component) && ends_with(name, ".lora.up.weight")) moved += p.abs().sum().item<double>();
      print_message("%s LoRA up weights after one step: Σ|w| %.3g\n", component, moved);
      assert_true(moved > 0);
    }
    tr.save_lora(diffusers, {{"format", "pt"}}, false);
    tr.save_lora(kohya, {}, true);
  }
  auto mine = io::read_safetensors(diffusers);
  auto want = io::read_safetensors(ref("golden/tiny-sdxl/lora/pytorch_lora_weights.safetensors"));
  assert_int_equal(mine.tensors.size(), want.tensors.size());
  for (size_t i = 0; i < want.tensors.size(); ++i) {
    assert_string_equal(mine.tensors[i].name.c_str(), want.tensors[i].name.c_str());
    assert_true(mine.tensors[i].shape == want.tensors[i].shape);
  }
  int unet = 0, te1 = 0, te2 = 0, original = 0;
  for (const auto& t : io::read_safetensors(kohya).tensors) {
    unet += starts_with(t.name, "lora_unet_"), te1 += starts_with(t.name, "lora_te1_"), te2 += starts_with(t.name, "lora_te2_");
    original += starts_with(t.name, "lora_unet_input_blocks_") || starts_with(t.name, "lora_unet_middle_block_") ||
                starts_with(t.name, "lora_unet_output_blocks_");
  }
  print_message("kohya: %d UNet (%d by original names), %d te1, %d te2 tensors\n", unet, original, te1, te2);
  assert_true(unet > 0 && original == unet && te1 > 0 && te2 > 0);
  assert_int_equal(unet + te1 + te2, mine.tensors.size() * 3 / 2);  // down, up and alpha per layer
  pipeline::GenerateOptions g;
  g.prompts = {"a photo of sks creature"};
  g.steps = 2;
  g.seed = 1;
  g.width = g.height = 64;
  auto base = sd->generate(g);
  for (const auto& path : {diffusers, kohya}) {
    auto fresh = pipeline::StableDiffusion::load(model_dir(), {});
    fresh->add_lora(path, 1.0, "trained");  // throws on any key that lands nowhere
    const double d = (fresh->generate(g) - base).abs().max().item<double>();
    print_message("%s: max |Δ| of the image %.3g\n", path.c_str(), d);
    assert_true(d > 0);
  }
}

// AdamW's parameter groups with the scripts' decays where the setup leaves them: SDXL's UNet 1e-4
// and text encoders 1e-3 (train_dreambooth_lora_sdxl.py), SD 1.x 1e-2 for all
// (train_dreambooth_lora.py), given ones kept. Zero gradients leave AdamW's update at
// p·(1 − lr·decay): each group shrinks by its own rate and decay.
static void test_weight_decay_groups(void** state) {
  (void)state;
  auto xl = pipeline::StableDiffusion::load(model_dir(), {});
  auto sd1 = pipeline::StableDiffusion::load(ref("models/tiny-sd1"), {});
  train::Setup s;
  s.train_text_encoder = true;
  auto decays = [&](pipeline::StableDiffusion& sd, const train::Setup& setup) {
    train::Trainer tr(sd, setup);
    const auto& g = tr.optimizer().groups();
    assert_int_equal(g.size(), 2);
    size_t unet = 0;
    for (const auto& [name, p] : tr.parameters()) unet += starts_with(name, "unet.");
    assert_int_equal(g[0].size, unet);
    assert_int_equal(g[1].size, tr.parameters().size() - unet);
    return std::make_pair(g[0].weight_decay, g[1].weight_decay);
  };
  assert_true(decays(*xl, s) == std::make_pair(1e-4, 1e-3));
  assert_true(decays(*sd1, s) == std::make_pair(1e-2, 1e-2));
  s.adam.weight_decay = 0.05;
  assert_true(decays(*xl, s) == std::make_pair(0.05, 1e-3));
  assert_true(decays(*sd1, s) == std::make_pair(0.05, 0.05));
  s.text_encoder_weight_decay = 0.2;
  assert_true(decays(*sd1, s) == std::make_pair(0.05, 0.2));

  train::Setup plain;
  plain.train_text_encoder = true;
  train::Trainer tr(*xl, plain);
  std::vector<torch::Tensor> before;
  for (const auto& [name, p] : tr.parameters()) {
    before.push_back(p.detach().clone());
    const_cast<torch::Tensor&>(p).mutable_grad() = torch::zeros_like(p);
  }
  tr.update(0.5, 0.25);
  size_t i = 0, moved = 0;
  for (const auto& [name, p] : tr.parameters()) {
    const bool unet = starts_with(name, "unet.");
    const auto want = before[i++] * (1.0 - (unet ? 0.5 * 1e-4 : 0.25 * 1e-3));
    assert_true(torch::allclose(p.detach(), want, 1e-7, 0));
    moved += !torch::equal(p.detach(), before[i - 1]);
  }
  assert_true(moved > 0);
}

// SDXL conditions on where a crop lies in the picture it shows: a mirrored crop's left edge is
// measured in the mirrored picture (the scripts flip, then crop).
static void test_crop_coordinates(void** state) {
  (void)state;
  train::Example e;
  e.image.width = 96, e.image.height = 64, e.image.channels = 3;
  e.image.pixels.resize(96 * 64 * 3);
  for (size_t i = 0; i < e.image.pixels.size(); ++i) e.image.pixels[i] = static_cast<uint8_t>((i / 3) % 96);
  at::Generator gen = at::detail::createCPUGenerator(0);
  train::Crop c;
  train::pixels(e, 64, false, false, gen, &c);
  assert_int_equal(c.top, 0);
  assert_int_equal(c.left, 16);
  int mirrored = 0;
  for (int i = 0; i < 40; ++i) {
    auto px = train::pixels(e, 64, true, true, gen, &c);
    // Each pixel holds its picture column: a crop of columns x … x + 63 is at left x, mirrored
    // it runs from x + 63 down and lies at left 32 − x of the mirrored picture.
    auto column = [&](int64_t i) { return static_cast<int>(std::lround((px[0][0][i].item<double>() + 1) * 127.5)); };
    const int first = column(0);
    const bool flipped = column(63) < first;
    mirrored += flipped;
    assert_true(c.left >= 0 && c.left <= 32);
    assert_int_equal(first, flipped ? 95 - c.left : c.left);
  }
  assert_true(mirrored > 5 && mirrored < 35);
}

static std::string make_dataset() {
  std::string dir = tmp("xl-data");
  io::make_directories(dir);
  for (int i = 0; i < 3; ++i) {
    image::Image img;
    img.width = 80 + 16 * i, img.height = 64 + 8 * i, img.channels = 3;
    for (uint32_t y = 0; y < img.height; ++y)
      for (uint32_t x = 0; x < img.width; ++x)
        for (int c = 0; c < 3; ++c) img.pixels.push_back(static_cast<uint8_t>((x * (3 + i) + y * (5 + c) + i * 40) % 256));
    image::write_png(dir + "/img" + std::to_string(i) + ".png", img);
  }
  return dir;
}

static torch::Tensor all_weights(const std::string& path) {
  std::vector<torch::Tensor> v;
  for (const auto& t : io::read_safetensors(path).tensors) v.push_back(models::to_torch(t).flatten());
  return torch::cat(v);
}

// Three steps on the tiny SDXL with both text encoders, class images the model draws, random
// crops and flips: cancelled after step 2 and resumed, the LoRA equals a straight run's bit for
// bit; both saved layouts load into the pipeline.
static void test_resume_is_bit_identical(void** state) {
  (void)state;
  const std::string data = make_dataset();
  auto options = [&](const std::string& out) {
    train::RunOptions o;
    o.model = model_dir();
    o.data = data;
    o.prompt = "criatura especulativa colombiana";
    o.class_data = tmp("xl-class");
    o.class_prompt = "un animal";
    o.num_class_images = 2;
    o.validation_steps = 2;
    o.resolution = 64;
    o.steps = 3;
    o.batch = 2;
    o.lr = 1e-3;
    o.random_crop = o.flip = true;
    o.setup.train_text_encoder = true;
    o.setup.seed = 7;
    o.save_kohya = true;
    o.out = out;
    return o;
  };
  std::vector<double> losses;
  auto straight = options(tmp("xl-straight"));
  straight.progress = [&](const train::Progress& p) {
    if (p.stage == "train") losses.push_back(p.loss);
    return true;
  };
  const std::string a = train::run(straight);
  assert_int_equal(losses.size(), 3);
  for (double l : losses) assert_true(std::isfinite(l) && l > 0);

  auto cut = options(tmp("xl-resumed"));
  cut.checkpoint_every = 1;
  cut.progress = [](const train::Progress& p) { return !(p.stage == "train" && p.step == 2); };
  try {
    train::run(cut);
    fail_msg("cancel did not stop training");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_CANCELLED);
  }
  assert_true(io::is_file(cut.out + "/checkpoints/checkpoint-000002.safetensors"));
  cut.progress = nullptr;
  cut.resume = true;
  const std::string b = train::run(cut);
  auto wa = all_weights(a), wb = all_weights(b);
  assert_true(torch::equal(wa, wb));
  assert_true(torch::equal(all_weights(straight.out + "/kohya_lora.safetensors"), all_weights(cut.out + "/kohya_lora.safetensors")));
  const auto meta = io::read_safetensors(b).metadata;
  assert_true(std::find(meta.begin(), meta.end(), std::make_pair(std::string("bioesp.text_encoder"), std::string("1"))) != meta.end());
  for (const auto& path : {b, cut.out + "/kohya_lora.safetensors"}) {
    auto sd = pipeline::StableDiffusion::load(model_dir(), {});
    sd->add_lora(path, 1.0, "trained");
  }
}

static train::RunOptions short_run(const std::string& data, const std::string& out) {
  train::RunOptions o;
  o.model = model_dir();
  o.data = data;
  o.prompt = "criatura especulativa colombiana";
  o.resolution = 64;
  o.steps = 2;
  o.batch = 2;
  o.lr = 1e-3;
  o.setup.seed = 5;
  o.out = out;
  return o;
}

static std::string metadata(const std::string& lora, const std::string& key) {
  for (const auto& [k, v] : io::read_safetensors(lora).metadata)
    if (k == key) return v;
  return "";
}

// A VAE folder with the tiny SDXL's VAE, its config edited by `edit`, its weights by `weights`
// (none: the model's own), in the float16-named file alone as sdxl-vae-fp16-fix ships it.
static std::string vae_folder(const std::string& name, const std::function<void(json&)>& edit,
                              const std::string& weights = "") {
  const std::string dir = tmp(name);
  io::make_directories(dir);
  auto config = json::parse(io::read_text_file(model_dir() + "/vae/config.json"));
  edit(config);
  io::write_text_file(dir + "/config.json", config.dump(2));
  const std::string file = dir + "/diffusion_pytorch_model.fp16.safetensors";
  if (weights.empty()) io::copy_file(model_dir() + "/vae/diffusion_pytorch_model.safetensors", file);
  else io::copy_file(weights, file);
  return dir;
}

// --vae as the script's --pretrained_vae_model_name_or_path: the model's own VAE given apart
// trains the same LoRA bit for bit and is named in the metadata; another scaling factor in its
// config scales the latents (another LoRA); a VAE whose latents do not fit the UNet is refused as
// a mismatch, a missing folder as not found.
static void test_separate_vae(void** state) {
  (void)state;
  const std::string data = make_dataset();
  const std::string own = train::run(short_run(data, tmp("xl-own-vae")));
  assert_string_equal(metadata(own, "bioesp.vae").c_str(), "");

  auto o = short_run(data, tmp("xl-given-vae"));
  o.vae = vae_folder("vae-same", [](json&) {});
  const std::string given = train::run(o);
  assert_true(torch::equal(all_weights(own), all_weights(given)));
  assert_string_equal(metadata(given, "bioesp.vae").c_str(), o.vae.c_str());

  o.out = tmp("xl-scaled-vae");
  o.vae = vae_folder("vae-scaled", [](json& c) { c["scaling_factor"] = 0.2; });
  const double d = (all_weights(own) - all_weights(train::run(o))).abs().max().item<double>();
  print_message("a VAE with scaling factor 0.2 instead of 0.13025: max |Δ| of the LoRA %.3g\n", d);
  assert_true(d > 0);

  // Eight latent channels, weights of their own that fit them: only the UNet refuses them.
  auto cfg_text = [](int channels) {
    auto c = json::parse(io::read_text_file(model_dir() + "/vae/config.json"));
    c["latent_channels"] = channels;
    return c.dump();
  };
  {
    models::AutoencoderKL wide(config::parse_vae(cfg_text(8), "8-channel VAE"));
    std::vector<io::Tensor> tensors;
    for (const auto& p : wide->named_parameters()) tensors.push_back(models::from_torch(p.key(), p.value()));
    io::write_safetensors(tmp("vae8.safetensors"), tensors, {});
  }
  o.vae = vae_folder("vae-8", [](json& c) { c["latent_channels"] = 8; }, tmp("vae8.safetensors"));
  o.out = tmp("xl-wide-vae");
  try {
    train::run(o);
    fail_msg("an 8-channel VAE trained a 4-channel UNet");
  } catch (const Error& e) {
    print_message("refused: %s\n", e.what());
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(std::strstr(e.what(), "latent channels"));
  }
  o.vae = tmp("no-such-vae");
  try {
    train::run(o);
    fail_msg("a missing VAE folder trained");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_NOT_FOUND);
  }
}

// The text encoders' rate as train_dreambooth_lora_sdxl.py's --text_encoder_lr: 5e-6 by default
// for SDXL, 0 the UNet's. After one step the UNet's LoRA is the same either way (the first
// gradients do not depend on the rates), the text encoders' is not.
static void test_text_encoder_rate(void** state) {
  (void)state;
  const std::string data = make_dataset();
  auto run = [&](const char* name, double rate) {
    auto o = short_run(data, tmp(name));
    o.steps = 1;
    o.setup.train_text_encoder = true;
    o.text_encoder_lr = rate;
    std::map<std::string, torch::Tensor> parts;
    for (const auto& t : io::read_safetensors(train::run(o)).tensors) {
      const std::string part = starts_with(t.name, "unet.") ? "unet" : "text";
      auto& p = parts[part];
      auto w = models::to_torch(t).flatten();
      p = p.defined() ? torch::cat({p, w}) : w;
    }
    return parts;
  };
  auto unset = run("xl-te-unset", -1), script = run("xl-te-5e-6", 5e-6), same = run("xl-te-0", 0);
  assert_true(torch::equal(unset["unet"], script["unet"]) && torch::equal(unset["text"], script["text"]));
  assert_true(torch::equal(unset["unet"], same["unet"]));
  assert_false(torch::equal(unset["text"], same["text"]));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_parity_with_diffusers), cmocka_unit_test(test_saved_layouts),
                                     cmocka_unit_test(test_weight_decay_groups), cmocka_unit_test(test_crop_coordinates),
                                     cmocka_unit_test(test_resume_is_bit_identical), cmocka_unit_test(test_separate_vae),
                                     cmocka_unit_test(test_text_encoder_rate)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
