// LoRA files attached as runtime adapters: UNet outputs against diffusers' load_lora_weights for
// the diffusers, kohya and legacy-checkpoint layouts at scales 1.0 and 0.5, a full image, and
// the workshop's LoRA on the full-size SD 1.x UNet.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "lora/adapter.h"
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

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unet_outputs), cmocka_unit_test(test_pipeline_image),
      cmocka_unit_test(test_refusals), cmocka_unit_test(test_workshop_lora_on_sd1)};
  return cmocka_run_group_tests(tests, setup, NULL);
}
