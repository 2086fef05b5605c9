// txt2img and img2img against StableDiffusionPipeline's images for the tiny model: every
// scheduler at 10 steps with CFG and a negative prompt, a batch without CFG, 64×192, img2img;
// 4 LCM steps without CFG against the loop written out.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"
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

static json read_json(const std::string& path) { return json::parse(config::from_python_json(io::read_text_file(path))); }

// The whole config without _use_default_values' order, which diffusers leaves to a Python set.
static json comparable(json config) {
  if (config.contains("_use_default_values")) {
    auto& u = config["_use_default_values"];
    std::sort(u.begin(), u.end());
  }
  return config;
}

// tiny-sd1 with the scheduler_config.json diffusers read when it drew the golden images (the
// shared folder's copy was re-saved since, with timestep_spacing written out): its PNDM config
// without the keys it took from defaults.
static std::string golden_model() {
  namespace fs = std::filesystem;
  const fs::path model = path_join(ref_dir(), "models/tiny-sd1"), dir = fs::path(temp_dir()) / "tiny-sd1-golden";
  fs::create_directories(dir / "scheduler");
  for (const char* c : {"model_index.json", "tokenizer", "text_encoder", "unet", "vae"}) fs::create_symlink(model / c, dir / c);
  json pndm = read_json(std::string(path_join(ref_dir(), "golden/tiny-sd1")) + "/pipeline.json")["cases"][0]["scheduler_config"];
  for (const auto& k : pndm["_use_default_values"]) pndm.erase(k.get<std::string>());
  pndm.erase("_use_default_values");
  io::write_text_file((dir / "scheduler/scheduler_config.json").string(), pndm.dump());
  return dir.string();
}

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(golden_model(), {});
  return 0;
}

static double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

static void test_golden_cases(void** state) {
  (void)state;
  std::string dir = path_join(ref_dir(), "golden/tiny-sd1");
  json meta = read_json(dir + "/pipeline.json");
  auto golden = io::read_safetensors(dir + "/pipeline.safetensors");
  int cases = 0;
  for (const auto& c : meta["cases"]) {
    std::string key = c["key"];
    pipeline::GenerateOptions g;
    if (c["prompt"].is_array()) g.prompts = c["prompt"].get<std::vector<std::string>>();
    else g.prompts = {c["prompt"].get<std::string>()};
    if (c.contains("negative_prompt")) g.negative_prompt = c["negative_prompt"].get<std::string>();
    g.steps = c["steps"];
    g.guidance = c["guidance_scale"];
    g.seed = c["seed"];
    g.scheduler = c["scheduler"];
    if (c.contains("width")) {
      g.width = c["width"];
      g.height = c["height"];
    }
    if (c.contains("init_image")) {
      auto init = models::to_torch(*golden.find("", c["init_image"].get<std::string>())).clone();
      g.init_image = init.permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
      g.strength = c["strength"];
    }
    // The scheduler by name from the model's config is the one diffusers used.
    auto s = sched::make_scheduler(sd->scheduler_config(), g.scheduler);
    if (c.contains("scheduler_config") && comparable(json::parse(s->config_json())) != comparable(c["scheduler_config"]))
      fail_msg("%s: the scheduler's config differs from diffusers': %s", key.c_str(), s->config_json().c_str());
    s->set_timesteps(g.steps);
    if (c.contains("timesteps") && s->timesteps() != c["timesteps"].get<std::vector<double>>())
      fail_msg("%s: timesteps differ", key.c_str());
    auto image = sd->generate(g);
    auto ref = models::to_torch(*golden.find("", key));
    if (image.sizes() != ref.sizes()) fail_msg("%s: shape differs", key.c_str());
    double err = rel_err(image, ref);
    print_message("%-28s relative L2 error %.2g\n", key.c_str(), err);
    if (!(err <= 1e-3)) fail_msg("%s: relative L2 error %.3g exceeds 1e-3", key.c_str(), err);
    ++cases;
  }
  assert_int_equal(cases, 10);
}

// An LCM UNet draws with its guidance embedding and no CFG batch: the pipeline's image equals a
// loop written out by hand (prompt embedding, w = guidance − 1 embedded, UNet, LCMScheduler's
// steps with their fresh noise, VAE).
static void test_lcm_pipeline(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto lcm = pipeline::StableDiffusion::load(tiny_lcm_model(), {});
  auto g = testing::lcm_options();
  g.negative_prompt = "ignored: no CFG batch";
  auto image = lcm->generate(g);

  auto want = testing::lcm_by_hand(*lcm, g);
  print_message("LCM pipeline vs the loop by hand: relative L2 %.2g\n", rel_err(image, want));
  assert_true(rel_err(image, want) <= 1e-6);
  g.guidance = 2;  // another w: another image
  assert_true(rel_err(lcm->generate(g), image) > 1e-3);
}

static void test_bad_requests(void** state) {
  (void)state;
  auto refused = [](pipeline::GenerateOptions g, bioesp_status want, const char* fragment) {
    try {
      sd->generate(g);
      fail_msg("accepted a bad request (%s)", fragment);
    } catch (const Error& e) {
      if (e.status() != want || !strstr(e.what(), fragment)) fail_msg("'%s' (wanted '%s')", e.what(), fragment);
    }
  };
  pipeline::GenerateOptions g;
  g.prompts = {"colibrí"};
  g.steps = 2;
  auto w = g; w.width = 100; refused(w, BIOESP_ERR_INVALID_ARGUMENT, "multiples of 8");
  // (steps, guidance and the other ranges are the options table's, checked at the C API: test_generate)
  auto s = g; s.scheduler = "k_lms"; refused(s, BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler");
  auto eta = g; eta.scheduler = "euler"; eta.eta = 0.3; refused(eta, BIOESP_ERR_INVALID_ARGUMENT, "takes none");
  auto nan_eta = g; nan_eta.scheduler = "ddim"; nan_eta.eta = NAN; refused(nan_eta, BIOESP_ERR_INVALID_ARGUMENT, "eta");
  auto e = g; e.prompts.clear(); refused(e, BIOESP_ERR_INVALID_ARGUMENT, "no prompt");
  // a progress callback that says stop cancels within one step
  int calls = 0;
  auto c = g;
  c.steps = 5;
  c.progress = [&](int, int) { return ++calls < 2; };
  refused(c, BIOESP_ERR_CANCELLED, "cancelled");
  assert_int_equal(calls, 2);
  // same seed, same image; another seed, another image
  g.seed = 5;
  auto a = sd->generate(g), b = sd->generate(g);
  assert_true(torch::equal(a, b));
  g.seed = 6;
  assert_false(torch::equal(a, sd->generate(g)));
}

// LCM at 4 steps with guidance 1 (no CFG batch) equals LCMScheduler's equations written out over
// golden/fast's timesteps; img2img draws LCM's grid from the first strength·T timesteps.
static void test_lcm(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  json fast = read_json(std::string(path_join(ref_dir(), "golden/fast")) + "/scheduler_traces.json");
  const auto timesteps = fast["cases"]["lcm.steps4"]["timesteps"].get<std::vector<int64_t>>();
  pipeline::GenerateOptions g;
  g.prompts = {"colibrí"};
  g.steps = 4;
  g.guidance = 1;
  g.seed = 42;
  g.scheduler = "lcm";
  auto image = sd->generate(g);

  auto betas = torch::linspace(std::sqrt(0.00085), std::sqrt(0.012), 1000, torch::kFloat32).pow(2);
  auto ac = torch::cumprod(1 - betas, 0);
  auto embeds = sd->encode_prompts(g.prompts, 0).embeds;
  auto gen = at::detail::createCPUGenerator(42);
  auto x = at::randn({1, 4, 16, 16}, gen);
  for (size_t k = 0; k < timesteps.size(); ++k) {
    const int64_t t = timesteps[k];
    auto eps = sd->unet()->forward(x, torch::tensor(static_cast<float>(t)), embeds);
    auto a = ac[t];
    auto x0 = (x - (1 - a).sqrt() * eps) / a.sqrt();
    const double st = t * 10.0, c_skip = 0.25 / (st * st + 0.25), c_out = st / std::sqrt(st * st + 0.25);
    auto denoised = c_out * x0 + c_skip * x;
    if (k + 1 == timesteps.size()) {
      x = denoised;
    } else {
      auto a_prev = ac[timesteps[k + 1]];
      x = a_prev.sqrt() * denoised + (1 - a_prev).sqrt() * at::randn({1, 4, 16, 16}, gen);
    }
  }
  auto want = (sd->vae()->decode(x / sd->vae()->config().scaling_factor) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1});
  const double err = rel_err(image, want);
  print_message("lcm.steps4 against the loop written out: relative L2 error %.2g\n", err);
  if (!(err <= 1e-5)) fail_msg("LCM pipeline differs from the hand-written loop by %.3g", err);

  // img2img at strength 0.5: LCM runs all 4 steps of its cut grid, DDIM the last 2 of its 4
  g.init_image = torch::rand({3, 128, 128}) * 2 - 1;
  g.strength = 0.5;
  for (const auto& [name, want_steps] : std::vector<std::pair<std::string, int>>{{"lcm", 4}, {"ddim", 2}}) {
    g.scheduler = name;
    int total = 0;
    g.progress = [&](int, int n) { return total = n, true; };
    sd->generate(g);
    assert_int_equal(total, want_steps);
  }
}

static void test_missing_model(void** state) {
  (void)state;
  std::string dir = std::string(temp_dir()) + "/half-model";
  assert_int_equal(system(("mkdir -p '" + dir + "/tokenizer' && cp " + path_join(ref_dir(), "models/tiny-sd1/model_index.json") + " '" + dir + "'").c_str()), 0);
  try {
    pipeline::StableDiffusion::load(dir, {});
    fail_msg("a half-downloaded model loaded");
  } catch (const Error& e) {
    assert_true(e.status() == BIOESP_ERR_IO || e.status() == BIOESP_ERR_NOT_FOUND);
    print_message("%s\n", e.what());
  }
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_cases),
      cmocka_unit_test(test_lcm_pipeline),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_lcm),
      cmocka_unit_test(test_missing_model),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
