// Weights held in float16, bfloat16 or (Linear) int8 and widened per call
// (bioesp_model_options.weight_storage): the Linear and Conv2d weights really are smaller, and the
// images stay within a measured drift of the float32 ones on the tiny and the embedded model;
// held as the file holds them, they give the images of widening at load exactly.
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "core/threads.h"
#include "image/image_io.h"
#include "models/layers.h"
#include "pipeline/pipeline.h"
#include "bioesp.h"
#include "support/drift.h"
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

static std::string tiny() { return path_join(ref_dir(), "models/tiny-sd1"); }
static std::string embedded() {
  const char* m = bioesp_embedded_model();
  if (!m) fail_msg("bioesp_embedded_model() found no model");
  return m;
}

static std::unique_ptr<pipeline::StableDiffusion> load(const std::string& path, c10::optional<torch::ScalarType> storage,
                                                       bool as_file = false) {
  pipeline::LoadOptions o;
  o.weight_storage = storage;
  o.weights_as_file = as_file;
  return pipeline::StableDiffusion::load(path, o);
}

// Bytes of the Linear and of the Conv2d weights of the model's three networks, and their dtypes.
struct WeightBytes {
  int64_t linear = 0, conv = 0;
  std::set<torch::ScalarType> linear_types, conv_types;
  bool all_in(torch::ScalarType l, torch::ScalarType c) const {
    return linear_types == std::set<torch::ScalarType>{l} && conv_types == std::set<torch::ScalarType>{c};
  }
};

static WeightBytes weight_bytes(pipeline::StableDiffusion& sd) {
  WeightBytes b;
  for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(sd.unet().get()), static_cast<torch::nn::Module*>(sd.vae().get()),
                               static_cast<torch::nn::Module*>(sd.text_encoder().get())})
    for (const auto& l : m->modules()) {
      if (auto* lin = dynamic_cast<models::LinearImpl*>(l.get())) {
        b.linear += static_cast<int64_t>(lin->weight.nbytes());
        b.linear_types.insert(lin->weight.scalar_type());
      } else if (auto* conv = dynamic_cast<models::Conv2dImpl*>(l.get())) {
        b.conv += static_cast<int64_t>(conv->weight.nbytes());
        b.conv_types.insert(conv->weight.scalar_type());
      }
    }
  return b;
}

static const torch::ScalarType kStorages[] = {torch::kFloat16, torch::kBFloat16, torch::kInt8};

static void test_weights_smaller(void** state) {
  (void)state;
  const WeightBytes f32 = weight_bytes(*load(tiny(), c10::nullopt));
  assert_true(f32.all_in(torch::kFloat32, torch::kFloat32));
  for (auto storage : kStorages) {
    const WeightBytes w = weight_bytes(*load(tiny(), storage));
    print_message("%s: Linear weights %.2f MB, Conv2d %.2f MB (float32: %.2f, %.2f)\n", c10::toString(storage), w.linear / 1e6,
                  w.conv / 1e6, f32.linear / 1e6, f32.conv / 1e6);
    const bool int8 = storage == torch::kInt8;
    assert_true(w.all_in(storage, int8 ? torch::kFloat16 : storage));
    assert_int_equal(w.linear * (int8 ? 4 : 2), f32.linear);
    assert_int_equal(w.conv * 2, f32.conv);
  }
}

// Each storage's image against float32's, within the bound measured for it (docs/performance.md:
// mean absolute difference in 0..255 levels, f16, bf16, int8). test_weights_smaller shows the
// weights narrowed; a bound of 0 asks for the float32 image exactly (weights saved in float16).
static void check_drift(const std::string& path, const pipeline::GenerateOptions& g, const double (&bound)[3]) {
  const auto exact = pipeline::to_images(load(path, c10::nullopt)->generate(g))[0];
  for (size_t i = 0; i < 3; ++i) {
    const auto img = pipeline::to_images(load(path, kStorages[i])->generate(g))[0];
    const Drift d = drift(img, exact);
    print_message("%s: mean abs %.3f / 255, PSNR %.1f dB\n", c10::toString(kStorages[i]), d.mae, d.psnr);
    assert_true(d.mae <= bound[i]);
  }
}

static void test_tiny_drift(void** state) {
  (void)state;
  // Measured: 0.025, 0.172, 0.131 (PSNR 64.2, 55.8, 57.0 dB).
  check_drift(tiny(), drift_options(10, 7.5), {0.1, 0.5, 0.5});
}

static void test_embedded_drift(void** state) {
  (void)state;
  // Its weights are float16 in the file, so float16 storage loses nothing.
  check_drift(embedded(), drift_options(25, 5), {0, 1.0, 1.0});
}

// Weights as the file holds them: a float32 file's stay float32; a float16 file's (the embedded
// model) and a bfloat16 one's (the tiny model saved so) keep their type at half the bytes; the
// images are those of widening at load, bit for bit.
static void test_as_file(void** state) {
  (void)state;
  const std::string bf16 = path_join(temp_dir(), "tiny-bf16");
  load(tiny(), c10::nullopt)->save(bf16, tiny(), torch::kBFloat16);
  const std::pair<std::string, torch::ScalarType> cases[] = {
      {tiny(), torch::kFloat32}, {embedded(), torch::kFloat16}, {bf16, torch::kBFloat16}};
  const auto g = drift_options(6, 5);
  for (const auto& [path, type] : cases) {
    auto widened = load(path, c10::nullopt), kept = load(path, c10::nullopt, true);
    const WeightBytes w = weight_bytes(*widened), k = weight_bytes(*kept);
    assert_true(w.all_in(torch::kFloat32, torch::kFloat32) && k.all_in(type, type));
    assert_int_equal(k.linear * 4, w.linear * torch::elementSize(type));
    assert_int_equal(k.conv * 4, w.conv * torch::elementSize(type));
    assert_true(torch::equal(kept->generate(g), widened->generate(g)));
  }
}

// The C API's option reaches the pipeline: each choice's image is that storage's, bit for bit.
static void test_c_api(void** state) {
  (void)state;
  const std::pair<bioesp_weight_storage, torch::ScalarType> choices[] = {
      {BIOESP_WEIGHTS_F16, torch::kFloat16}, {BIOESP_WEIGHTS_BF16, torch::kBFloat16}, {BIOESP_WEIGHTS_INT8, torch::kInt8}};
  pipeline::GenerateOptions p;
  p.prompts = {"colibrí"};
  p.steps = 4;
  p.seed = 7;
  const auto exact = pipeline::to_images(load(tiny(), c10::nullopt)->generate(p))[0];
  for (const auto& [choice, storage] : choices) {
    bioesp_model_options o;
    bioesp_model_options_init(&o);
    assert_int_equal(o.weight_storage, BIOESP_WEIGHTS_AS_FILE);
    o.weight_storage = choice;
    bioesp_model* m = nullptr;
    if (bioesp_model_load(tiny().c_str(), &o, &m) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
    const char* prompt[] = {"colibrí"};
    bioesp_generate_options g;
    bioesp_generate_options_init(&g);
    g.prompts = prompt;
    g.num_prompts = 1;
    g.steps = 4;
    g.seed = 7;
    bioesp_images* images = nullptr;
    if (bioesp_generate(m, &g, &images) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
    bioesp_image img;
    img.struct_size = sizeof img;
    assert_int_equal(bioesp_images_get(images, 0, &img), BIOESP_OK);
    // At the thread count the entry point runs with: another one sums in another order.
    const auto want = [&] {
      threads::Share share(0);
      return pipeline::to_images(load(tiny(), storage)->generate(p))[0];
    }();
    assert_int_equal(img.width * img.height * 3, want.pixels.size());
    assert_memory_equal(img.pixels, want.pixels.data(), want.pixels.size());
    assert_true(want.pixels != exact.pixels);
    bioesp_images_free(images);
    bioesp_model_free(m);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weights_smaller),
      cmocka_unit_test(test_tiny_drift),
      cmocka_unit_test(test_embedded_drift),
      cmocka_unit_test(test_as_file),
      cmocka_unit_test(test_c_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
