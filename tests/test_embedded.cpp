// The embedded model (models/criaturas): found, small, complete, deterministic, and trained — a
// quality check that can fail: its denoising loss on held-out captioned pictures far under an
// untrained model's, and images for different beings that differ from each other and from noise.
#include <torch/torch.h>

#include <sys/stat.h>

#include <algorithm>

#include "image/image_io.h"
#include "io/file.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/layers.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"
#include "train/dataset.h"
#include "bioesp.h"
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

static std::string model() {
  const char* m = bioesp_embedded_model();
  if (!m) fail_msg("bioesp_embedded_model() found no model");
  return m;
}

static std::unique_ptr<pipeline::StableDiffusion> sd() { return pipeline::StableDiffusion::load(model(), {}); }

static void test_small_and_complete(void** state) {
  (void)state;
  int64_t bytes = 0;
  for (const char* c : {"unet", "text_encoder", "vae", "tokenizer", "scheduler"})
    for (const auto& f : io::list_directory(model() + "/" + c)) {
      struct stat st;
      assert_int_equal(stat((model() + "/" + c + "/" + f).c_str(), &st), 0);
      bytes += st.st_size;
    }
  print_message("model folder: %.1f MB\n", bytes / 1e6);
  assert_true(bytes <= 25'000'000);
  // Loading is strict: every tensor its configs call for, and no other.
  auto s = sd();
  assert_int_equal(s->unet()->config().sample_size * s->latent_factor(), 64);
}

static pipeline::GenerateOptions options(const std::string& prompt, uint64_t seed) {
  pipeline::GenerateOptions g;
  g.prompts = {prompt};
  g.steps = 25;
  g.guidance = 5;
  g.seed = seed;
  return g;
}

static void test_deterministic(void** state) {
  (void)state;
  auto a = pipeline::to_images(sd()->generate(options("lagarto", 11)))[0];
  auto b = pipeline::to_images(sd()->generate(options("lagarto", 11)))[0];
  auto c = pipeline::to_images(sd()->generate(options("lagarto", 12)))[0];
  assert_true(a.pixels == b.pixels);
  assert_true(a.pixels != c.pixels);
  assert_int_equal(a.width, 64);
}

// Mean squared noise-prediction error on the held-out pictures with their captions (or, with
// `rotate`, each with the next picture's caption), at fixed noise and timesteps spread over the
// schedule.
static double heldout_loss(pipeline::StableDiffusion& s, bool rotate = false) {
  torch::NoGradGuard no_grad;
  train::DatasetOptions d;
  d.resolution = 64;
  auto examples = train::load_examples(std::string(BIOESP_SOURCE_DIR) + "/tests/data/criaturas-heldout", d, nullptr);
  assert_true(examples.size() >= 8);
  at::Generator gen = at::detail::createCPUGenerator(5);
  std::vector<torch::Tensor> px;
  std::vector<std::string> captions;
  for (const auto& e : examples) px.push_back(train::pixels(e, 64, false, false, gen)), captions.push_back(e.caption);
  if (rotate) std::rotate(captions.begin(), captions.begin() + 1, captions.end());
  auto x = torch::stack(px);
  auto latents = s.vae()->encode(x).mean * s.vae()->config().scaling_factor;
  auto noise_schedule = sched::make_scheduler(s.scheduler_config(), "ddpm");
  auto ehs = s.encode_prompts(captions, 0);
  double total = 0;
  for (int64_t t : {50, 200, 400, 600, 800, 950}) {
    auto noise = at::randn(latents.sizes(), gen);
    auto ts = torch::full({latents.size(0)}, t, torch::kLong);
    auto pred = s.unet()->forward(noise_schedule->add_noise(latents, noise, ts), ts, ehs);
    total += torch::mse_loss(pred, noise).item<double>() / 6;
  }
  return total;
}

static void test_denoises_heldout_pictures(void** state) {
  (void)state;
  auto trained = sd();
  const double loss = heldout_loss(*trained), wrong = heldout_loss(*trained, true);
  // The same pipeline with the UNet and text encoder as new-model initialises them.
  auto untrained = sd();
  untrained->unet() = models::UNet2DConditionModel(trained->unet()->config());
  untrained->text_encoder() = models::CLIPTextModel(trained->text_encoder()->config());
  models::initialise_random(*untrained->unet(), 1);
  models::initialise_random(*untrained->text_encoder(), 2);
  const double base = heldout_loss(*untrained);
  print_message("held-out denoising loss: trained %.4f (with other pictures' captions %.4f), untrained %.4f\n", loss,
                wrong, base);
  // Measured, not asserted: on unseen beings the captions barely change the loss (the run that
  // made the shipped model: 0.2203 with theirs, 0.2176 with others'); they steer generation, as
  // test_beings_differ shows.
  assert_true(loss < 0.35 * base);
}

// Mean absolute difference of two images, in 0..255.
static double diff(const image::Image& a, const image::Image& b) {
  double s = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return s / a.pixels.size();
}

// Mean absolute difference between horizontal neighbours: about 85 for uniform noise, small for
// drawings of flat colour.
static double roughness(const image::Image& a) {
  double s = 0;
  size_t n = 0;
  for (uint32_t y = 0; y < a.height; ++y)
    for (uint32_t x = 1; x < a.width; ++x)
      for (int c = 0; c < 3; ++c, ++n) s += std::abs(int(a.pixels[(y * a.width + x) * 3 + c]) - int(a.pixels[(y * a.width + x - 1) * 3 + c]));
  return s / n;
}

static void test_beings_differ(void** state) {
  (void)state;
  auto s = sd();
  const char* prompts[] = {"lagarto", "girasol", "pulpo", "mariposa"};
  std::vector<image::Image> img;
  for (const char* p : prompts) img.push_back(pipeline::to_images(s->generate(options(p, 3)))[0]);
  image::Image noise = img[0];
  at::Generator gen = at::detail::createCPUGenerator(0);
  auto r = at::randint(0, 256, {static_cast<int64_t>(noise.pixels.size())}, gen, torch::kLong);
  for (size_t i = 0; i < noise.pixels.size(); ++i) noise.pixels[i] = static_cast<uint8_t>(r[i].item<int64_t>());
  for (size_t i = 0; i < img.size(); ++i) {
    print_message("%-10s roughness %.1f (noise %.1f)\n", prompts[i], roughness(img[i]), roughness(noise));
    assert_true(roughness(img[i]) < 0.25 * roughness(noise));
    for (size_t j = i + 1; j < img.size(); ++j) {
      print_message("  vs %-10s %.1f\n", prompts[j], diff(img[i], img[j]));
      assert_true(diff(img[i], img[j]) > 25);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_and_complete),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_denoises_heldout_pictures),
      cmocka_unit_test(test_beings_differ),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
