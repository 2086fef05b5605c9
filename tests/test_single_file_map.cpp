// The single-file conversion table is complete for real SD 1.x checkpoints: every key of
// manifests/sd1.single_file_ldm.json maps one-to-one onto the diffusers manifests, shapes equal.
// SDXL's original (SGM) file of the tiny model converts to exactly its diffusers folder, tensor for
// tensor; the original UNet names (kohya's SDXL LoRAs use them) invert the renaming; configs
// inferred from an SDXL file's shapes build what it holds.
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "config/infer.h"
#include "core/error.h"
#include "io/file.h"
#include "io/single_file.h"
#include "io/weights.h"
#include "models/architecture.h"
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

static std::string sdxl_dir() { return path_join(ref_dir(), "models/tiny-sdxl"); }
static std::string sdxl_file() { return path_join(ref_dir(), "golden/tiny-sdxl/tiny-sdxl.single_file.safetensors"); }

static WeightSet sdxl_single(bool with_config, std::vector<std::string>* ignored = nullptr) {
  OpenOptions o;
  o.to_diffusers = true;
  if (with_config) o.config_dir = sdxl_dir();
  if (ignored) o.log = [ignored](bioesp_log_level, const std::string& m) { ignored->push_back(m); };
  return open_weights(sdxl_file(), o);
}

static std::vector<uint8_t> bytes_of(const Tensor& t) {
  std::vector<uint8_t> b(t.nbytes);
  read_bytes(t, b.data());
  return b;
}

// Every tensor of the folder comes from the file, and every tensor of the file lands in the
// folder, with the same dtype, shape and bytes.
static void assert_same_sets(const WeightSet& single, const WeightSet& folder, const char* what) {
  std::map<std::pair<std::string, std::string>, const Tensor*> want;
  for (const auto& t : folder.tensors) want[{t.component, t.name}] = &t;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& t : single.tensors) {
    auto it = want.find({t.component, t.name});
    if (it == want.end()) fail_msg("%s: %s/%s is not in the diffusers folder", what, t.component.c_str(), t.name.c_str());
    const Tensor& f = *it->second;
    if (t.dtype != f.dtype || t.shape != f.shape) fail_msg("%s: %s/%s has another dtype or shape", what, t.component.c_str(), t.name.c_str());
    if (bytes_of(t) != bytes_of(f)) fail_msg("%s: %s/%s holds other values", what, t.component.c_str(), t.name.c_str());
    seen.insert({t.component, t.name});
  }
  for (const auto& [key, t] : want)
    if (!seen.count(key)) fail_msg("%s: the folder's %s/%s has no source in the file", what, key.first.c_str(), key.second.c_str());
  print_message("%s: %zu tensors equal\n", what, seen.size());
}

static void test_sdxl_single_file_equals_folder(void** state) {
  (void)state;
  const WeightSet folder = open_weights(sdxl_dir(), {});
  std::vector<std::string> log;
  assert_same_sets(sdxl_single(true, &log), folder, "SDXL single file, layout from the configs");
  assert_true(log.empty());  // nothing of the file was left out
  assert_same_sets(sdxl_single(false), folder, "SDXL single file, layout inferred");
  std::set<std::string> components;
  for (const auto& t : folder.tensors) components.insert(t.component);
  assert_int_equal(components.size(), 4);  // unet, vae, text_encoder, text_encoder_2
}

static void test_sgm_keys(void** state) {
  (void)state;
  LdmLayout l;
  // The refiner's lone OpenCLIP is embedders.0: its kind, not its index, makes it text_encoder_2.
  auto t = map_ldm_key("conditioner.embedders.0.model.transformer.resblocks.31.attn.in_proj_bias", l);
  assert_int_equal(t.size(), 3);
  assert_string_equal(t[0].component.c_str(), "text_encoder_2");
  assert_string_equal(t[2].name.c_str(), "text_model.encoder.layers.31.self_attn.v_proj.bias");
  t = map_ldm_key("conditioner.embedders.1.model.text_projection", l);
  assert_true(t.size() == 1 && t[0].transpose);
  assert_string_equal(t[0].name.c_str(), "text_projection.weight");
  // SD 2.x's OpenCLIP has no projection in diffusers; position ids and logit_scale are no weights.
  assert_true(map_ldm_key("cond_stage_model.model.text_projection", l).empty());
  assert_true(map_ldm_key("conditioner.embedders.0.transformer.text_model.embeddings.position_ids", l).empty());
  assert_true(map_ldm_key("conditioner.embedders.1.model.logit_scale", l).empty());
  assert_string_equal(map_ldm_key("conditioner.embedders.0.transformer.text_model.final_layer_norm.bias", l)[0].name.c_str(),
                      "text_model.final_layer_norm.bias");
}

// An odd file is refused naming the tensor: a projection that is no matrix, a fused attention
// that does not split in three.
static void test_sdxl_odd_files(void** state) {
  (void)state;
  auto refused = [](const std::string& key, std::vector<int64_t> shape, const char* message) {
    WeightSet set;
    Tensor t;
    t.name = key;
    t.shape = shape;
    t.nbytes = static_cast<size_t>(checked_numel(shape, key)) * 4;
    auto data = std::make_shared<std::vector<uint8_t>>(t.nbytes);
    t.data = data->data();
    t.owner = data;
    set.tensors.push_back(t);
    try {
      ldm_to_diffusers(set, LdmLayout{}, nullptr);
      fail_msg("%s was accepted", key.c_str());
    } catch (const bioesp::Error& e) {
      assert_int_equal(e.status(), BIOESP_ERR_FORMAT);
      if (!std::strstr(e.what(), key.c_str()) || !std::strstr(e.what(), message)) fail_msg("%s: %s", key.c_str(), e.what());
    }
  };
  refused("conditioner.embedders.1.model.text_projection", {12}, "a projection of 1 dimensions");
  refused("conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight", {35, 12}, "not divisible by 3");
}

// The original names of the UNet's tensors are exactly the original file's (diffusers' own
// converter wrote it), for SDXL and SD 1.x; on the full-size SDXL UNet they map back to every name.
static void test_ldm_unet_names(void** state) {
  (void)state;
  auto originals = [](const std::vector<std::string>& names) {
    std::set<std::string> out;
    for (const auto& [n, o] : ldm_unet_names(names)) out.insert("model.diffusion_model." + o);
    return out;
  };
  std::vector<std::string> names;
  for (const auto& t : open_weights(sdxl_dir() + "/unet", {}).tensors) names.push_back(t.name);
  std::set<std::string> file;
  for (const auto& t : open_weights(sdxl_file(), {}).tensors)
    if (t.name.rfind("model.diffusion_model.", 0) == 0) file.insert(t.name);
  assert_true(originals(names) == file);
  assert_int_equal(file.size(), names.size());

  const json sd1 = manifest("sd1.unet.json"), sd1_single = manifest("sd1.single_file_ldm.json"),
             xl = manifest("sdxl.unet.json");
  names.clear();
  for (const auto& [k, v] : sd1.items()) names.push_back(k);
  file.clear();
  for (const auto& [k, v] : sd1_single.items())
    if (k.rfind("model.diffusion_model.", 0) == 0) file.insert(k);
  assert_true(originals(names) == file);

  names.clear();
  for (const auto& [k, v] : xl.items()) names.push_back(k);
  LdmLayout l;
  size_t mapped = 0;
  for (const auto& [n, o] : ldm_unet_names(names)) {
    auto back = map_ldm_key("model.diffusion_model." + o, l);
    if (back.size() != 1 || back[0].name != n) fail_msg("%s → %s does not map back", n.c_str(), o.c_str());
    ++mapped;
  }
  assert_int_equal(mapped, names.size());
  print_message("full-size SDXL UNet: %zu original names\n", mapped);
}

// Configs inferred from the SDXL file's shapes: the conditioning widths, per-block transformer
// depths and the second encoder's projection; the architecture they build holds what the file does.
static void test_sdxl_inferred_configs(void** state) {
  (void)state;
  const WeightSet set = sdxl_single(false);
  auto unet = json::parse(bioesp::config::infer_config(set, "unet"));
  assert_true(unet["transformer_layers_per_block"] == json({1, 2, 3}));
  assert_int_equal(unet["addition_time_embed_dim"].get<int>(), 16);
  assert_int_equal(unet["projection_class_embeddings_input_dim"].get<int>(), 112);
  assert_int_equal(unet["cross_attention_dim"].get<int>(), 20);
  auto te2 = json::parse(bioesp::config::infer_config(set, "text_encoder_2"));
  assert_string_equal(te2["architectures"][0].get<std::string>().c_str(), "CLIPTextModelWithProjection");
  assert_int_equal(te2["projection_dim"].get<int>(), 16);
  assert_int_equal(te2["num_hidden_layers"].get<int>(), 3);
  const WeightSet expected = bioesp::models::expected_weights(sdxl_file(), {});
  assert_int_equal(expected.tensors.size(), set.tensors.size());
  for (const auto& e : expected.tensors) {
    const Tensor* t = set.find(e.component, e.name);
    if (!t || t->shape != e.shape) fail_msg("the inferred architecture's %s/%s is not in the file", e.component.c_str(), e.name.c_str());
  }
  // Without its second text encoder the UNet's size embeddings cannot be told apart.
  WeightSet unet_only;
  for (const auto& t : set.tensors)
    if (t.component == "unet") unet_only.tensors.push_back(t);
  try {
    bioesp::config::infer_config(unet_only, "unet");
    fail_msg("an SDXL UNet's config was inferred without its text encoder");
  } catch (const bioesp::Error& e) {
    assert_non_null(std::strstr(e.what(), "--config"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sd1_single_file_maps_onto_diffusers),
      cmocka_unit_test(test_open_clip_split),
      cmocka_unit_test(test_sdxl_single_file_equals_folder),
      cmocka_unit_test(test_sgm_keys),
      cmocka_unit_test(test_sdxl_odd_files),
      cmocka_unit_test(test_ldm_unet_names),
      cmocka_unit_test(test_sdxl_inferred_configs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
