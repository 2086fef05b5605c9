// txt2img and img2img against StableDiffusionPipeline's images for the tiny model: every
// scheduler at 10 steps with CFG and a negative prompt, a batch without CFG, 64×192, img2img.
#include <torch/torch.h>

#include <errno.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"
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

static int setup(void** state) {
  (void)state;
  sd = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
  return 0;
}

static double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

static void test_golden_cases(void** state) {
  (void)state;
  std::string dir = path_join(ref_dir(), "golden/tiny-sd1");
  json meta = json::parse(config::from_python_json(io::read_text_file(dir + "/pipeline.json")));
  auto golden = io::read_safetensors(dir + "/pipeline.safetensors");
  int cases = 0;
  for (const auto& c : meta["cases"]) {
    std::string key = c["key"];
    pipeline::GenerateOptions g;
    if (c["prompt"].is_array()) g.prompts = c["prompt"].get<std::vector<std::string>>();
    else g.prompts = {c["prompt"].get<std::string>()};
    if (c.contains("negative_prompt")) g.negative_prompt = c["negative_prompt"];
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
    if (c.contains("timesteps")) {
      auto s = sched::make_scheduler(sd->scheduler_config(), g.scheduler);
      s->set_timesteps(g.steps);
      auto want = c["timesteps"].get<std::vector<double>>();
      if (s->timesteps() != want) fail_msg("%s: timesteps differ", key.c_str());
    }
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

// tiny-sd1 with golden/fast's UNet with time_cond_proj_dim (LCM's guidance embedding).
static std::string lcm_model() {
  std::string dir = std::string(temp_dir()) + "/tiny-lcm";
  io::make_directories(dir);
  std::string tiny = path_join(ref_dir(), "models/tiny-sd1");
  for (const char* part : {"model_index.json", "scheduler", "text_encoder", "tokenizer", "vae"})
    if (symlink((tiny + "/" + part).c_str(), (dir + "/" + part).c_str()) != 0 && errno != EEXIST) fail_msg("symlink");
  if (symlink(path_join(ref_dir(), "golden/fast/unet_lcm"), (dir + "/unet").c_str()) != 0 && errno != EEXIST) fail_msg("symlink");
  return dir;
}

// An LCM UNet draws with its guidance embedding and no CFG batch: the pipeline's image equals a
// loop written out by hand (prompt embedding, w = guidance − 1 embedded, UNet, scheduler steps,
// VAE) over the few-step scheduler.
static void test_lcm_pipeline(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto lcm = pipeline::StableDiffusion::load(lcm_model(), {});
  pipeline::GenerateOptions g;
  g.prompts = {"colibrí"};
  g.negative_prompt = "ignored: no CFG batch";
  g.steps = 4;
  g.guidance = 8;
  g.seed = 7;
  g.scheduler = "ddim";
  auto image = lcm->generate(g);

  auto embeds = lcm->encode_prompts(g.prompts, 0);
  models::UNetExtra extra;
  extra.timestep_cond = models::guidance_embedding(torch::full({1}, 7.0f), 32);
  auto scheduler = sched::make_scheduler(lcm->scheduler_config(), g.scheduler);
  scheduler->set_timesteps(g.steps);
  at::Generator gen = at::detail::createCPUGenerator(g.seed);
  auto x = at::randn({1, 4, 16, 16}, gen, torch::TensorOptions().dtype(torch::kFloat32)) * scheduler->init_noise_sigma();
  for (size_t i = 0; i < scheduler->timesteps().size(); ++i) {
    auto t = torch::tensor(scheduler->timesteps()[i]);
    auto out = lcm->unet()->forward(scheduler->scale_model_input(x, static_cast<int64_t>(i)), t, embeds, extra);
    x = scheduler->step(out, static_cast<int64_t>(i), x, &gen);
  }
  auto want = (lcm->vae()->decode(x / lcm->vae()->config().scaling_factor) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1});
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
  auto n = g; n.guidance = NAN; refused(n, BIOESP_ERR_INVALID_ARGUMENT, "guidance");
  auto neg = g; neg.guidance = -1; refused(neg, BIOESP_ERR_INVALID_ARGUMENT, "guidance");
  auto z = g; z.steps = 0; refused(z, BIOESP_ERR_INVALID_ARGUMENT, "steps");
  auto s = g; s.scheduler = "k_lms"; refused(s, BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler");
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
      cmocka_unit_test(test_missing_model),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
