// Evaluation (train/evaluate.h) on the tiny model: the loss it gives each caption is the one the
// trainer computes for it, the classifier picks the lowest (a tie the caption scored first), the
// same settings give the same numbers, and bad settings are refused by name.
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/threads.h"
#include "pipeline/pipeline.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/trainer.h"
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

static std::unique_ptr<pipeline::StableDiffusion> tiny() {
  return pipeline::StableDiffusion::load(path_join(ref_dir(), "models/tiny-sd1"), {});
}

// Eight captioned pictures (the embedded model's held-out Noto Emoji).
static const std::string kHeldout = std::string(BIOESP_SOURCE_DIR) + "/tests/data/criaturas-heldout";

static train::EvaluateOptions options(int classify) {
  train::EvaluateOptions o;
  o.data = kHeldout;
  o.classify = classify;
  o.timesteps = 3;
  o.noises = 2;
  o.seed = 5;
  return o;
}

// The loss the trainer computes for one picture and caption over the evaluation's timesteps and
// noises (the noises are a CPU generator's draws from `seed`, in timestep-major order).
static double trainer_loss(pipeline::StableDiffusion& sd, const train::EvaluateOptions& o, const std::string& path,
                           const std::string& caption) {
  torch::NoGradGuard no_grad;
  const int res = static_cast<int>(sd.unet()->config().sample_size * sd.latent_factor());
  train::DatasetOptions d;
  d.resolution = res;
  train::Example e;
  for (auto& x : train::load_examples(o.data, d, nullptr))
    if (x.path == path) e = x;
  at::Generator unused = at::detail::createCPUGenerator(0);
  train::Trainer tr(sd, train::Setup{});  // a LoRA whose up weights are zero: the model as it is
  train::StepInputs in;
  in.latents = tr.encode(train::pixels(e, res, false, false, unused).unsqueeze(0)).first * sd.vae()->config().scaling_factor;
  in.input_ids = torch::tensor(sd.tokenizer().encode(caption).ids, torch::kLong).unsqueeze(0);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  double total = 0;
  for (int i = 0; i < o.timesteps; ++i)
    for (int j = 0; j < o.noises; ++j) {
      in.noise = at::randn(in.latents.sizes(), gen);
      in.timesteps = torch::full({1}, static_cast<int64_t>((i + 0.5) * 1000 / o.timesteps), torch::kLong);
      total += tr.loss(in).item<double>();
    }
  return total / (o.timesteps * o.noises);
}

static double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-12); }

static void test_loss_is_the_training_loss(void** state) {
  (void)state;
  auto sd = tiny();
  const auto o = options(0);
  auto r = train::evaluate(*sd, o);
  assert_int_equal(r.pictures.size(), 8);
  assert_true(std::isnan(r.accuracy));
  double mean = 0;
  for (const auto& p : r.pictures) {
    assert_int_equal(p.candidates.size(), 1);
    assert_true(p.candidates[0] == p.caption && p.correct);
    mean += p.loss / 8;
  }
  assert_true(rel(r.loss, mean) < 1e-12);
  for (int i : {0, 5}) {
    const double expected = trainer_loss(*sd, o, r.pictures[i].path, r.pictures[i].caption);
    print_message("%s: %.6f (trainer %.6f)\n", r.pictures[i].path.c_str(), r.pictures[i].loss, expected);
    assert_true(rel(r.pictures[i].loss, expected) < 1e-5);
  }
}

static void test_classifier_picks_the_lowest(void** state) {
  (void)state;
  auto sd = tiny();
  const auto o = options(5);
  auto r = train::evaluate(*sd, o);
  int correct = 0;
  for (const auto& p : r.pictures) {
    assert_int_equal(p.candidates.size(), 5);
    assert_int_equal(std::count(p.candidates.begin(), p.candidates.end(), p.caption), 1);
    for (size_t i = 0; i < p.losses.size(); ++i) {
      assert_true(p.losses[i] >= p.losses[p.chosen]);
      if (i < p.chosen) assert_true(p.losses[i] > p.losses[p.chosen]);
      if (p.candidates[i] == p.caption) assert_true(p.losses[i] == p.loss);
    }
    assert_true(p.correct == (p.candidates[p.chosen] == p.caption));
    correct += p.correct;
  }
  assert_true(r.accuracy == correct / 8.0);
  // Every candidate's loss is the trainer's for that caption.
  const auto& p = r.pictures[2];
  for (size_t i = 0; i < p.candidates.size(); ++i)
    assert_true(rel(p.losses[i], trainer_loss(*sd, o, p.path, p.candidates[i])) < 1e-5);
  // The same settings give the same candidates and losses; another seed draws others.
  auto again = train::evaluate(*sd, o);
  for (size_t i = 0; i < r.pictures.size(); ++i) {
    assert_true(again.pictures[i].candidates == r.pictures[i].candidates);
    assert_true(again.pictures[i].losses == r.pictures[i].losses);
  }
  auto other = o;
  other.seed = 6;
  auto r6 = train::evaluate(*sd, other);
  bool differ = false;
  for (size_t i = 0; i < r.pictures.size(); ++i) differ |= r6.pictures[i].candidates != r.pictures[i].candidates;
  assert_true(differ);
}

static void write_caption(const std::string& dir, const std::string& name, const std::string& caption) {
  uint8_t px[16 * 16 * 3];
  for (size_t i = 0; i < sizeof px; ++i) px[i] = static_cast<uint8_t>(i * 7);
  write_test_png((dir + "/" + name + ".png").c_str(), 16, 16, px, 16);
  write_file((dir + "/" + name + ".txt").c_str(), caption.data(), caption.size());
}

// Captions the tokenizer reads alike (it lowercases) score alike: the tie goes to the caption
// scored first, so the right one wins only where the seeded order puts it first.
static void test_ties_go_to_the_first_scored(void** state) {
  (void)state;
  const std::string data = temp_dir(), pool = temp_dir();
  write_caption(data, "a", "cebra");
  write_caption(pool, "b", "CEBRA");
  write_caption(pool, "c", "Cebra");
  auto sd = tiny();
  int firsts = 0;
  for (uint64_t seed = 0; seed < 6; ++seed) {
    train::EvaluateOptions o;
    o.data = data;
    o.captions = pool;
    o.classify = 3;
    o.timesteps = 2;
    o.seed = seed;
    const auto p = train::evaluate(*sd, o).pictures.at(0);
    for (int i = 1; i < 3; ++i) assert_true(std::abs(p.losses[i] / p.losses[0] - 1) <= train::kTie);
    assert_int_equal(p.chosen, 0);
    assert_true(p.correct == (p.candidates[0] == "cebra"));
    firsts += p.correct;
  }
  assert_true(firsts > 0 && firsts < 6);  // the seeded order, not the right caption, decides
}

static void expect_refused(const train::EvaluateOptions& o, const char* fragment) {
  auto sd = tiny();
  try {
    train::evaluate(*sd, o);
    fail_msg("accepted; expected an error with '%s'", fragment);
  } catch (const Error& e) {
    if (std::string(e.what()).find(fragment) == std::string::npos) fail_msg("'%s' lacks '%s'", e.what(), fragment);
  }
}

static void test_bad_settings_refused(void** state) {
  (void)state;
  auto o = options(1);
  expect_refused(o, "classify must be 0 (the loss alone) or at least 2 captions, not 1");
  o = options(10);  // eight pictures: seven other captions
  expect_refused(o, "classify 10 needs 9 captions other than");
  o = options(0);
  o.timesteps = 0;
  expect_refused(o, "timesteps must be 1 to 1000, not 0");
  o.timesteps = 1001;
  expect_refused(o, "timesteps must be 1 to 1000, not 1001");
  o = options(0);
  o.noises = 0;
  expect_refused(o, "noises must be 1 to 1000, not 0");
  o = options(0);
  o.data = path_join(temp_dir(), "missing");
  expect_refused(o, "no such folder");
  o = options(3);
  o.captions = path_join(temp_dir(), "missing");
  expect_refused(o, "no such folder");
}

// The C entry point: its defaults, its result, and its refusals.
static void test_c_api(void** state) {
  (void)state;
  bioesp_model* model = nullptr;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), nullptr, &model), BIOESP_OK);
  bioesp_evaluate_options o;
  bioesp_evaluate_options_init(&o);
  assert_int_equal(o.timesteps, 10);
  assert_int_equal(o.noises, 1);
  assert_int_equal(o.classify, 0);
  const std::string data = kHeldout;
  o.data = data.c_str();
  o.classify = 4;
  o.timesteps = 2;
  bioesp_evaluation r;
  r.struct_size = sizeof r;
  assert_int_equal(bioesp_evaluate(model, &o, &r), BIOESP_OK);
  assert_int_equal(r.pictures, 8);
  assert_true(r.loss > 0 && r.accuracy >= 0 && r.accuracy <= 1);
  auto sd = tiny();
  auto same = train::EvaluateOptions{};
  same.data = data;
  same.classify = 4;
  same.timesteps = 2;
  // With the thread count the entry point runs with: another one sums in another order.
  const auto expected = [&] {
    threads::Share share(0);
    return train::evaluate(*sd, same);
  }();
  assert_true(rel(r.loss, expected.loss) < 1e-12 && r.accuracy == expected.accuracy);
  o.classify = 1;
  assert_int_equal(bioesp_evaluate(model, &o, &r), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "classify must be 0"));
  o.classify = 0;
  r.struct_size = 0;
  assert_int_equal(bioesp_evaluate(model, &o, &r), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "result->struct_size"));
  o.data = nullptr;
  r.struct_size = sizeof r;
  assert_int_equal(bioesp_evaluate(model, &o, &r), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "data must be set"));
  bioesp_model_free(model);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loss_is_the_training_loss),
      cmocka_unit_test(test_classifier_picks_the_lowest),
      cmocka_unit_test(test_ties_go_to_the_first_scored),
      cmocka_unit_test(test_bad_settings_refused),
      cmocka_unit_test(test_c_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
