// Schedulers against diffusers' traces: identical timesteps, trajectories within 1e-5, driven by
// the synthetic model eps = 0.3·scale_model_input(x, t) + 0.05·t/1000 and a CPU generator seeded 3.
#include <torch/torch.h>

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

static void test_traces(void** state) {
  (void)state;
  std::string dir = path_join(ref_dir(), "golden/tiny-sd1");
  json meta = json::parse(config::from_python_json(io::read_text_file(dir + "/scheduler_traces.json")));
  auto traces = io::read_safetensors(dir + "/scheduler_traces.safetensors");
  int cases = 0;
  for (const auto& [name, config] : meta["configs"].items()) {
    for (int steps : {1, 7, 25, 50}) {
      std::string key = name + ".steps" + std::to_string(steps);
      const io::Tensor* tt = traces.find("", key + ".timesteps");
      const io::Tensor* tr = traces.find("", key + ".trajectory");
      if (!tt || !tr) fail_msg("trace %s missing", key.c_str());
      auto want_t = models::to_torch(*tt).to(torch::kFloat64);
      auto traj = models::to_torch(*tr);
      auto s = sched::make_scheduler_exact(name, config.dump());
      s->set_timesteps(steps);
      const auto& ts = s->timesteps();
      if (static_cast<int64_t>(ts.size()) != want_t.size(0)) fail_msg("%s: %zu timesteps, want %ld", key.c_str(), ts.size(), want_t.size(0));
      for (size_t i = 0; i < ts.size(); ++i)
        if (ts[i] != want_t[i].item<double>())
          fail_msg("%s: timestep %zu is %g, want %g", key.c_str(), i, ts[i], want_t[i].item<double>());
      auto gen = at::detail::createCPUGenerator(3);
      auto x = at::randn({1, 4, 8, 8}, gen) * s->init_noise_sigma();
      double worst = 0;
      auto check = [&](int64_t k) {
        auto ref = traj[k];
        double err = ((x - ref).norm() / ref.norm()).item<double>();
        worst = std::max(worst, err);
        if (!(err <= 1e-5)) fail_msg("%s: step %ld relative error %.3g", key.c_str(), k, err);
      };
      check(0);
      for (size_t i = 0; i < ts.size(); ++i) {
        auto eps = 0.3 * s->scale_model_input(x, i) + 0.05 * ts[i] / 1000.0;
        x = s->step(eps, i, x, &gen);
        check(i + 1);
      }
      print_message("%-24s %zu timesteps, worst relative error %.2g\n", key.c_str(), ts.size(), worst);
      ++cases;
    }
  }
  assert_int_equal(cases, 28);
}

static void test_bad_configs(void** state) {
  (void)state;
  auto refused = [](const std::string& name, const std::string& config, bioesp_status want, const char* fragment) {
    try {
      auto s = sched::make_scheduler_exact(name, config);
      s->set_timesteps(0);
      fail_msg("accepted %s with %s", name.c_str(), config.c_str());
    } catch (const Error& e) {
      if (e.status() != want || !strstr(e.what(), fragment)) fail_msg("%s: '%s'", name.c_str(), e.what());
    }
  };
  refused("lms", "{}", BIOESP_ERR_INVALID_ARGUMENT, "unknown scheduler 'lms'");
  refused("ddim", "{\"beta_schedule\": \"sigmoid\"}", BIOESP_ERR_UNSUPPORTED, "sigmoid");
  refused("ddim", "{\"prediction_type\": \"flow\"}", BIOESP_ERR_UNSUPPORTED, "prediction_type");
  refused("pndm", "{\"skip_prk_steps\": false}", BIOESP_ERR_UNSUPPORTED, "skip_prk_steps");
  refused("ddim", "{\"steps_offset\": \"one\"}", BIOESP_ERR_FORMAT, "steps_offset");
  refused("euler", "{", BIOESP_ERR_FORMAT, "malformed");
  refused("ddim", "{}", BIOESP_ERR_INVALID_ARGUMENT, "steps must be");
  // by name from the model's config: the training schedule carries over, the rest is the class's
  std::string model = io::read_text_file(std::string(path_join(ref_dir(), "models/tiny-sd1")) + "/scheduler/scheduler_config.json");
  auto own = sched::make_scheduler(model);
  own->set_timesteps(10);
  assert_int_equal(own->timesteps().size(), 11);  // PNDM repeats one timestep
  auto euler = sched::make_scheduler(model, "euler");
  euler->set_timesteps(10);
  assert_true(euler->timesteps().front() == 999.0);  // linspace, the class default
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_traces), cmocka_unit_test(test_bad_configs)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
