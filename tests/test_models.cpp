// The LibTorch networks against diffusers/transformers on the tiny reference model (CPU float32,
// relative L2 ≤ 1e-4), and the full-size architectures against the real manifests.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "config/model_config.h"
#include "core/error.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/clip_text.h"
#include "models/loader.h"
#include "models/unet.h"
#include "models/vae.h"
#include "pipeline/autoencoders.h"
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

static std::string model_dir() { return path_join(ref_dir(), "models/tiny-sd1"); }

static io::WeightSet golden(const char* name) {
  return io::read_safetensors(path_join(path_join(ref_dir(), "golden/tiny-sd1"), name));
}

static torch::Tensor g(const io::WeightSet& set, const std::string& name) {
  const io::Tensor* t = set.find("", name);
  if (!t) fail_msg("golden tensor %s missing", name.c_str());
  return models::to_torch(*t).clone();
}

static void assert_close(const torch::Tensor& out, const torch::Tensor& ref, double tol, const char* what) {
  if (out.sizes() != ref.sizes()) fail_msg("%s: shape differs", what);
  double err = (out.to(torch::kFloat64) - ref.to(torch::kFloat64)).norm().item<double>() /
               ref.to(torch::kFloat64).norm().item<double>();
  print_message("%s: relative L2 error %.3g\n", what, err);
  if (!(err <= tol)) fail_msg("%s: relative L2 error %.3g exceeds %.1g", what, err, tol);
}

template <class Module, class Config>
Module load(const std::string& component, Config (*parse)(const std::string&, const std::string&),
            const std::string& model = model_dir()) {
  std::string dir = model + "/" + component;
  Module m(parse(io::read_text_file(dir + "/config.json"), component + "/config.json"));
  auto set = io::open_weights(dir, {});
  models::load_state(*m, set, "", component);
  m->eval();
  return m;
}

static void test_text_encoder(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto te = load<models::CLIPTextModel>("text_encoder", config::parse_clip_text);
  auto ref = golden("text_encoder.safetensors");
  auto ids = g(ref, "input_ids");
  auto out = te->forward(ids, true);
  assert_close(out.last_hidden_state, g(ref, "last_hidden_state"), 1e-4, "last_hidden_state");
  assert_close(out.pooler_output, g(ref, "pooler_output"), 1e-4, "pooler_output");
  assert_int_equal(out.hidden_states.size(), 3);
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    std::string name = "hidden_states." + std::to_string(i);
    assert_close(out.hidden_states[i], g(ref, name), 1e-4, name.c_str());
  }
  assert_close(te->encode(ids, 1), g(ref, "clip_skip_1"), 1e-4, "clip_skip_1");
}

static void test_unet(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto unet = load<models::UNet2DConditionModel>("unet", config::parse_unet);
  auto ref = golden("unet.safetensors");
  auto out = unet->forward(g(ref, "sample"), g(ref, "timestep"), g(ref, "encoder_hidden_states"));
  assert_close(out, g(ref, "out"), 1e-4, "unet out");
  auto ctx = g(ref, "encoder_hidden_states").slice(0, 0, 1);
  auto out500 = unet->forward(g(ref, "sample_t500"), torch::tensor(500.0), ctx);
  assert_close(out500, g(ref, "out_t500"), 1e-4, "unet out_t500 (scalar timestep)");
}

// Inference runs prepacked oneDNN convolutions and (LibTorch 1.13) tiled attention; with autograd
// on, the plain kernels. Both agree on the tiny UNet and VAE, and the fast path follows weights
// written in place (as loading does) and LoRA adapters added after its first run.
static void test_inference_kernels(void** state) {
  (void)state;
  auto unet = load<models::UNet2DConditionModel>("unet", config::parse_unet);
  auto vae = load<models::AutoencoderKL>("vae", config::parse_vae);
  auto ref = golden("unet.safetensors");
  const auto x = g(ref, "sample"), t = g(ref, "timestep"), ctx = g(ref, "encoder_hidden_states");
  const auto z = torch::randn({1, 4, 16, 16}, torch::TensorOptions().dtype(torch::kFloat32));
  auto compare = [&](const char* what) {
    torch::Tensor fast_u, fast_v;
    {
      torch::NoGradGuard no_grad;
      fast_u = unet->forward(x, t, ctx);
      fast_v = vae->decode(z);
    }
    // An input that asks for gradients takes the plain kernels everywhere.
    auto plain_u = unet->forward(x.clone().requires_grad_(), t, ctx).detach();
    auto plain_v = vae->decode(z.clone().requires_grad_()).detach();
    assert_close(fast_u, plain_u, 1e-5, (std::string(what) + ": unet").c_str());
    assert_close(fast_v, plain_v, 1e-5, (std::string(what) + ": vae decode").c_str());
    return fast_u;
  };
  auto before = compare("loaded weights");
  {
    torch::NoGradGuard no_grad;
    for (auto& p : unet->named_parameters())
      if (p.key().find("conv") != std::string::npos) p.value().mul_(0.75);
  }
  auto after = compare("weights written in place");
  if ((after - before).abs().max().item<double>() < 1e-4) fail_msg("the fast path kept the old weights");
  int adapted = 0;
  for (const auto& m : unet->modules())
    if (auto* c = dynamic_cast<models::Conv2dImpl*>(m.get())) {
      const auto w = c->weight.sizes();
      models::Adapter a;
      a.name = "test";
      a.down = torch::randn({4, w[1], w[2], w[3]}) * 0.05;
      a.up = torch::randn({w[0], 4, 1, 1}) * 0.05;
      c->adapters.push_back(a);
      ++adapted;
    }
  assert_true(adapted > 0);
  auto adapted_out = compare("LoRA adapters on every convolution");
  if ((adapted_out - after).abs().max().item<double>() < 1e-4) fail_msg("the fast path left the adapters out");
}

static std::string fast_dir() { return path_join(ref_dir(), "golden/fast"); }

static void test_unet_lcm(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  const std::string dir = fast_dir() + "/unet_lcm";
  models::UNet2DConditionModel unet(config::parse_unet(io::read_text_file(dir + "/config.json"), "unet_lcm/config.json"));
  assert_int_equal(unet->config().time_cond_proj_dim, 32);
  models::load_state(*unet, io::open_weights(dir, {}), "", "unet_lcm");
  unet->eval();
  auto ref = io::read_safetensors(dir + "/outputs.safetensors");
  // LatentConsistencyModelPipeline's guidance embedding, odd sizes zero padded.
  auto w = g(ref, "w");
  assert_close(models::guidance_embedding(w, 32), g(ref, "w_embedding"), 1e-6, "guidance embedding w=7, 32");
  for (const char* gs : {"1.0", "4.5", "8.0"}) {
    auto one = torch::full({1}, std::stof(gs) - 1.0f);
    std::string name = std::string("guidance_embedding.gs") + gs + ".dim256";
    if (std::string(gs) == "1.0") assert_true(torch::equal(models::guidance_embedding(one, 256), g(ref, name)));  // w = 0
    else assert_close(models::guidance_embedding(one, 256), g(ref, name), 1e-6, name.c_str());
  }
  assert_close(models::guidance_embedding(torch::full({1}, 7.0f), 31), g(ref, "guidance_embedding.gs8.0.dim31"), 1e-6,
               "guidance embedding, odd size");
  models::UNetExtra extra;
  extra.timestep_cond = g(ref, "w_embedding");
  auto out = unet->forward(g(ref, "sample"), g(ref, "timestep"), g(ref, "encoder_hidden_states"), extra);
  assert_close(out, g(ref, "out"), 1e-4, "LCM UNet with timestep_cond");
  auto plain = unet->forward(g(ref, "sample"), g(ref, "timestep"), g(ref, "encoder_hidden_states"));
  assert_close(plain, g(ref, "out_no_timestep_cond"), 1e-4, "LCM UNet without timestep_cond");
  assert_true(((out - plain).norm() / plain.norm()).item<double>() > 1e-3);  // the embedding matters
}

// TAESD in diffusers' layout and taesd.py's, against diffusers' AutoencoderTiny and taesd.py.
static void test_taesd(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  const std::string dir = fast_dir() + "/taesd";
  auto ref = io::read_safetensors(dir + "/outputs.safetensors");
  auto diffusers = pipeline::load_autoencoder(dir + "/diffusers", torch::kCPU, torch::kFloat32).tiny;
  auto original = pipeline::load_autoencoder(dir + "/taesd_decoder.safetensors", torch::kCPU, torch::kFloat32).tiny;
  auto folder = pipeline::load_autoencoder(dir, torch::kCPU, torch::kFloat32).tiny;  // finds taesd_decoder + encoder
  assert_true(diffusers && original && folder);
  assert_int_equal(diffusers->config().latent_factor(), 8);
  for (auto* m : {&diffusers, &original, &folder}) {
    assert_true((*m)->can_encode());
    assert_close((*m)->decode(g(ref, "latents_16")), g(ref, "decode_16"), 1e-4, "TAESD decode 16");
    assert_close((*m)->decode(g(ref, "latents_64")), g(ref, "decode_64"), 1e-4, "TAESD decode 64");
    assert_close((*m)->encode(g(ref, "image_128")), g(ref, "encode_128"), 1e-4, "TAESD encode 128");
  }
  // taesd.py's own outputs: its decoder in [0, 1], its encoder fed (image + 1) / 2.
  for (const std::string size : {"16", "64"})
    assert_close(original->decode(g(ref, "latents_" + size)), g(ref, "taesd_py.decode_" + size) * 2 - 1, 1e-4,
                 ("taesd.py decode " + size).c_str());
  assert_close(original->encode(g(ref, "image_128")), g(ref, "taesd_py.encode_128"), 1e-4, "taesd.py encode 128");
  // A decoder file alone decodes and refuses to encode.
  auto tmp = std::string(temp_dir()) + "/lone";
  io::make_directories(tmp);
  io::copy_file(dir + "/taesd_decoder.safetensors", tmp + "/taesd_decoder.safetensors");
  auto lone = pipeline::load_autoencoder(tmp, torch::kCPU, torch::kFloat32).tiny;
  assert_false(lone->can_encode());
  try {
    lone->encode(g(ref, "image_128"));
    fail_msg("a decoder alone encoded");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_UNSUPPORTED);
  }
  // The encoder file is not a decoder; a renamed weight is named.
  try {
    pipeline::load_autoencoder(dir + "/taesd_encoder.safetensors", torch::kCPU, torch::kFloat32);
    fail_msg("an encoder was taken for a decoder");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "not a TAESD decoder"));
  }
  auto set = io::read_safetensors(dir + "/taesd_decoder.safetensors");
  for (auto& t : set.tensors)
    if (t.name == "3.conv.2.weight") t.name = "3.conv.2.kernel";
  io::write_safetensors(tmp + "/taesd_decoder.safetensors", set.tensors, {});
  try {
    pipeline::load_autoencoder(tmp, torch::kCPU, torch::kFloat32);
    fail_msg("a TAESD with a wrong key loaded");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "decoder.layers.2.conv.2.kernel"));
    assert_non_null(strstr(e.what(), "decoder.layers.2.conv.2.weight"));
  }
}

// Step caching: a full pass keeps the feature a shallow pass takes; on the same inputs the shallow
// pass then gives the full output exactly, for every branch (a misaligned skip would not), and on
// other inputs something else.
static void test_step_cache(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto unet = load<models::UNet2DConditionModel>("unet", config::parse_unet);
  auto ref = golden("unet.safetensors");
  auto x = g(ref, "sample"), t = g(ref, "timestep"), ctx = g(ref, "encoder_hidden_states");
  auto full = unet->forward(x, t, ctx);
  assert_int_equal(unet->skip_count(), 9);
  for (int64_t branch = 0; branch < unet->skip_count(); ++branch) {
    models::StepCache cache;
    cache.branch = branch;
    assert_true(torch::equal(unet->forward(x, t, ctx, {}, &cache), full));  // full pass, feature kept
    assert_true(cache.feature.defined());
    cache.reuse = true;
    if (!torch::equal(unet->forward(x, t, ctx, {}, &cache), full)) fail_msg("branch %lld: the shallow pass differs", (long long)branch);
    auto other = unet->forward(x, t * 0.5, ctx, {}, &cache);
    auto other_full = unet->forward(x, t * 0.5, ctx);
    assert_false(torch::equal(other, other_full));
  }
  models::StepCache bad;
  bad.branch = 9;
  try {
    unet->forward(x, t, ctx, {}, &bad);
    fail_msg("branch 9 of a 9-skip UNet was accepted");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "between 0 and 8"));
  }
}

static void test_vae(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto vae = load<models::AutoencoderKL>("vae", config::parse_vae);
  auto ref = golden("vae.safetensors");
  auto z = g(ref, "latents") / vae->config().scaling_factor;
  auto decoded = vae->decode(z);
  assert_close(decoded, g(ref, "decoded"), 1e-4, "vae decoded");
  auto post = vae->encode(g(ref, "image"));
  assert_close(post.mean, g(ref, "posterior_mean"), 1e-4, "posterior mean");
  assert_close(post.std, g(ref, "posterior_std"), 1e-4, "posterior std");
  // Latents that fit one tile decode exactly as a whole.
  assert_true(torch::equal(vae->decode_tiled(z), decoded));
  // Tiles with whole-map GroupNorm statistics give the untiled image: 64-pixel tiles (2×2 over
  // the 128-pixel image) and 40-pixel ones (ragged: 5, 5, 5 and 1 latents a side).
  for (int64_t px : {64, 40}) {
    models::TileOptions tiles;
    tiles.tile_sample_size = px;
    auto tiled = vae->decode_tiled(z, tiles);
    assert_int_equal(tiled.size(2), 128);
    assert_int_equal(tiled.size(3), 128);
    assert_close(tiled, decoded, 1e-5, "tiled decode");
    assert_true((tiled - decoded).abs().max().item<double>() < 1e-4);  // no seam anywhere
    auto post_tiled = vae->encode_tiled(g(ref, "image"), tiles);
    assert_close(post_tiled.mean, post.mean, 1e-5, "tiled posterior mean");
    assert_close(post_tiled.std, post.std, 1e-5, "tiled posterior std");
  }
  // diffusers' tiling (per-tile statistics, cross-faded) is far from the untiled image: what
  // whole-map statistics buy, and proof that the checks above can fail.
  auto tile_stats = torch::cat({vae->decode(z.slice(3, 0, 8)), vae->decode(z.slice(3, 8, 16))}, 3);
  assert_true(((tile_stats - decoded).norm() / decoded.norm()).item<double>() > 1e-2);
}

static std::string xl_dir() { return path_join(ref_dir(), "models/tiny-sdxl"); }

static io::WeightSet golden_xl(const char* name) {
  return io::read_safetensors(path_join(path_join(ref_dir(), "golden/tiny-sdxl"), name));
}

// Every hidden state, the pooled output and SDXL's penultimate reading (not through the final
// layer norm) of one tiny-sdxl text encoder, against transformers'.
static void check_encoder(models::CLIPTextModel& te, const io::WeightSet& ref, const std::string& name, size_t layers) {
  auto out = te->forward(g(ref, (name == "text_encoder" ? "tokenizer" : "tokenizer_2") + std::string(".input_ids")), true);
  assert_close(out.last_hidden_state, g(ref, name + ".last_hidden_state"), 1e-4, (name + " last_hidden_state").c_str());
  assert_int_equal(out.hidden_states.size(), layers + 1);
  for (size_t i = 0; i <= layers; ++i) {
    std::string key = name + ".hidden_states." + std::to_string(i);
    assert_close(out.hidden_states[i], g(ref, key), 1e-4, key.c_str());
  }
  assert_close(te->skipped_hidden_state(out, 0), g(ref, name + ".penultimate"), 1e-4, (name + " penultimate").c_str());
  if (name == "text_encoder")
    assert_close(out.pooler_output, g(ref, name + ".pooler_output"), 1e-4, "text_encoder pooler_output");
  else
    assert_close(out.text_embeds, g(ref, name + ".text_embeds"), 1e-4, "text_encoder_2 text_embeds (projected)");
  try {
    te->skipped_hidden_state(out, static_cast<int>(layers));
    fail_msg("%s: clip_skip %zu left no layer and was accepted", name.c_str(), layers);
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "before the penultimate"));
  }
}

// SDXL's CLIPTextModel and CLIPTextModelWithProjection (text_projection, no bias; pooled at the
// highest id with eos_token_id 2, whichever the padding).
static void test_sdxl_text_encoders(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto ref = golden_xl("text_encoders.safetensors");
  auto te = load<models::CLIPTextModel>("text_encoder", config::parse_clip_text, xl_dir());
  assert_false(te->config().with_projection);
  check_encoder(te, ref, "text_encoder", 2);
  auto te2 = load<models::CLIPTextModel>("text_encoder_2", config::parse_clip_text, xl_dir());
  assert_true(te2->config().with_projection);
  assert_int_equal(te2->text_projection->weight.size(0), 16);
  check_encoder(te2, ref, "text_encoder_2", 3);
}

// The UNet with SDXL's added conditions: text_embeds and the 6 time ids' sinusoidal embedding
// through add_embedding, added to the time embedding.
static void test_sdxl_unet(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto unet = load<models::UNet2DConditionModel>("unet", config::parse_unet, xl_dir());
  assert_string_equal(unet->config().addition_embed_type.c_str(), "text_time");
  auto ref = golden_xl("unet.safetensors");
  models::UNetExtra extra;
  extra.text_embeds = g(ref, "text_embeds");
  extra.time_ids = g(ref, "time_ids");
  auto sample = g(ref, "sample"), ctx = g(ref, "encoder_hidden_states");
  auto out = unet->forward(sample, g(ref, "timestep"), ctx, extra);
  assert_close(out, g(ref, "out"), 1e-4, "sdxl unet out");
  models::UNetExtra first;
  first.text_embeds = extra.text_embeds.slice(0, 0, 1);
  first.time_ids = extra.time_ids.slice(0, 0, 1);
  auto out500 = unet->forward(g(ref, "sample_t500"), torch::tensor(500), ctx.slice(0, 0, 1), first);
  assert_close(out500, g(ref, "out_t500"), 1e-4, "sdxl unet out_t500 (scalar timestep)");
  // The size ids matter: the second item's ids on the first change its output.
  first.time_ids = extra.time_ids.slice(0, 1, 2);
  auto moved = unet->forward(g(ref, "sample_t500"), torch::tensor(500), ctx.slice(0, 0, 1), first);
  assert_true(((moved - out500).norm() / out500.norm()).item<double>() > 1e-3);
  try {
    unet->forward(sample, g(ref, "timestep"), ctx);
    fail_msg("an SDXL UNet ran without its added conditions");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "needs text_embeds and time_ids"));
  }
}

// SDXL's VAE: scaling_factor 0.13025 and force_upcast from its config.
static void test_sdxl_vae(void** state) {
  (void)state;
  torch::NoGradGuard no_grad;
  auto vae = load<models::AutoencoderKL>("vae", config::parse_vae, xl_dir());
  assert_float_equal(vae->config().scaling_factor, 0.13025, 1e-12);
  assert_true(vae->config().force_upcast);
  auto ref = golden_xl("vae.safetensors");
  assert_close(vae->decode(g(ref, "latents") / vae->config().scaling_factor), g(ref, "decoded"), 1e-4, "sdxl vae decoded");
  auto post = vae->encode(g(ref, "image"));
  assert_close(post.mean, g(ref, "posterior_mean"), 1e-4, "sdxl posterior mean");
  assert_close(post.std, g(ref, "posterior_std"), 1e-4, "sdxl posterior std");
}

static json manifest(const std::string& name) {
  return json::parse(io::read_text_file(path_join(path_join(ref_dir(), "manifests"), (name + ".json").c_str())));
}

// A model built from `config` has exactly the manifest's names and shapes.
static void check_manifest(torch::nn::Module& m, const std::string& name) {
  json want = manifest(name);
  std::set<std::string> seen;
  for (const auto& [key, shape] : models::expected_tensors(m)) {
    auto it = want.find(key);
    if (it == want.end()) fail_msg("%s: bioesp builds %s, which the manifest lacks", name.c_str(), key.c_str());
    if ((*it)[0].get<std::vector<int64_t>>() != shape) fail_msg("%s: %s has another shape", name.c_str(), key.c_str());
    seen.insert(key);
  }
  for (const auto& [key, v] : want.items())
    if (!seen.count(key) && key.find("position_ids") == std::string::npos)
      fail_msg("%s: the manifest has %s, which bioesp does not build", name.c_str(), key.c_str());
  print_message("%s: %zu tensors match\n", name.c_str(), seen.size());
}

static json configs() { return manifest("configs"); }

static void test_full_size_manifests(void** state) {
  (void)state;
  // Parameters are allocated lazily (never touched): building costs no resident memory.
  json c = configs();
  auto unet_json = [&](const char* key) { return c[key].dump(); };
  struct { const char* config; const char* manifest; } unets[] = {
      {"sd1.unet", "sd1.unet"}, {"sd2.unet", "sd2.unet"}, {"sdxl.unet", "sdxl.unet"}};
  for (const auto& u : unets) {
    models::UNet2DConditionModel m(config::parse_unet(unet_json(u.config), u.config));
    check_manifest(*m, u.manifest);
  }
  models::AutoencoderKL vae(config::parse_vae(c["vae"].dump(), "vae"));
  check_manifest(*vae, "sd1.vae");
  struct { const char* config; const char* manifest; bool projection; } encoders[] = {
      {"clip_l", "sd1.text_encoder", false}, {"clip_h", "sd2.text_encoder", false},
      {"clip_l", "sdxl.text_encoder", false}, {"clip_g", "sdxl.text_encoder_2", true}};
  for (const auto& e : encoders) {
    json j = c[e.config];
    if (e.projection) j["architectures"] = {"CLIPTextModelWithProjection"};
    models::CLIPTextModel m(config::parse_clip_text(j.dump(), e.config));
    check_manifest(*m, e.manifest);
  }
}

static void test_workshop_lora_fits_sd1(void** state) {
  (void)state;
  models::UNet2DConditionModel unet(config::parse_unet(configs()["sd1.unet"].dump(), "sd1.unet"));
  std::map<std::string, std::vector<int64_t>> linears;
  for (const auto& p : unet->named_parameters()) linears[p.key()] = p.value().sizes().vec();
  auto lora = io::open_weights(path_join(ref_dir(), "workshop/model_lora.ckpt"), {});
  const std::string prefix = "model.diffusion_model.unet.";
  size_t checked = 0;
  for (const auto& t : lora.tensors) {
    assert_true(t.name.rfind(prefix, 0) == 0);
    bool down = t.name.find(".lora.down.weight") != std::string::npos;
    std::string module = t.name.substr(prefix.size(), t.name.find(down ? ".lora.down.weight" : ".lora.up.weight") - prefix.size());
    auto it = linears.find(module + ".weight");
    if (it == linears.end() || it->second.size() != 2) fail_msg("%s is not a Linear of the SD 1.x UNet", module.c_str());
    // down: [rank, in]; up: [out, rank]
    if (down) assert_int_equal(t.shape[1], it->second[1]);
    else assert_int_equal(t.shape[0], it->second[0]);
    ++checked;
  }
  assert_int_equal(checked, 256);
}

static void test_mismatch_report(void** state) {
  (void)state;
  // The tiny UNet's weights into a UNet with one block more: every problem named at once.
  json c = json::parse(io::read_text_file(model_dir() + "/unet/config.json"));
  c["block_out_channels"] = {32, 64, 128};
  models::UNet2DConditionModel unet(config::parse_unet(c.dump(), "unet/config.json"));
  auto set = io::open_weights(model_dir() + "/unet", {});
  try {
    models::load_state(*unet, set, "", "unet");
    fail_msg("mismatched weights were accepted");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_MISMATCH);
    assert_non_null(strstr(e.what(), "with other shapes"));
    assert_non_null(strstr(e.what(), "down_blocks.2.resnets.0.conv1.weight: [64, 64, 3, 3] vs [128, 64, 3, 3]"));
  }
  // Unknown block types and unsupported values name the key.
  c = json::parse(io::read_text_file(model_dir() + "/unet/config.json"));
  c["down_block_types"][0] = "SimpleCrossAttnDownBlock2D";
  try {
    config::parse_unet(c.dump(), "unet/config.json");
    fail_msg("an unknown block type was accepted");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_UNSUPPORTED);
    assert_non_null(strstr(e.what(), "SimpleCrossAttnDownBlock2D"));
  }
  c = json::parse(io::read_text_file(model_dir() + "/unet/config.json"));
  c["class_embed_type"] = "timestep";
  try {
    config::parse_unet(c.dump(), "unet/config.json");
    fail_msg("class_embed_type was accepted");
  } catch (const Error& e) {
    assert_non_null(strstr(e.what(), "class_embed_type"));
  }
}

int main(void) {
  torch::set_num_threads(2);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_encoder),        cmocka_unit_test(test_unet),
      cmocka_unit_test(test_inference_kernels),
      cmocka_unit_test(test_unet_lcm),            cmocka_unit_test(test_taesd),
      cmocka_unit_test(test_step_cache),
      cmocka_unit_test(test_vae),                 cmocka_unit_test(test_full_size_manifests),
      cmocka_unit_test(test_workshop_lora_fits_sd1), cmocka_unit_test(test_mismatch_report),
      cmocka_unit_test(test_sdxl_text_encoders),  cmocka_unit_test(test_sdxl_unet),
      cmocka_unit_test(test_sdxl_vae),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
