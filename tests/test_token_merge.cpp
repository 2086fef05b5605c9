// Token merging (ToMe for SD, bioesp_generate_options.token_merging): the bipartite matching keeps
// what merging promises (the r most similar sources join a destination, the mean spread back, the
// rest untouched), the UNet merges and a ControlNet does not, the images stay within the drift
// measured on the tiny and the embedded model, and the C API's option reaches the pipeline.
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "core/threads.h"
#include "image/image_io.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "models/token_merge.h"
#include "pipeline/control.h"
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

// Rows of [N, C] that occur once or more: the tokens that remain distinct.
static int64_t distinct_rows(const torch::Tensor& x) { return std::get<0>(at::unique_dim(x, 0)).size(0); }

// On random tokens of even and odd layouts: N − r rows after merging, as many distinct ones after
// spreading back, the token sum kept (each group's members all get its mean), and every source
// not merged unchanged.
static void test_merge_unmerge(void** state) {
  (void)state;
  torch::manual_seed(0);
  const std::pair<int64_t, int64_t> layouts[] = {{8, 8}, {5, 7}};
  for (const auto& [h, w] : layouts) {
    const int64_t N = h * w, r = N / 2;
    auto x = torch::randn({2, N, 16});
    models::TokenMerge plan(x, h, w, r, 42);
    assert_int_equal(plan.merged(), r);
    auto merged = plan.merge(x), back = plan.unmerge(merged);
    assert_int_equal(merged.size(1), N - r);
    assert_true(back.sizes() == x.sizes());
    assert_true(torch::allclose(back.sum(1), x.sum(1), 1e-4, 1e-4));
    const int64_t cells = (h / 2) * (w / 2), sources = N - cells;
    for (int64_t b = 0; b < 2; ++b) {
      assert_int_equal(distinct_rows(back[b]), N - r);
      const int64_t same = (back[b] == x[b]).all(-1).sum().item<int64_t>();
      assert_true(same >= sources - r);
    }
    // More than the sources cannot merge.
    assert_int_equal(models::TokenMerge(x, h, w, N, 42).merged(), sources);
  }
}

// Tokens equal within each 2 × 2 cell: every source finds its own cell's destination (cosine 1),
// so merging three in four and spreading back gives the tokens again.
static void test_merges_most_similar(void** state) {
  (void)state;
  torch::manual_seed(1);
  const int64_t h = 8, w = 8, N = h * w;
  auto cells = torch::randn({1, h / 2, w / 2, 8});
  auto x = cells.repeat_interleave(2, 1).repeat_interleave(2, 2).reshape({1, N, 8});
  models::TokenMerge plan(x, h, w, N * 3 / 4, 7);
  assert_int_equal(plan.merge(x).size(1), N / 4);
  assert_true(torch::allclose(plan.unmerge(plan.merge(x)), x, 1e-5, 1e-6));
}

// The destinations follow the seed: the same seed merges alike, another differently.
static void test_seeded(void** state) {
  (void)state;
  torch::manual_seed(2);
  auto x = torch::randn({1, 64, 8});
  auto spread = [&](uint64_t seed) {
    models::TokenMerge plan(x, 8, 8, 32, seed);
    return plan.unmerge(plan.merge(x));
  };
  assert_true(torch::equal(spread(5), spread(5)));
  assert_false(torch::equal(spread(5), spread(6)));
}

// Under a merging scope the tiny UNet's output moves and a ControlNet's residuals stay exact;
// ratio 0 changes nothing.
static void test_unet_merges_controlnet_exact(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  const std::string control = path_join(ref_dir(), "golden/control");
  auto sd = pipeline::StableDiffusion::load(tiny(), {});
  auto cn = pipeline::load_controlnet(control + "/controlnet", "", torch::kCPU, torch::kFloat32, {});
  const auto in = io::read_safetensors(control + "/controlnet_residuals.safetensors");
  auto golden = [&](const char* key) {
    const io::Tensor* t = in.find("", key);
    if (!t) fail_msg("no %s in the golden file", key);
    return models::to_torch(*t).clone();
  };
  const auto sample = golden("sample"), t = golden("timestep"), ctx = golden("encoder_hidden_states"),
             cond = golden("controlnet_cond");
  const int64_t tokens = sample.size(2) * sample.size(3);
  const int64_t down = models::token_merge_downsample(sd->unet()->config());
  assert_int_equal(down, 1);  // tiny-sd1's top level has transformers
  const auto exact = sd->unet()->forward(sample, t, ctx);
  const auto residuals = cn->forward(sample, t, ctx, cond, 1.0, false);
  {
    models::TokenMergeScope off({0, 9, 0, tokens, down});
    assert_true(torch::equal(sd->unet()->forward(sample, t, ctx), exact));
  }
  models::TokenMergeScope merging({0.5, 9, 0, tokens, down});
  const auto merged = sd->unet()->forward(sample, t, ctx);
  assert_false(torch::allclose(merged, exact, 1e-4, 1e-4));
  assert_true(torch::equal(merged, sd->unet()->forward(sample, t, ctx)));  // one plan per step
  const auto again = cn->forward(sample, t, ctx, cond, 1.0, false);
  for (size_t i = 0; i < residuals.down.size(); ++i) assert_true(torch::equal(again.down[i], residuals.down[i]));
  assert_true(torch::equal(again.mid, residuals.mid));
}

static const double kRatios[] = {0.25, 0.5};

// Each ratio's image against the exact one, within the bound measured for it (mean absolute
// difference in 0..255 levels; docs/performance.md), and not the exact image; ratio 0 is it.
static void check_drift(const std::string& path, pipeline::GenerateOptions g, const double (&bound)[2]) {
  auto sd = pipeline::StableDiffusion::load(path, {});
  const auto exact = pipeline::to_images(sd->generate(g))[0];
  g.token_merging = 0;
  assert_true(pipeline::to_images(sd->generate(g))[0].pixels == exact.pixels);
  for (size_t i = 0; i < 2; ++i) {
    g.token_merging = kRatios[i];
    const auto img = pipeline::to_images(sd->generate(g))[0];
    const Drift d = drift(img, exact);
    print_message("token merging %.2f: mean abs %.3f / 255, PSNR %.1f dB\n", kRatios[i], d.mae, d.psnr);
    assert_true(d.mae > 0);
    assert_true(d.mae <= bound[i]);
  }
}

static void test_tiny_drift(void** state) {
  (void)state;
  // Measured: 0.401 and 0.548 (PSNR 51.6, 49.6 dB).
  check_drift(tiny(), drift_options(10, 7.5), {0.6, 0.8});
}

static void test_embedded_drift(void** state) {
  (void)state;
  // Measured: 9.34 and 13.4 (PSNR 22.3, 18.6 dB): at 64 px its merging level has only 8 × 8
  // tokens, so each merge is a large share of the picture.
  check_drift(embedded(), drift_options(25, 5), {14, 20});
}

// SDXL merges at its first level with transformers (tiny-sdxl: the second).
static void test_sdxl(void** state) {
  (void)state;
  auto sd = pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sdxl"), {});
  assert_int_equal(models::token_merge_downsample(sd->unet()->config()), 2);
  auto g = drift_options(4, 5);
  g.width = g.height = 128;
  const auto exact = sd->generate(g);
  g.token_merging = 0.5;
  assert_false(torch::equal(sd->generate(g), exact));
}

static bioesp_status generate(bioesp_model* m, float ratio, bioesp_images** images) {
  const char* prompt[] = {"colibrí"};
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = prompt;
  g.num_prompts = 1;
  g.steps = 4;
  g.seed = 7;
  g.token_merging = ratio;
  return bioesp_generate(m, &g, images);
}

// The C API's option gives the pipeline's image bit for bit; out of 0 … 0.75 it is refused.
static void test_c_api(void** state) {
  (void)state;
  bioesp_generate_options o;
  bioesp_generate_options_init(&o);
  assert_true(o.token_merging == 0);
  bioesp_model* m = nullptr;
  if (bioesp_model_load(tiny().c_str(), nullptr, &m) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  bioesp_images* images = nullptr;
  if (generate(m, 0.5f, &images) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  bioesp_image img;
  img.struct_size = sizeof img;
  assert_int_equal(bioesp_images_get(images, 0, &img), BIOESP_OK);
  const auto want = [&] {
    threads::Share share(0);  // the thread count the entry point runs with
    pipeline::GenerateOptions p;
    p.prompts = {"colibrí"};
    p.steps = 4;
    p.seed = 7;
    p.token_merging = 0.5;
    return pipeline::to_images(pipeline::StableDiffusion::load(tiny(), {})->generate(p))[0];
  }();
  assert_int_equal(img.width * img.height * 3, want.pixels.size());
  assert_memory_equal(img.pixels, want.pixels.data(), want.pixels.size());
  bioesp_images_free(images);
  for (float bad : {-0.1f, 0.8f, NAN}) {
    images = nullptr;
    assert_int_equal(generate(m, bad, &images), BIOESP_ERR_INVALID_ARGUMENT);
    assert_non_null(std::strstr(bioesp_last_error(), "token_merging"));
    assert_null(images);
  }
  bioesp_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge_unmerge),
      cmocka_unit_test(test_merges_most_similar),
      cmocka_unit_test(test_seeded),
      cmocka_unit_test(test_unet_merges_controlnet_exact),
      cmocka_unit_test(test_tiny_drift),
      cmocka_unit_test(test_embedded_drift),
      cmocka_unit_test(test_sdxl),
      cmocka_unit_test(test_c_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
