// Training: three DreamBooth-LoRA steps against diffusers' recorded run (losses, gradient norms,
// final weights), the saved file's keys, learning-rate schedules, the Lanczos resampler, a full
// run with resume giving bit-identical weights, and bad input.
#include <torch/torch.h>

#include <unistd.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "image/image_io.h"
#include "image/resize.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "pipeline/pipeline.h"
#include "train/batches.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/lr_schedule.h"
#include "train/scratch.h"
#include "train/run.h"
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

static void expect_error(const train::RunOptions& o, bioesp_status status, const char* fragment);

static std::string model_dir() { return path_join(ref_dir(), "models/tiny-sd1"); }

static double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-12); }

static void test_parity_with_diffusers(void** state) {
  (void)state;
  auto sd = pipeline::StableDiffusion::load(model_dir(), {});
  auto golden = io::read_safetensors(path_join(ref_dir(), "golden/tiny-sd1/lora_train.safetensors"));
  auto info = json::parse(io::read_text_file(path_join(ref_dir(), "golden/tiny-sd1/lora_train.json")));
  auto g = [&](const std::string& n) {
    const io::Tensor* t = golden.find("", n);
    if (!t) fail_msg("golden lacks %s", n.c_str());
    return models::to_torch(*t).clone();
  };
  train::Setup setup;  // rank 4, alpha 4, to_k/to_q/to_v/to_out.0, AdamW lr 1e-4 wd 1e-2, clip 1.0
  train::Trainer tr(*sd, setup);
  size_t init = 0;
  for (const auto& t : golden.tensors) init += t.name.rfind("lora.init.", 0) == 0;
  assert_int_equal(tr.parameters().size(), init);
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, p] : tr.parameters()) const_cast<torch::Tensor&>(p).copy_(g("lora.init." + name));
  }
  for (int step = 0; step < 3; ++step) {
    const std::string s = "train.step" + std::to_string(step) + ".";
    train::StepInputs in;
    in.pixel_values = g(s + "pixel_values");
    in.vae_eps = g(s + "vae_eps");
    in.noise = g(s + "noise");
    in.timesteps = g(s + "timesteps");
    in.encoder_hidden_states = g("train.encoder_hidden_states");
    double loss = tr.backward(in, 1);
    double norm = tr.update(1e-4);
    double want_loss = info["losses"][step], want_norm = info["grad_norms_before_clip"][step];
    print_message("step %d: loss %.7f (diffusers %.7f, rel %.2g), grad norm %.7f (%.7f, rel %.2g)\n", step, loss,
                  want_loss, rel(loss, want_loss), norm, want_norm, rel(norm, want_norm));
    assert_true(rel(loss, want_loss) <= 1e-4);
    assert_true(rel(norm, want_norm) <= 1e-4);
  }
  double worst = 0;
  for (const auto& [name, p] : tr.parameters()) {
    auto want = g("lora.final." + name);
    worst = std::max(worst, ((p.detach() - want).norm() / want.norm()).item<double>());
  }
  print_message("final LoRA weights: worst relative L2 error %.2g\n", worst);
  assert_true(worst <= 1e-4);

  // The saved file has exactly diffusers' keys and shapes, and loads back as an adapter.
  std::string out = path_join(temp_dir(), "lora.safetensors");
  tr.save_lora(out, {{"format", "pt"}}, false);
  auto mine = io::read_safetensors(out);
  auto ref = io::read_safetensors(path_join(ref_dir(), "golden/tiny-sd1/lora/pytorch_lora_weights.safetensors"));
  assert_int_equal(mine.tensors.size(), ref.tensors.size());
  for (size_t i = 0; i < ref.tensors.size(); ++i) {
    assert_string_equal(mine.tensors[i].name.c_str(), ref.tensors[i].name.c_str());
    assert_true(mine.tensors[i].shape == ref.tensors[i].shape);
  }
  std::string kohya = path_join(temp_dir(), "kohya.safetensors");
  tr.save_lora(kohya, {}, true);
  assert_true(io::read_safetensors(kohya).find("", "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k.alpha"));
}

static void test_lr_schedules(void** state) {
  (void)state;
  train::LrSchedule s;
  s.warmup = 10;
  s.total = 110;
  auto lr = [&](const char* name, int step) {
    s.name = name;
    return train::learning_rate(s, 1.0, step);
  };
  assert_true(lr("constant", 0) == 1.0);
  assert_true(lr("constant_with_warmup", 0) == 0.0);
  assert_true(std::fabs(lr("constant_with_warmup", 5) - 0.5) < 1e-12);
  assert_true(std::fabs(lr("linear", 60) - 0.5) < 1e-12);
  assert_true(std::fabs(lr("cosine", 60) - 0.5) < 1e-12);
  assert_true(std::fabs(lr("cosine", 110)) < 1e-12);
  s.cycles = 2;
  assert_true(std::fabs(lr("cosine_with_restarts", 35) - 0.5) < 1e-12);   // a quarter in: half of the first cycle
  assert_true(std::fabs(lr("cosine_with_restarts", 61) - 1.0) < 1e-3);    // restarted
  s.power = 2.0;
  assert_true(std::fabs(lr("polynomial", 60) - ((1 - 1e-7) * 0.25 + 1e-7)) < 1e-12);
  s.name = "exponential";
  try {
    train::validate(s);
    fail_msg("an unknown scheduler was accepted");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_INVALID_ARGUMENT);
  }
}

static image::Image pattern(uint32_t w, uint32_t h, int seed) {
  image::Image img;
  img.width = w, img.height = h, img.channels = 3;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>((x * (3 + seed) + y * (5 + c) + seed * 40) % 256);
  return img;
}

static void test_resize(void** state) {
  (void)state;
  image::Image flat;
  flat.width = 37, flat.height = 23, flat.channels = 3;
  flat.pixels.assign(37 * 23 * 3, 200);
  auto r = image::resize(flat, 16, 16, image::center_square(flat));
  for (auto v : r.pixels) assert_int_equal(v, 200);
  // A one-pixel checkerboard shrunk 8× averages out (antialiased), instead of aliasing.
  image::Image board;
  board.width = board.height = 64, board.channels = 3;
  for (uint32_t y = 0; y < 64; ++y)
    for (uint32_t x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) board.pixels.push_back((x + y) % 2 ? 255 : 0);
  auto small = image::resize(board, 8, 8);
  for (auto v : small.pixels) assert_true(std::abs(static_cast<int>(v) - 128) <= 2);
  auto s = image::resize_short_side(pattern(300, 200, 1), 64);
  assert_int_equal(s.height, 64);
  assert_int_equal(s.width, 96);
}

static std::string make_dataset(int n) {
  std::string dir = path_join(temp_dir(), ("data" + std::to_string(n)).c_str());
  io::make_directories(dir);
  for (int i = 0; i < n; ++i) image::write_png(dir + "/img" + std::to_string(i) + ".png", pattern(80 + 8 * i, 64 + 4 * i, i));
  return dir;
}

static train::RunOptions run_options(const std::string& data, const std::string& out) {
  train::RunOptions o;
  o.model = model_dir();
  o.data = data;
  o.prompt = "criatura especulativa colombiana";
  o.resolution = 64;
  o.steps = 6;
  o.batch = 2;
  o.grad_accum = 2;
  o.lr = 1e-3;
  o.random_crop = true;
  o.flip = true;
  o.lr_schedule.name = "cosine";
  o.lr_schedule.warmup = 2;
  o.setup.dropout = 0.1;
  o.setup.seed = 7;
  o.out = out;
  return o;
}

static torch::Tensor all_weights(const std::string& path) {
  auto set = io::read_safetensors(path);
  std::vector<torch::Tensor> v;
  for (const auto& t : set.tensors) v.push_back(models::to_torch(t).flatten());
  return torch::cat(v);
}

static void test_resume_is_bit_identical(void** state) {
  (void)state;
  std::string data = make_dataset(3);
  std::string straight = path_join(temp_dir(), "straight"), resumed = path_join(temp_dir(), "resumed");
  auto o = run_options(data, straight);
  std::vector<double> losses;
  o.progress = [&](const train::Progress& p) {
    if (p.stage == "train") losses.push_back(p.loss);
    return true;
  };
  std::string a = train::run(o);
  assert_int_equal(losses.size(), 6);
  for (double l : losses) assert_true(std::isfinite(l) && l > 0);

  auto r = run_options(data, resumed);
  r.checkpoint_every = 2;
  r.progress = [](const train::Progress& p) { return !(p.stage == "train" && p.step == 3); };  // cancel after step 3
  try {
    train::run(r);
    fail_msg("cancel did not stop training");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_CANCELLED);
  }
  assert_true(io::is_file(resumed + "/checkpoints/checkpoint-000002.safetensors"));
  assert_true(io::is_file(resumed + "/checkpoints/checkpoint-000003.safetensors"));  // written by the cancel
  r.progress = nullptr;
  r.resume = true;
  std::string b = train::run(r);
  auto wa = all_weights(a), wb = all_weights(b);
  assert_true(torch::equal(wa, wb));
  assert_true(wa.abs().sum().item<double>() > 0);
  // The history survives the resume: one line per step.
  std::string log = io::read_text_file(resumed + "/train_log.jsonl");
  assert_int_equal(std::count(log.begin(), log.end(), '\n'), 6);
  // The trained LoRA loads back into the pipeline as any LoRA file does.
  auto sd = pipeline::StableDiffusion::load(model_dir(), {});
  sd->add_lora(b, 1.0, "trained");
}

// Crafted checkpoints: each corrupt field of the newest makes --resume fall back to the one
// before it (said in the log, the bad file renamed .corrupt) and the run still ends with the
// straight run's weights; one from a run of two processes continues and says that its data order
// and random draws restart; with every checkpoint corrupt the run stops and names the problem.
static void test_corrupt_checkpoints(void** state) {
  (void)state;
  auto o = run_options(make_dataset(3), path_join(temp_dir(), "whole"));
  o.steps = 4;
  o.grad_accum = 1;
  o.checkpoint_every = 1;
  o.checkpoints_kept = 0;
  const auto want = all_weights(train::run(o));
  const std::string names[] = {"checkpoint-000001.safetensors", "checkpoint-000002.safetensors",
                               "checkpoint-000003.safetensors"};
  auto pristine = io::read_safetensors(o.out + "/checkpoints/" + names[2]);
  using Meta = std::vector<std::pair<std::string, std::string>>;
  using Edit = std::function<void(Meta&, std::map<std::string, torch::Tensor>&)>;
  auto set_meta = [](const char* key, const char* value) {
    return Edit([=](Meta& m, std::map<std::string, torch::Tensor>&) {
      for (auto& [k, v] : m)
        if (k == key) v = value;
    });
  };
  auto set_tensor = [](const char* name, std::function<torch::Tensor(torch::Tensor)> f) {
    return Edit([=](Meta&, std::map<std::string, torch::Tensor>& t) { t[name] = f(t[name]); });
  };
  const std::string lora = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.lora.down.weight";
  const std::string param = "param/" + lora, moment = "exp_avg_sq/" + lora;
  const struct {
    Edit edit;
    const char* message;
  } crafted[] = {
      {set_meta("step", "-4"), "'step' is '-4'"},
      {set_meta("step", "3 steps"), "'step' is '3 steps'"},
      {set_meta("step", "5"), "holds step 5 under the name of step 3"},
      {set_meta("data.position", "99"), "'data.position' is '99'"},
      {set_meta("data.position", "-1"), "'data.position' is '-1'"},
      {set_meta("data.epoch", "-1"), "'data.epoch' is '-1'"},
      {set_meta("data.size", "0"), "'data.size' is '0'"},
      {set_meta("optimizer_steps", "9"), "'optimizer_steps' is '9'"},
      {set_meta("scaler.scale", "nan"), "'scaler.scale' is 'nan'"},
      {set_meta("world_size", "0"), "'world_size' is '0'"},
      {set_meta("world_size", "2"), "lacks the random generator state of rank 1"},
      {set_meta("bioesp.checkpoint", "7"), "not a bioesp checkpoint of format 1 or 2"},
      {set_tensor(param.c_str(), [](torch::Tensor t) { t[0][0] = NAN; return t; }), "not finite"},
      {set_tensor(moment.c_str(), [](torch::Tensor t) { t[0][0] = -1; return t; }), "negative values"},
      {set_tensor("rng/0", [](torch::Tensor t) { return t.slice(0, 0, 10).clone(); }), "not a CPU random generator state"},
      {Edit([](Meta&, std::map<std::string, torch::Tensor>& t) { t.erase("rng/0"); }), "lacks the random generator state of rank 0"},
  };
  auto r = o;
  r.resume = true;
  std::vector<std::string> warnings;
  r.log = [&](bioesp_log_level level, const std::string& m) {
    if (level == BIOESP_LOG_WARNING) warnings.push_back(m);
  };
  int n = 0;
  auto fresh = [&] {
    r.out = path_join(temp_dir(), ("crafted" + std::to_string(n++)).c_str());
    io::make_directories(r.out + "/checkpoints");
    for (const auto& name : names) io::copy_file(o.out + "/checkpoints/" + name, r.out + "/checkpoints/" + name);
    return r.out + "/checkpoints/" + names[2];
  };
  auto expect_fallback = [&](const char* message) {
    warnings.clear();
    assert_true(torch::equal(all_weights(train::run(r)), want));
    bool said = false;
    for (const auto& w : warnings) said = said || (w.find(message) != std::string::npos && w.find("trying the checkpoint before it") != std::string::npos);
    if (!said) fail_msg("no warning containing '%s'", message);
    assert_true(io::is_file(r.out + "/checkpoints/" + names[2] + ".corrupt"));
  };
  for (const auto& c : crafted) {
    const std::string path = fresh();
    Meta meta = pristine.metadata;
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& t : pristine.tensors) tensors[t.name] = models::to_torch(t).clone();
    c.edit(meta, tensors);
    std::vector<io::Tensor> out;
    for (const auto& [name, t] : tensors) out.push_back(models::from_torch(name, t));
    io::write_safetensors(path, out, meta);
    print_message("crafted: %s\n", c.message);
    expect_fallback(c.message);
  }
  // From a run of two processes: the weights and optimizer state continue, the rest restarts.
  {
    const std::string path = fresh();
    Meta meta = pristine.metadata;
    for (auto& [k, v] : meta) {
      if (k == "world_size") v = "2";
      if (k == "data.position") v = "1";  // within a rank's share of two
    }
    std::vector<io::Tensor> out = pristine.tensors;
    io::Tensor second = *pristine.find("", "rng/0");
    second.name = "rng/1";
    out.push_back(second);
    io::write_safetensors(path, out, meta);
    std::vector<std::string> infos;
    r.log = [&](bioesp_log_level, const std::string& m) { infos.push_back(m); };
    train::run(r);
    bool said = false;
    for (const auto& m : infos) said = said || m.find("comes from a run of 2 processes, this one has 1") != std::string::npos;
    assert_true(said);
    r.log = [&](bioesp_log_level level, const std::string& m) {
      if (level == BIOESP_LOG_WARNING) warnings.push_back(m);
    };
  }
  // A file cut short, as a full disk or a crash of the machine may leave it.
  const std::string cut = fresh();
  std::string bytes = io::read_text_file(cut);
  write_file(cut.c_str(), bytes.data(), bytes.size() / 2);
  expect_fallback("safetensors");
  // Every checkpoint unusable: nothing to resume from, said with the newest's reason.
  fresh();
  for (const auto& name : names) write_file((r.out + "/checkpoints/" + name).c_str(), "junk", 4);
  expect_error(r, BIOESP_ERR_FORMAT, "no usable checkpoint");
}

// Gradient checkpointing changes memory, not results: the same weights after three steps with
// LoRA dropout (whose masks the recomputation must draw again identically).
static void test_gradient_checkpointing(void** state) {
  (void)state;
  std::string data = make_dataset(2);
  auto a = run_options(data, path_join(temp_dir(), "plain"));
  a.steps = 3;
  auto b = a;
  b.out = path_join(temp_dir(), "checkpointed");
  b.setup.gradient_checkpointing = true;
  auto wa = all_weights(train::run(a)), wb = all_weights(train::run(b));
  double err = ((wa - wb).abs().max()).item<double>();
  print_message("checkpointed vs plain: max |Δ| %.3g\n", err);
  assert_true(err <= 1e-6);
}

// Cached latents keep flips: each picture is cached as it is and mirrored, and the same draws
// pick the same orientations, so three steps end where encoding every step ends.
static void test_cached_latents_flip(void** state) {
  (void)state;
  std::string data = make_dataset(3);
  auto a = run_options(data, path_join(temp_dir(), "encoded"));
  a.steps = 3;
  a.random_crop = false;
  a.setup.dropout = 0;
  auto b = a;
  b.out = path_join(temp_dir(), "cached");
  b.cache_latents = true;
  auto wa = all_weights(train::run(a)), wb = all_weights(train::run(b));
  double rel = ((wa - wb).norm() / wa.norm()).item<double>();
  print_message("cached vs encoded with flips: relative L2 %.3g\n", rel);
  assert_true(rel <= 1e-6);
}

// Prior preservation with class images generated by the base model, min-SNR weighting, noise
// offset and cached latents together: they run, and the class images are made once.
static void test_prior_preservation(void** state) {
  (void)state;
  auto o = run_options(make_dataset(2), path_join(temp_dir(), "prior"));
  o.class_data = path_join(temp_dir(), "class");
  o.class_prompt = "un animal";
  o.num_class_images = 2;
  o.validation_steps = 2;
  o.steps = 2;
  o.setup.snr_gamma = 5;
  o.setup.noise_offset = 0.05;
  o.cache_latents = true;
  o.random_crop = o.flip = false;
  int generated = 0;
  o.progress = [&](const train::Progress& p) {
    generated += p.stage == "class-images";
    return true;
  };
  std::string lora = train::run(o);
  assert_int_equal(generated, 2);
  assert_true(io::is_file(o.class_data + "/class-00000.png") && io::is_file(o.class_data + "/class-00001.png"));
  assert_true(all_weights(lora).abs().sum().item<double>() > 0);
  generated = 0;
  o.out = path_join(temp_dir(), "prior2");
  train::run(o);
  assert_int_equal(generated, 0);
}

// Captions as tags: dropped, shuffled, or dropped whole, reproducibly; nothing when all is off.
static void test_caption_variation(void** state) {
  (void)state;
  const std::string caption = "lagarto, lizard, reptil, animal";
  at::Generator g1 = at::detail::createCPUGenerator(1), g2 = at::detail::createCPUGenerator(1);
  assert_string_equal(train::vary_caption(caption, 0, false, 0, g1).c_str(), caption.c_str());
  int empty = 0, reordered = 0;
  for (int i = 0; i < 400; ++i) {
    std::string a = train::vary_caption(caption, 0.5, true, 0.1, g1), b = train::vary_caption(caption, 0.5, true, 0.1, g2);
    assert_string_equal(a.c_str(), b.c_str());
    if (a.empty()) { ++empty; continue; }
    size_t at = 0, last = 0;
    bool in_order = true;
    for (size_t start = 0; start <= a.size();) {
      size_t comma = std::min(a.find(", ", start), a.size());
      size_t where = caption.find(a.substr(start, comma - start));
      assert_true(where != std::string::npos);  // every tag is one of the caption's
      in_order = in_order && (at == 0 || where > last);
      last = where, ++at;
      start = comma + 2;
    }
    reordered += !in_order;
  }
  print_message("empty %d / 400, reordered %d\n", empty, reordered);
  assert_true(empty > 20 && empty < 70);
  assert_true(reordered > 50);
}

// From scratch on the tiny model's configs: a new folder with a vocabulary learned from the
// captions that the pipeline loads; the VAE stage lowers its loss and measures the scaling
// factor; the UNet and text encoder stage (captions varied) saves a float16 folder that draws.
static void test_from_scratch(void** state) {
  (void)state;
  const std::string data = make_dataset(4);
  const char* captions[] = {"lagarto, lizard, animal", "loro, parrot, ave, bird", "cactus, planta, plant", "lagarto, loro"};
  for (int i = 0; i < 4; ++i) write_file((data + "/img" + std::to_string(i) + ".txt").c_str(), captions[i], std::strlen(captions[i]));
  train::NewModelOptions n;
  n.configs = model_dir();
  n.data = data;
  n.vocab_size = 560;
  n.seed = 3;
  n.out = path_join(temp_dir(), "new");
  assert_string_equal(train::new_model(n).c_str(), n.out.c_str());
  auto te = json::parse(io::read_text_file(n.out + "/text_encoder/config.json"));
  auto vocab = json::parse(io::read_text_file(n.out + "/tokenizer/vocab.json"));
  assert_int_equal(te["vocab_size"].get<int>(), static_cast<int>(vocab.size()));
  assert_true(vocab.size() > 514 && vocab.size() <= 560);
  assert_int_equal(te["eos_token_id"].get<int>(), vocab["<|endoftext|>"].get<int>());
  try {
    train::new_model(n);
    fail_msg("an existing folder was overwritten");
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_INVALID_ARGUMENT);
  }

  auto v = run_options(data, path_join(temp_dir(), "vae"));
  v.model = n.out;
  v.setup.vae = true;
  v.setup.dropout = 0;
  v.steps = 16;
  v.batch = 2;
  v.grad_accum = 1;
  v.lr = 2e-3;
  v.random_crop = false;
  v.lr_schedule.name = "constant";
  std::vector<double> losses;
  v.progress = [&](const train::Progress& p) {
    if (p.stage == "train") losses.push_back(p.loss);
    return true;
  };
  assert_string_equal(train::run(v).c_str(), v.out.c_str());
  double first = (losses[0] + losses[1] + losses[2] + losses[3]) / 4, last = 0;
  for (size_t i = losses.size() - 4; i < losses.size(); ++i) last += losses[i] / 4;
  print_message("VAE loss %.4f → %.4f\n", first, last);
  assert_true(last < 0.8 * first);
  double scaling = json::parse(io::read_text_file(v.out + "/vae/config.json"))["scaling_factor"].get<double>();
  print_message("scaling factor %.4f\n", scaling);
  assert_true(std::isfinite(scaling) && scaling > 0 && std::fabs(scaling - 0.18215) > 1e-3);

  auto f = run_options(data, path_join(temp_dir(), "full"));
  f.model = v.out;
  f.setup.full = f.setup.train_text_encoder = true;
  f.setup.dropout = 0;
  f.steps = 2;
  f.grad_accum = 1;
  f.tag_dropout = 0.5;
  f.shuffle_tags = true;
  f.caption_dropout = 0.2;
  f.save_dtype = torch::kFloat16;
  train::run(f);
  auto unet = io::read_safetensors(f.out + "/unet/diffusion_pytorch_model.safetensors");
  assert_true(unet.tensors.front().dtype == io::DType::F16);
  auto sd = pipeline::StableDiffusion::load(f.out, {});
  pipeline::GenerateOptions g;
  g.prompts = {"lagarto loro"};
  g.steps = 2;
  auto img = sd->generate(g);
  assert_true(torch::isfinite(img).all().item<bool>());
}

static void expect_error(const train::RunOptions& o, bioesp_status status, const char* fragment) {
  try {
    train::run(o);
    fail_msg("expected an error containing '%s'", fragment);
  } catch (const Error& e) {
    print_message("%s\n", e.what());
    assert_int_equal(e.status(), status);
    assert_non_null(std::strstr(e.what(), fragment));
  }
}

static void test_bad_input(void** state) {
  (void)state;
  std::string data = make_dataset(2);
  auto o = run_options(data, path_join(temp_dir(), "bad"));
  o.steps = 1;
  o.resolution = 60;
  expect_error(o, BIOESP_ERR_INVALID_ARGUMENT, "multiple of 8");
  o.resolution = 64;
  std::string empty = path_join(temp_dir(), "empty");
  io::make_directories(empty);
  o.data = empty;
  expect_error(o, BIOESP_ERR_NOT_FOUND, "no PNG or JPEG");
  std::string corrupt = path_join(temp_dir(), "corrupt");
  io::make_directories(corrupt);
  write_file((corrupt + "/a.jpg").c_str(), "not a jpeg", 10);
  o.data = corrupt;
  expect_error(o, BIOESP_ERR_FORMAT, "could be read");
  // Captions alone (for a vocabulary) do not decode the pictures: the manifest's, a .txt, the prompt.
  write_file((corrupt + "/b.png").c_str(), "not a png", 9);
  write_file((corrupt + "/b.txt").c_str(), " dos \n", 6);
  write_file((corrupt + "/manifest.jsonl").c_str(), "{\"file\": \"a.jpg\", \"caption\": \"uno\"}\n", 36);
  write_file((corrupt + "/c.jpg").c_str(), "x", 1);
  train::DatasetOptions d;
  d.prompt = "tres";
  assert_true((train::captions(corrupt, d) == std::vector<std::string>{"uno", "dos", "tres"}));
  d.prompt = "";
  try {
    train::captions(corrupt, d);
    fail_msg("a picture without a caption was accepted");
  } catch (const Error& e) {
    assert_non_null(std::strstr(e.what(), "c.jpg has no caption"));
  }
  o.data = data;
  // A model folder without its noise schedule.
  std::string noschedule = path_join(temp_dir(), "noschedule");
  io::make_directories(noschedule);
  for (const char* c : {"model_index.json", "tokenizer", "text_encoder", "unet", "vae"})
    assert_int_equal(symlink((model_dir() + "/" + c).c_str(), (noschedule + "/" + c).c_str()), 0);
  o.model = noschedule;
  expect_error(o, BIOESP_ERR_NOT_FOUND, "noise schedule");
  o.model = model_dir();
  o.mixed_precision = "fp8";
  expect_error(o, BIOESP_ERR_INVALID_ARGUMENT, "mixed precision");
  o.mixed_precision = "no";
  o.setup.vae = true;
  o.cache_latents = true;
  expect_error(o, BIOESP_ERR_INVALID_ARGUMENT, "cached latents");
  o.cache_latents = false;
  o.mixed_precision = "bf16";
  expect_error(o, BIOESP_ERR_INVALID_ARGUMENT, "float32 weights");
  o.mixed_precision = "no";
  o.setup.vae = false;
  o.caption_dropout = 1;
  expect_error(o, BIOESP_ERR_INVALID_ARGUMENT, "dropout");
  o.caption_dropout = 0;

  // One training at a time in a folder.
  {
    io::make_directories(o.out);
    const train::OutputFolder held(o.out, nullptr);
    expect_error(o, BIOESP_ERR_IO, "another training is writing to this folder");
  }
  // A checkpoint of another rank is refused, and left in place.
  o.checkpoint_every = 1;
  o.steps = 2;
  train::run(o);
  o.setup.rank = 8;
  o.resume = true;
  expect_error(o, BIOESP_ERR_MISMATCH, "rank 4");
  assert_true(io::is_file(o.out + "/checkpoints/checkpoint-000001.safetensors"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parity_with_diffusers), cmocka_unit_test(test_lr_schedules),
      cmocka_unit_test(test_resize), cmocka_unit_test(test_resume_is_bit_identical), cmocka_unit_test(test_corrupt_checkpoints),
      cmocka_unit_test(test_gradient_checkpointing), cmocka_unit_test(test_cached_latents_flip),
      cmocka_unit_test(test_prior_preservation), cmocka_unit_test(test_caption_variation),
      cmocka_unit_test(test_from_scratch), cmocka_unit_test(test_bad_input)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
