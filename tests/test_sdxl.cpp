// StableDiffusionXLPipeline and StableDiffusionXLImg2ImgPipeline against diffusers on the tiny
// SDXL model: both tokenizers, encode_prompt (clip skip, negative and empty prompts), weighted
// prompts, the time ids, and whole txt2img / img2img runs (relative L2 ≤ 1e-3); every scheduler
// through SDXL's added conditions; what an SDXL folder without its second encoder gets; a
// refiner folder (the second encoder alone); a pipeline made from the configs.
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/layers.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "sched/names.h"
#include "sched/scheduler.h"
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

static std::unique_ptr<pipeline::StableDiffusion> sd;

static std::string model_dir() { return path_join(ref_dir(), "models/tiny-sdxl"); }
static std::string golden_dir() { return path_join(ref_dir(), "golden/tiny-sdxl"); }

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(model_dir(), {});
  return 0;
}

static torch::Tensor g(const io::WeightSet& set, const std::string& name) {
  const io::Tensor* t = set.find("", name);
  if (!t) fail_msg("golden tensor %s missing", name.c_str());
  return models::to_torch(*t).clone();
}

static double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

static void assert_close(const torch::Tensor& out, const torch::Tensor& ref, double tol, const std::string& what) {
  if (out.sizes() != ref.sizes()) fail_msg("%s: shape differs", what.c_str());
  const double err = rel_err(out, ref);
  print_message("%-44s relative L2 error %.2g\n", what.c_str(), err);
  if (!(err <= tol)) fail_msg("%s: relative L2 error %.3g exceeds %.1g", what.c_str(), err, tol);
}

static json tokenizer_cases() { return json::parse(io::read_text_file(golden_dir() + "/tokenizers.json"))["cases"]; }

static std::vector<std::string> golden_prompts() {
  std::vector<std::string> prompts;
  for (const auto& c : tokenizer_cases()) prompts.push_back(c["prompt"]);
  return prompts;
}

// tokenizer_2 pads with "!" (id 0); the first tokenizer with <|endoftext|>.
static void test_tokenizers(void** state) {
  (void)state;
  int cases = 0;
  for (const auto& c : tokenizer_cases()) {
    assert_true(sd->tokenizer().encode(c["prompt"]).ids == c["tokenizer.input_ids"].get<std::vector<int64_t>>());
    assert_true(sd->tokenizer_2().encode(c["prompt"]).ids == c["tokenizer_2.input_ids"].get<std::vector<int64_t>>());
    ++cases;
  }
  assert_int_equal(cases, 3);
  assert_int_equal(sd->tokenizer_2().pad(), 0);
}

// encode_prompt: both penultimate layers concatenated, TE2's projected pooled output; clip_skip 1
// one layer further up (pooled unchanged); the empty string encoded like any prompt.
static void test_encode_prompt(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto ref = io::read_safetensors(golden_dir() + "/text_encoders.safetensors");
  const auto prompts = golden_prompts();
  auto e = sd->encode_prompts(prompts, 0);
  assert_close(e.embeds, g(ref, "pipeline.prompt_embeds"), 1e-4, "prompt_embeds");
  assert_close(e.pooled, g(ref, "pipeline.pooled_prompt_embeds"), 1e-4, "pooled_prompt_embeds");
  auto skip = sd->encode_prompts(prompts, 1);
  assert_close(skip.embeds, g(ref, "pipeline.prompt_embeds.clip_skip1"), 1e-4, "prompt_embeds clip_skip 1");
  assert_close(skip.pooled, g(ref, "pipeline.pooled_prompt_embeds.clip_skip1"), 1e-4, "pooled_prompt_embeds clip_skip 1");
  auto negative = sd->encode_prompts(std::vector<std::string>(3, "blurry, low quality"), 0);
  assert_close(negative.embeds, g(ref, "pipeline.negative_prompt_embeds"), 1e-4, "negative_prompt_embeds");
  assert_close(negative.pooled, g(ref, "pipeline.negative_pooled_prompt_embeds"), 1e-4, "negative_pooled_prompt_embeds");
  auto empty = sd->encode_prompts(std::vector<std::string>(3, ""), 0);
  assert_close(empty.embeds, g(ref, "pipeline.negative_prompt_embeds.empty_string"), 1e-4, "negative_prompt_embeds \"\"");
  assert_close(empty.pooled, g(ref, "pipeline.negative_pooled_prompt_embeds.empty_string"), 1e-4,
               "negative_pooled_prompt_embeds \"\"");
}

// A1111's syntax with SDXL: without emphasis a one-window prompt reads as the plain one; weights
// change only the hidden states; BREAK adds a window and the pooled output is the first window's.
static void test_weighted_prompts(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  const auto W = pipeline::PromptSyntax::Weighted;
  auto plain = sd->encode_prompts({"colibrí de selva"}, 0);
  auto same = sd->encode_prompts({"colibrí de selva"}, 0, W);
  assert_close(same.embeds, plain.embeds, 1e-6, "weighted without emphasis = plain");
  assert_close(same.pooled, plain.pooled, 1e-6, "its pooled output");
  auto strong = sd->encode_prompts({"(colibrí:1.5) de selva"}, 0, W);
  assert_true(rel_err(strong.embeds, plain.embeds) > 1e-3);
  auto two = sd->encode_prompts({"colibrí de selva BREAK rana"}, 0, W);
  assert_int_equal(two.embeds.size(1), 154);
  assert_close(two.embeds.slice(1, 0, 77), plain.embeds, 1e-6, "the first window");
  assert_close(two.pooled, plain.pooled, 1e-6, "pooled from the first window");
}

// _get_add_time_ids: sizes default to the image's, crops to 0; the negative half takes the
// positive ids unless negative values are given.
static void test_time_ids(void** state) {
  (void)state;
  auto ref = io::read_safetensors(golden_dir() + "/text_encoders.safetensors");
  pipeline::GenerateOptions o;
  assert_true(torch::equal(sd->time_ids(o, 128, 128, false), g(ref, "add_time_ids.default_128")));
  assert_true(torch::equal(sd->time_ids(o, 1024, 1024, false), g(ref, "add_time_ids.sdxl_1024")));
  o.micro = {192, 96, 8, 4, 128, 64};
  auto ids = sd->time_ids(o, 128, 64, true);
  assert_true(torch::equal(ids, g(ref, "add_time_ids.nonsquare_64x128").repeat({2, 1})));
  o.negative_micro.original_width = 512;
  ids = sd->time_ids(o, 128, 64, true);
  assert_true(torch::equal(ids[0], torch::tensor({96.0f, 512.0f, 0.0f, 0.0f, 64.0f, 128.0f})));
  assert_true(torch::equal(ids[1], g(ref, "add_time_ids.nonsquare_64x128")[0]));
}

static pipeline::GenerateOptions golden_options(const json& c, const io::WeightSet& golden) {
  const json& call = c["call"];
  pipeline::GenerateOptions o;
  o.prompts = {call["prompt"].get<std::string>()};
  if (!call["negative_prompt"].is_null()) o.negative_prompt = call["negative_prompt"].get<std::string>();
  o.steps = call["num_inference_steps"];
  o.guidance = call["guidance_scale"];
  o.seed = c["seed"];
  if (call.contains("width")) {
    o.width = call["width"];
    o.height = call["height"];
  }
  if (call.contains("original_size")) {
    o.micro.original_height = call["original_size"][0];
    o.micro.original_width = call["original_size"][1];
    o.micro.crop_top = call["crops_coords_top_left"][0];
    o.micro.crop_left = call["crops_coords_top_left"][1];
    o.micro.target_height = call["target_size"][0];
    o.micro.target_width = call["target_size"][1];
  }
  if (c.contains("init_image")) {
    o.init_image = g(golden, "img2img.init_uint8").permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
    o.strength = call["strength"];
  }
  return o;
}

static void test_golden_cases(void** state) {
  (void)state;
  json meta = json::parse(io::read_text_file(golden_dir() + "/pipeline.json"));
  auto golden = io::read_safetensors(golden_dir() + "/pipeline.safetensors");
  int cases = 0;
  for (const auto& c : meta["cases"]) {
    const std::string key = c["key"];
    auto o = golden_options(c, golden);
    auto s = sched::make_scheduler(sd->scheduler_config(), "");
    s->set_timesteps(o.steps);
    const int64_t begin = o.init_image.defined() ? s->start_at_strength(o.strength) : 0;
    const std::vector<double> used(s->timesteps().begin() + begin, s->timesteps().end());
    if (used != c["timesteps_used"].get<std::vector<double>>()) fail_msg("%s: timesteps differ", key.c_str());
    assert_close(sd->generate(o), g(golden, key), 1e-3, key);
    ++cases;
  }
  assert_int_equal(cases, 5);
}

// The default size is the UNet's sample_size × the VAE's factor (128 here, 1024 for SDXL base);
// every scheduler runs through SDXL's added conditions.
static void test_schedulers(void** state) {
  (void)state;
  pipeline::GenerateOptions o;
  o.prompts = {"colibrí"};
  o.steps = 2;
  o.guidance = 5;
  int total = 0;
  o.progress = [&](int, int n) { return total = n, true; };
  assert_int_equal(sd->generate(o).size(1), 128);
  assert_int_equal(total, 2);
  o.width = o.height = 64;
  torch::Tensor euler;
  for (const auto& name : sched::scheduler_names()) {
    o.scheduler = name;
    auto image = sd->generate(o);
    assert_true(torch::isfinite(image).all().item<bool>());
    if (name == "euler") euler = image;
  }
  o.scheduler = "euler:timestep_spacing=trailing";
  assert_true(rel_err(sd->generate(o), euler) > 1e-3);  // trailing spacing (Lightning) is another schedule
  // The negative prompt's absence (zeros) and the empty string differ.
  o.scheduler = "";
  auto zeros = sd->generate(o);
  o.negative_prompt = "";
  assert_true(rel_err(sd->generate(o), zeros) > 1e-3);
}

// Animations interpolate the pooled embedding too: the first frame is the first keyframe's image.
static void test_animate(void** state) {
  (void)state;
  pipeline::AnimateOptions a;
  a.prompts = {"colibrí", "rana"};
  a.seeds = {3};
  a.frames = 3;
  a.settings.steps = 2;
  a.settings.guidance = 5;
  a.settings.width = a.settings.height = 64;
  auto frames = sd->animate(a);
  assert_int_equal(frames.size(0), 3);
  pipeline::GenerateOptions o = a.settings;
  o.prompts = {"colibrí"};
  o.seed = 3;
  assert_true(rel_err(frames[0], sd->generate(o)[0]) < 1e-6);
}

// An SDXL folder needs text_encoder_2/ and tokenizer_2/; a UNet whose added conditions do not fit
// the time ids and projection is refused at load, naming the widths.
static void test_incomplete_folder(void** state) {
  (void)state;
  namespace fs = std::filesystem;
  const fs::path model = model_dir();
  for (const char* missing : {"text_encoder_2", "tokenizer_2"}) {
    const fs::path dir = fs::path(temp_dir()) / (std::string("no-") + missing);
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(model))
      if (entry.path().filename() != missing) fs::create_symlink(entry.path(), dir / entry.path().filename());
    try {
      pipeline::StableDiffusion::load(dir.string(), {});
      fail_msg("an SDXL folder without %s loaded", missing);
    } catch (const Error& e) {
      assert_int_equal(e.status(), BIOESP_ERR_NOT_FOUND);
      assert_non_null(strstr(e.what(), missing));
    }
  }
  const fs::path dir = fs::path(temp_dir()) / "refiner-index";
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(model))
    if (entry.path().filename() != "model_index.json") fs::create_symlink(entry.path(), dir / entry.path().filename());
  json index = json::parse(io::read_text_file((model / "model_index.json").string()));
  index["requires_aesthetics_score"] = true;
  io::write_text_file((dir / "model_index.json").string(), index.dump());
  try {
    pipeline::StableDiffusion::load(dir.string(), {});
    fail_msg("a base UNet loaded as a refiner");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "projection_class_embeddings_input_dim is 112"));
  }
}

// A refiner folder as stable-diffusion-xl-refiner-1.0 lays it out — text_encoder_2/ and
// tokenizer_2/ alone, requires_aesthetics_score — made from the tiny SDXL's parts and a UNet for
// its conditions (12-wide cross-attention, 5 time ids): its prompts are the second encoder's
// reading alone (the base model's last 12 channels, its pooled projection), the time ids end in
// the aesthetic score, txt2img and img2img draw, and training it is refused by name.
static void test_refiner(void** state) {
  (void)state;
  namespace fs = std::filesystem;
  const fs::path model = model_dir(), dir = fs::path(temp_dir()) / "tiny-refiner";
  fs::create_directories(dir / "unet");
  for (const char* part : {"text_encoder_2", "tokenizer_2", "vae", "scheduler"}) fs::create_symlink(model / part, dir / part);
  json index = json::parse(io::read_text_file((model / "model_index.json").string()));
  index["_class_name"] = "StableDiffusionXLImg2ImgPipeline";
  index["text_encoder"] = index["tokenizer"] = json::array({nullptr, nullptr});
  index["requires_aesthetics_score"] = true;
  index["force_zeros_for_empty_prompt"] = false;
  io::write_text_file((dir / "model_index.json").string(), index.dump());
  json unet = json::parse(io::read_text_file((model / "unet/config.json").string()));
  unet["cross_attention_dim"] = 12;
  unet["projection_class_embeddings_input_dim"] = 5 * 16 + 16;
  io::write_text_file((dir / "unet/config.json").string(), unet.dump());
  {
    models::UNet2DConditionModel u(config::parse_unet(unet.dump(), "unet/config.json"));
    models::initialise_random(*u, 5);
    std::vector<io::Tensor> tensors;
    for (const auto& p : u->named_parameters()) tensors.push_back(models::from_torch(p.key(), p.value()));
    io::write_safetensors((dir / "unet/diffusion_pytorch_model.safetensors").string(), tensors, {{"format", "pt"}});
  }
  auto refiner = pipeline::StableDiffusion::load(dir.string(), {});
  assert_true(refiner->sdxl() && !refiner->text_encoder());
  const std::vector<std::string> prompts{"a photo of sks creature", ""};
  auto mine = refiner->encode_prompts(prompts, 0), base = sd->encode_prompts(prompts, 0);
  assert_int_equal(mine.embeds.size(2), 12);
  assert_true(torch::equal(mine.embeds, base.embeds.slice(2, 8)));
  assert_true(torch::equal(mine.pooled, base.pooled));
  pipeline::GenerateOptions g;
  g.prompts = {prompts[0]};
  g.negative_prompt = "blurry";
  g.steps = 4;
  g.width = g.height = 64;
  auto ids = refiner->time_ids(g, 64, 64, true);
  assert_true(torch::equal(ids, torch::tensor({64.f, 64.f, 0.f, 0.f, 2.5f, 64.f, 64.f, 0.f, 0.f, 6.f}).view({2, 5})));
  auto image = refiner->generate(g);
  assert_true(image.sizes() == torch::IntArrayRef({1, 64, 64, 3}) && torch::isfinite(image).all().item<bool>());
  g.init_image = image[0].permute({2, 0, 1}) * 2 - 1;
  g.strength = 0.5;
  image = refiner->generate(g);
  assert_true(image.sizes() == torch::IntArrayRef({1, 64, 64, 3}) && torch::isfinite(image).all().item<bool>());
  try {
    refiner->tokenizer();
    fail_msg("a refiner gave a first tokenizer");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_UNSUPPORTED);
  }
  try {
    train::Trainer tr(*refiner, {});
    fail_msg("a refiner trained");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.what(), "refiner"));
  }
}

// An SDXL pipeline made from its component configs (benchmarks, training from scratch): the
// loaded folder's architecture, names and shapes, weights drawn from the seed, generating; a
// second encoder without its projection refused as loading refuses it.
static void test_create(void** state) {
  (void)state;
  auto config = [](const char* c) { return io::read_text_file(model_dir() + "/" + c + "/config.json"); };
  auto made = [&](uint64_t seed, const std::string& te2) {
    return pipeline::StableDiffusion::create(model_dir(), config("text_encoder"), config("unet"), config("vae"), {}, seed, te2);
  };
  auto a = made(3, config("text_encoder_2")), b = made(3, config("text_encoder_2"));
  assert_true(a->sdxl());
  for (const auto& [name, root] : sd->lora_roots()) {
    auto want = root->named_parameters(), got = a->lora_roots().at(name)->named_parameters(),
         again = b->lora_roots().at(name)->named_parameters();
    assert_int_equal(got.size(), want.size());
    for (const auto& p : want) {
      assert_true(got.contains(p.key()) && got[p.key()].sizes() == p.value().sizes());
      assert_true(torch::equal(got[p.key()], again[p.key()]));
    }
  }
  pipeline::GenerateOptions g;
  g.prompts = {"a photo of sks creature"};
  g.steps = 2;
  g.width = g.height = 64;
  auto image = a->generate(g);
  assert_true(image.sizes() == torch::IntArrayRef({1, 64, 64, 3}) && torch::isfinite(image).all().item<bool>());
  json plain = json::parse(config("text_encoder_2"));
  plain["architectures"] = {"CLIPTextModel"};
  try {
    made(3, plain.dump());
    fail_msg("a second encoder without projection was made");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_FORMAT);
    assert_non_null(strstr(e.what(), "CLIPTextModelWithProjection"));
  }
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokenizers),  cmocka_unit_test(test_encode_prompt), cmocka_unit_test(test_weighted_prompts),
      cmocka_unit_test(test_time_ids),
      cmocka_unit_test(test_golden_cases), cmocka_unit_test(test_schedulers),   cmocka_unit_test(test_animate),
      cmocka_unit_test(test_incomplete_folder), cmocka_unit_test(test_refiner), cmocka_unit_test(test_create),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
