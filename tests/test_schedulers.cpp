// Schedulers against diffusers: traces (identical timesteps, trajectories within 1e-5) driven by
// the synthetic model eps = 0.3·scale_model_input(x, t) + 0.05·t/1000 and a CPU generator seeded
// 3, for tiny-sd1's schedulers and the few-step ones (golden/fast); the configs, timesteps and
// sigmas every class gets from Hub-style files through from_config (golden/scheduler_swap.json);
// half precision stepped in float32; DDIM's η.
#include <torch/torch.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"
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

static json read_json(const std::string& path) { return json::parse(config::from_python_json(io::read_text_file(path))); }

// Timesteps equal to the golden ones, then the trajectory from x (the golden's first entry)
// within 1e-5 of the golden's after every step.
static void check_trace(const std::string& key, sched::Scheduler& s, const io::WeightSet& traces, torch::Tensor x,
                        at::Generator& gen) {
  const io::Tensor* tt = traces.find("", key + ".timesteps");
  const io::Tensor* tr = traces.find("", key + ".trajectory");
  if (!tt || !tr) fail_msg("trace %s missing", key.c_str());
  auto want_t = models::to_torch(*tt).to(torch::kFloat64);
  auto traj = models::to_torch(*tr);
  const auto& ts = s.timesteps();
  if (static_cast<int64_t>(ts.size()) != want_t.size(0)) fail_msg("%s: %zu timesteps, want %ld", key.c_str(), ts.size(), want_t.size(0));
  for (size_t i = 0; i < ts.size(); ++i)
    if (ts[i] != want_t[i].item<double>()) fail_msg("%s: timestep %zu is %g, want %g", key.c_str(), i, ts[i], want_t[i].item<double>());
  double worst = 0;
  auto check = [&](int64_t k) {
    auto ref = traj[k];
    double err = ((x - ref).norm() / ref.norm()).item<double>();
    worst = std::max(worst, err);
    if (!(err <= 1e-5)) fail_msg("%s: step %ld relative error %.3g", key.c_str(), k, err);
  };
  check(0);
  for (size_t i = 0; i < ts.size(); ++i) {
    auto eps = 0.3 * s.scale_model_input(x, i) + 0.05 * ts[i] / 1000.0;
    x = s.step(eps, i, x, &gen);
    check(i + 1);
  }
  print_message("%-34s %zu timesteps, worst relative error %.2g\n", key.c_str(), ts.size(), worst);
}

static void test_traces(void** state) {
  (void)state;
  std::string dir = path_join(ref_dir(), "golden/tiny-sd1");
  json meta = read_json(dir + "/scheduler_traces.json");
  auto traces = io::read_safetensors(dir + "/scheduler_traces.safetensors");
  int cases = 0;
  for (const auto& [name, config] : meta["configs"].items()) {
    for (int steps : {1, 7, 25, 50}) {
      auto s = sched::make_scheduler(config.dump(), name);
      s->set_timesteps(steps);
      auto gen = at::detail::createCPUGenerator(3);
      auto x = at::randn({1, 4, 8, 8}, gen) * s->init_noise_sigma();
      check_trace(name + ".steps" + std::to_string(steps), *s, traces, x, gen);
      ++cases;
    }
  }
  assert_int_equal(cases, 28);
}

// golden/fast: LCM, TCD and trailing spacing. Each case's config is its class's whole config.
static void test_fast_traces(void** state) {
  (void)state;
  std::string dir = path_join(ref_dir(), "golden/fast");
  json meta = read_json(dir + "/scheduler_traces.json");
  auto traces = io::read_safetensors(dir + "/scheduler_traces.safetensors");
  int cases = 0;
  for (const auto& [key, c] : meta["cases"].items()) {
    json config = c["config"];
    config["_class_name"] = c["scheduler"];
    auto s = sched::make_scheduler(config.dump(), "");
    s->set_timesteps(c["num_inference_steps"]);
    if (c["step_kwargs"].contains("eta")) s->set_eta(c["step_kwargs"]["eta"]);
    auto gen = at::detail::createCPUGenerator(c["seed"].get<uint64_t>());
    torch::Tensor x;
    if (c["set_timesteps_kwargs"].contains("strength")) {
      // img2img as LatentConsistencyModelImg2ImgPipeline: the clean latents, then their noise.
      const int64_t begin = s->start_at_strength(c["set_timesteps_kwargs"]["strength"]);
      auto clean = at::randn({1, 4, 8, 8}, gen), noise = at::randn({1, 4, 8, 8}, gen);
      assert_true(torch::equal(clean, models::to_torch(*traces.find("", key + ".x_clean"))));
      assert_true(torch::equal(noise, models::to_torch(*traces.find("", key + ".noise"))));
      x = s->add_noise_at(clean, noise, begin);
    } else {
      x = at::randn({1, 4, 8, 8}, gen) * s->init_noise_sigma();
    }
    assert_true(s->init_noise_sigma() == c["init_noise_sigma"].get<double>());
    check_trace(key, *s, traces, x, gen);
    if (const io::Tensor* sigmas = traces.find("", key + ".sigmas")) {
      auto json_sigmas = json::parse(sched::describe(config.dump(), "", c["num_inference_steps"]))["sigmas"];
      auto want = models::to_torch(*sigmas).to(torch::kFloat64);
      for (int64_t i = 0; i < want.size(0); ++i)
        if (json_sigmas[i].get<double>() != want[i].item<double>()) fail_msg("%s: sigma %ld differs", key.c_str(), i);
    }
    ++cases;
  }
  assert_int_equal(cases, 22);
}

// bioesp's name for a diffusers class and from_config's keyword arguments ("call" in the golden).
static std::string spec_of(const json& c) {
  static const std::map<std::string, std::string> names = {
      {"PNDMScheduler", "pndm"},         {"DDIMScheduler", "ddim"},   {"EulerDiscreteScheduler", "euler"},
      {"EulerAncestralDiscreteScheduler", "euler_a"}, {"DPMSolverMultistepScheduler", "dpmpp_2m"},
      {"UniPCMultistepScheduler", "unipc"}, {"LCMScheduler", "lcm"}};
  std::string spec = names.at(c["class"].get<std::string>());
  const std::string call = c.value("call", "");
  const size_t comma = call.find("config, ");
  if (comma != std::string::npos) spec += ":" + call.substr(comma + 8, call.rfind(')') - comma - 8);
  return spec;
}

// describe()'s answer against a golden entry: the whole config, timesteps, sigmas and
// init_noise_sigma, all exact.
static void check_described(const std::string& what, const json& got, const json& want) {
  for (const auto& [k, v] : want["config"].items())
    if (got["config"].value(k, json("(absent)")) != v)
      fail_msg("%s: config '%s' is %s, want %s", what.c_str(), k.c_str(), got["config"].value(k, json("(absent)")).dump().c_str(), v.dump().c_str());
  if (got["config"].size() != want["config"].size()) fail_msg("%s: config has %zu keys, want %zu", what.c_str(), got["config"].size(), want["config"].size());
  if (got["class"] != want["class"]) fail_msg("%s: class %s", what.c_str(), got["class"].dump().c_str());
  if (got["timesteps"] != want["timesteps_10"]) fail_msg("%s: timesteps %s", what.c_str(), got["timesteps"].dump().c_str());
  if (want.contains("sigmas_10") && got["sigmas"] != want["sigmas_10"]) fail_msg("%s: sigmas %s", what.c_str(), got["sigmas"].dump().c_str());
  if (!want.contains("sigmas_10") && got.contains("sigmas")) fail_msg("%s: sigmas where diffusers has none", what.c_str());
  if (got["init_noise_sigma"] != want["init_noise_sigma"]) fail_msg("%s: init_noise_sigma %s", what.c_str(), got["init_noise_sigma"].dump().c_str());
}

static void test_swaps(void** state) {
  (void)state;
  json golden = read_json(path_join(ref_dir(), "golden/scheduler_swap.json"));
  int cases = 0;
  for (const auto& [variant, v] : golden["variants"].items()) {
    const std::string file = v["scheduler_config.json"].dump();
    check_described(variant + " own", json::parse(sched::describe(file, "", 10)), v["source"]);
    for (const auto& [target, c] : v["from_config"].items()) {
      const std::string spec = spec_of(c);
      check_described(variant + " " + spec, json::parse(sched::describe(file, spec, 10)), c);
      ++cases;
    }
    for (const auto& [chain, c] : v["chained"].items()) {
      // DPMSolverMultistep.from_config(EulerDiscrete.from_config(src.config).config)
      const std::string euler = json::parse(sched::describe(file, "euler", 10))["config"].dump();
      check_described(variant + " " + chain, json::parse(sched::describe(euler, "dpmpp_2m", 10)), c);
      ++cases;
    }
  }
  print_message("%d swaps as diffusers' from_config makes them\n", cases);
  assert_int_equal(cases, 40);
}

// Half-precision inputs are stepped in float32 and cast back: bit for bit the float32 step of
// the same (rounded) inputs, for every deterministic scheduler.
static void test_half_precision(void** state) {
  (void)state;
  std::string model = io::read_text_file(std::string(path_join(ref_dir(), "models/tiny-sd1")) + "/scheduler/scheduler_config.json");
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    for (const char* name : {"pndm", "ddim", "euler", "dpmpp_2m", "dpmpp_2m_karras", "unipc", "tcd"}) {
      auto half = sched::make_scheduler(model, name), full = sched::make_scheduler(model, name);
      if (std::string(name) == "tcd") half->set_eta(0), full->set_eta(0);
      half->set_timesteps(4);
      full->set_timesteps(4);
      auto gen = at::detail::createCPUGenerator(3);
      auto x = (at::randn({1, 4, 8, 8}, gen) * half->init_noise_sigma()).to(dtype);
      for (size_t i = 0; i < half->timesteps().size(); ++i) {
        auto out = (0.3 * half->scale_model_input(x, i) + 0.05 * half->timesteps()[i] / 1000.0).to(dtype);
        auto stepped = half->step(out, i, x, &gen);
        auto want = full->step(out.to(torch::kFloat32), i, x.to(torch::kFloat32), &gen).to(dtype);
        if (stepped.scalar_type() != dtype) fail_msg("%s: the step returned another dtype", name);
        if (!torch::equal(stepped, want)) fail_msg("%s: step %zu in %s is not the float32 step", name, i, c10::toString(dtype));
        x = stepped;
      }
    }
    // Stochastic samplers draw their noise in the model's dtype, as diffusers' randn_tensor.
    for (const char* name : {"euler_a", "lcm", "ddpm"}) {
      auto s = sched::make_scheduler(model, name);
      s->set_timesteps(3);
      auto gen = at::detail::createCPUGenerator(3);
      auto x = at::randn({1, 4, 8, 8}, gen).to(dtype);
      for (size_t i = 0; i < s->timesteps().size(); ++i) x = s->step(0.3 * x, i, x, &gen);
      assert_true(x.scalar_type() == dtype && torch::isfinite(x).all().item<bool>());
    }
  }
}

// DDIM with η: the DDPM posterior's deviation scaled by η, its noise from the generator.
static void test_ddim_eta(void** state) {
  (void)state;
  const std::string config = R"({"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
      "clip_sample": false, "set_alpha_to_one": false, "steps_offset": 1})";
  auto s = sched::make_scheduler(config, "ddim");
  s->set_timesteps(10);
  s->set_eta(0.5);
  auto gen = at::detail::createCPUGenerator(7);
  auto x = at::randn({1, 4, 8, 8}, gen), eps = 0.3 * x;
  auto got = s->step(eps, 2, x, &gen);
  auto check_gen = at::detail::createCPUGenerator(7);
  at::randn({1, 4, 8, 8}, check_gen);
  auto noise = at::randn({1, 4, 8, 8}, check_gen);
  const auto& ac = s->alphas_cumprod();
  const double a = ac[701].item<float>(), a_prev = ac[601].item<float>();
  const double sd = 0.5 * std::sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev));
  auto x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
  auto want = std::sqrt(a_prev) * x0 + std::sqrt(1 - a_prev - sd * sd) * eps + sd * noise;
  assert_true(torch::allclose(got, want, 1e-5, 1e-6));
  // η 0 is the default: no noise drawn, the generator untouched
  auto d = sched::make_scheduler(config, "ddim");
  d->set_timesteps(10);
  auto untouched = at::detail::createCPUGenerator(7);
  d->step(eps, 2, x, &untouched);
  assert_true(torch::equal(at::randn({4}, untouched), at::randn({4}, at::detail::createCPUGenerator(7))));
}

static void test_bad_configs(void** state) {
  (void)state;
  auto refused = [](const std::string& name, const std::string& config, bioesp_status want, const char* fragment) {
    try {
      auto s = sched::make_scheduler(config, name);
      s->set_timesteps(0);
      fail_msg("accepted %s with %s", name.c_str(), config.c_str());
    } catch (const Error& e) {
      if (e.status() != want || !strstr(e.what(), fragment)) fail_msg("%s: '%s'", name.c_str(), e.what());
    }
  };
  refused("lms", "{}", BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler 'lms'");
  refused("", R"({"_class_name": "LMSDiscreteScheduler"})", BIOESP_ERR_UNSUPPORTED, "LMSDiscreteScheduler");
  refused("ddim", "{\"beta_schedule\": \"sigmoid\"}", BIOESP_ERR_UNSUPPORTED, "sigmoid");
  refused("ddim", "{\"prediction_type\": \"flow\"}", BIOESP_ERR_UNSUPPORTED, "prediction_type");
  refused("pndm", "{\"skip_prk_steps\": false}", BIOESP_ERR_UNSUPPORTED, "skip_prk_steps");
  refused("pndm", R"({"skip_prk_steps": true, "prediction_type": "sample"})", BIOESP_ERR_UNSUPPORTED, "prediction_type");
  refused("ddim", "{\"steps_offset\": \"one\"}", BIOESP_ERR_FORMAT, "steps_offset");
  refused("ddim", "{\"num_train_timesteps\": 1e12}", BIOESP_ERR_FORMAT, "num_train_timesteps");
  refused("euler", "{", BIOESP_ERR_FORMAT, "malformed");
  refused("ddim", "{}", BIOESP_ERR_INVALID_ARGUMENT, "steps must be");
  refused("euler:foo=1", "{}", BIOESP_ERR_INVALID_ARGUMENT, "has no setting 'foo'");
  refused("euler:timestep_spacing", "{}", BIOESP_ERR_INVALID_ARGUMENT, "key=value");
  refused("euler:timestep_spacing=middle", "{}", BIOESP_ERR_UNSUPPORTED, "middle");
  refused("dpmpp_2m:solver_order=3", "{}", BIOESP_ERR_UNSUPPORTED, "solver_order 3");
  refused("dpmpp_2m:algorithm_type=sde-dpmsolver++", "{}", BIOESP_ERR_UNSUPPORTED, "algorithm_type");
  refused("euler:use_beta_sigmas=true", "{}", BIOESP_ERR_UNSUPPORTED, "use_beta_sigmas");
  refused("lcm:original_inference_steps=null", "{}", BIOESP_ERR_FORMAT, "original_inference_steps");
  auto throws = [](const std::function<void()>& f, const char* fragment) {
    try {
      f();
      fail_msg("accepted: %s", fragment);
    } catch (const Error& e) {
      if (e.status() != BIOESP_ERR_INVALID_ARGUMENT || !strstr(e.what(), fragment)) fail_msg("'%s'", e.what());
    }
  };
  throws([] { sched::make_scheduler("{}", "euler")->set_eta(0.3); }, "takes none");
  throws([] { sched::make_scheduler("{}", "ddim")->set_eta(1.5); }, "between 0 and 1");
  throws([] { sched::make_scheduler("{}", "tcd")->set_eta(-0.1); }, "between 0 and 1");
  throws([] { sched::make_scheduler("{}", "lcm")->set_timesteps(51); }, "original_inference_steps");
  throws([] {
    auto s = sched::make_scheduler("{}", "lcm");
    s->set_timesteps(8);
    s->start_at_strength(0.1);  // 5 timesteps of the schedule for 8 steps
  }, "strength");
}

// The one list of names; every name builds, and the model's own class answers to its name.
static void test_names(void** state) {
  (void)state;
  const auto& names = sched::scheduler_names();
  assert_int_equal(names.size(), 10);
  for (const auto& n : names) {
    auto s = sched::make_scheduler(R"({"skip_prk_steps": true})", n);
    assert_string_equal(s->name().c_str(), n.c_str());
    s->set_timesteps(4);
    assert_true(json::parse(s->config_json()).is_object());
  }
  auto karras = sched::make_scheduler(R"({"_class_name": "DPMSolverMultistepScheduler", "use_karras_sigmas": true})");
  assert_string_equal(karras->name().c_str(), "dpmpp_2m_karras");
  // settings as from_config's keyword arguments: trailing DDIM for few-step LoRAs
  auto trailing = sched::make_scheduler("{}", "ddim:timestep_spacing=trailing,clip_sample=false");
  trailing->set_timesteps(4);
  assert_true(trailing->timesteps() == std::vector<double>({999, 749, 499, 249}));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_traces),        cmocka_unit_test(test_fast_traces),
                                     cmocka_unit_test(test_swaps),         cmocka_unit_test(test_half_precision),
                                     cmocka_unit_test(test_ddim_eta),      cmocka_unit_test(test_bad_configs),
                                     cmocka_unit_test(test_names)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
