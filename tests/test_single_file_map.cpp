// The single-file conversion table is complete for real SD 1.x checkpoints: every key of
// manifests/sd1.single_file_ldm.json maps one-to-one onto the diffusers manifests, shapes equal.
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/file.h"
#include "io/single_file.h"
extern "C" {
#include "support/testutil.h"
}

// cmocka last: its macros clash with the C++ library's names.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using nlohmann::json;
using namespace bioesp::io;

static json manifest(const char* name) {
  return json::parse(read_text_file(path_join(path_join(ref_dir(), "manifests"), name)));
}

static std::vector<int64_t> shape_of(const json& v) {
  // manifests hold [shape, dtype] (or a bare shape in the single-file one)
  const json& s = v.is_array() && !v.empty() && v[0].is_array() ? v[0] : v;
  return s.get<std::vector<int64_t>>();
}

static void test_sd1_single_file_maps_onto_diffusers(void** state) {
  (void)state;
  WeightSet ldm;
  const json single = manifest("sd1.single_file_ldm.json");
  for (const auto& [k, v] : single.items()) {
    Tensor t;
    t.name = k;
    t.shape = shape_of(v);
    t.nbytes = static_cast<size_t>(checked_numel(t.shape, k)) * 4;
    ldm.tensors.push_back(t);
  }
  ldm.sort();
  std::vector<std::string> ignored;
  WeightSet out = ldm_to_diffusers(ldm, infer_ldm_layout(ldm), &ignored);
  for (const auto& k : ignored) fail_msg("single-file key %s maps nowhere", k.c_str());

  std::map<std::string, json> want = {{"unet", manifest("sd1.unet.json")},
                                      {"vae", manifest("sd1.vae.json")},
                                      {"text_encoder", manifest("sd1.text_encoder.json")}};
  std::set<std::string> seen;
  for (const auto& t : out.tensors) {
    auto& m = want.at(t.component);
    auto it = m.find(t.name);
    if (it == m.end()) fail_msg("%s/%s is not in the diffusers manifest", t.component.c_str(), t.name.c_str());
    if (shape_of(*it) != t.shape) fail_msg("%s/%s: shape differs", t.component.c_str(), t.name.c_str());
    seen.insert(t.component + "/" + t.name);
  }
  size_t expected = 0;
  for (const auto& [component, m] : want)
    for (const auto& [k, v] : m.items()) {
      if (k.find("position_ids") != std::string::npos) continue;  // a buffer, not a weight
      ++expected;
      if (!seen.count(component + "/" + k)) fail_msg("diffusers %s/%s has no single-file source", component.c_str(), k.c_str());
    }
  assert_int_equal(seen.size(), expected);
}

static void test_open_clip_split(void** state) {
  (void)state;
  // SD 2.x: the fused in_proj splits into q, k, v; the last resblock is dropped.
  LdmLayout l;
  l.text_encoder_layers = 23;
  auto t = map_ldm_key("cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight", l);
  assert_int_equal(t.size(), 3);
  assert_string_equal(t[1].name.c_str(), "text_model.encoder.layers.3.self_attn.k_proj.weight");
  assert_int_equal(t[2].chunk, 2);
  assert_true(map_ldm_key("cond_stage_model.model.transformer.resblocks.23.ln_1.weight", l).empty());
  assert_string_equal(map_ldm_key("cond_stage_model.model.ln_final.bias", l)[0].name.c_str(),
                      "text_model.final_layer_norm.bias");
  assert_true(map_ldm_key("model_ema.decay", l).empty());
  assert_true(map_ldm_key("alphas_cumprod", l).empty());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sd1_single_file_maps_onto_diffusers),
      cmocka_unit_test(test_open_clip_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
