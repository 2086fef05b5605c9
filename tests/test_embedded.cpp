// The embedded model (models/criaturas): found, small, complete, deterministic, and trained — a
// quality check that can fail: its denoising loss on held-out captioned pictures (train/evaluate.h)
// far under an untrained model's, and images for different beings that differ from each other and from noise.
#include <torch/torch.h>

#include <sys/stat.h>


#include "image/image_io.h"
#include "io/file.h"
#include "models/clip_text.h"
#include "models/unet.h"
#include "models/layers.h"
#include "pipeline/pipeline.h"
#include "train/evaluate.h"
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

// Loaded as bioesp_model_load loads it: its float16 weights held as the file holds them (the
// held-out evaluation once took a float16 weight's dtype for the UNet's and failed).
static std::unique_ptr<pipeline::StableDiffusion> sd() {
  pipeline::LoadOptions o;
  o.weights_as_file = true;
  return pipeline::StableDiffusion::load(model(), o);
}

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

// The held-out pictures' mean denoising loss with their captions, and the diffusion classifier's
// top-1 accuracy among their 8 captions.
static train::Evaluation heldout(pipeline::StableDiffusion& s) {
  train::EvaluateOptions o;
  o.data = std::string(BIOESP_SOURCE_DIR) + "/tests/data/criaturas-heldout";
  o.classify = 8;
  auto r = train::evaluate(s, o);
  assert_true(r.pictures.size() >= 8);
  return r;
}

static void test_denoises_heldout_pictures(void** state) {
  (void)state;
  auto trained = sd();
  const auto r = heldout(*trained);
  // The same pipeline with the UNet and text encoder as new-model initialises them.
  auto untrained = sd();
  untrained->unet() = models::UNet2DConditionModel(trained->unet()->config());
  untrained->text_encoder() = models::CLIPTextModel(trained->text_encoder()->config());
  models::initialise_random(*untrained->unet(), 1);
  models::initialise_random(*untrained->text_encoder(), 2);
  const auto base = heldout(*untrained);
  print_message("held-out denoising loss: trained %.4f, untrained %.4f; top-1 among %zu captions: trained %.3f, "
                "untrained %.3f\n", r.loss, base.loss, r.pictures[0].candidates.size(), r.accuracy, base.accuracy);
  // Measured, not asserted: today's model barely tells the held-out beings' captions apart (see
  // The embedded model in the README); its captions steer generation, as test_beings_differ shows.
  assert_true(r.loss < 0.35 * base.loss);
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
