// bench — prints a table of times and peak memory for bioesp's networks, generation and training.
//   bench [--full] [--train] [--fast] [--vae PX] [--cfg PX] [--repeat N] [--device cuda]
//                                 tiny-model rows always (with a ControlNet's cost per step);
//                                 --full adds the full-size SD 1.x rows
//                                 (random weights); --train only the training rows; --vae only
//                                 the SD 1.x VAE decoding PX pixels whole and in tiles (CPU);
//                                 --cfg only the SD 1.x CFG pair at PX as one batch-2 UNet pass
//                                 against two batch-1 passes (CPU; weights as --storage S);
//                                 --fast only issue 18's rows (TAESD, 4-step LCM, step caching);
//                                 --weights only issue 19's weight storages (f16, bf16, int8 against
//                                 f32: step time, peak memory, image drift)
//                                 --device cuda runs the rows of issue 9's table on the GPU (fp16)
//                                 and checks CUDA outputs against the CPU's; --graph-train
//                                 (with --device cuda) only the captured training step
//   bench --profile PX            one full-size SD 1.x UNet CFG step (batch 2) and one VAE decode
//                                 at PX pixels (random weights), timed, then profiled by block,
//                                 operator and layer
//   bench --sdxl PX [--storage S] full-size SDXL (random weights) at PX pixels: the UNet's CFG
//                                 step, the VAE decode, a 4-step image and a LoRA training step,
//                                 with weights stored as S (weight_storage's names; dtype: float32)
//   bench --tome PX               token merging (issue 19): the full-size SD 1.x UNet's CFG step at
//                                 PX per ratio, and image drift on the tiny, embedded and random
//                                 full-size (256 px) models
//   bench --train --ranks N       the LoRA step at one global batch of N on 1 and on N processes
//                                 (Gloo over the loopback), with the all-reduce's share; with
//                                 --full also SD 1.x at 256 px
//   bench weights-child STORAGE PX  (internal) one --weights measurement in a fresh process
//   bench load-unet FILE          (internal) loads a full-size SD 1.x UNet from FILE as fp16 and
//                                 prints its peak resident memory; run in a fresh process
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/model_config.h"
#include "core/threads.h"
#include "bioesp.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "models/layers.h"
#include "models/loader.h"
#include "models/clip_text.h"
#include "models/controlnet.h"
#include "models/unet.h"
#include "models/autoencoder_tiny.h"
#include "models/token_merge.h"
#include "models/vae.h"
#include "profile.h"
#include "runtime/cpu_memory.h"
#include "pipeline/pipeline.h"
#include "sched/scheduler.h"
#include "train/captured_step.h"
#include "train/distributed.h"
#include "train/trainer.h"
#ifdef BIOESP_BENCH_CUDA_MEMORY
#include <c10/cuda/CUDACachingAllocator.h>
#if __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define BIOESP_BENCH_CUDA_GRAPHS
#endif
#endif

using namespace bioesp;
using nlohmann::json;

namespace {

std::string reference() {
  const char* r = std::getenv("BIOESP_REFERENCE_DIR");
  return r ? r : std::string(BIOESP_SOURCE_DIR) + "/../shared/reference";
}

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// Starts a new peak-RSS measurement (Linux: "5" resets VmHWM).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Row {
  std::string what;
  std::vector<double> seconds;
  double peak_mib = 0;
  std::string note;
};

// Times fn into a row with its peak memory (resident on the CPU, allocator peak on CUDA).
using Measure = std::function<Row(const std::string& what, const std::function<void()>& fn)>;

double relative_l2(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
}

// The SD 1.x VAE decoding `px`-pixel latents whole and in 256-pixel tiles (with the maps in host
// memory, where the VAE runs on an accelerator): the same image in less memory.
void vae_tile_rows(std::vector<Row>& rows, models::AutoencoderKLImpl& vae, int px, const Measure& measure) {
  const auto p = vae.parameters().front();
  auto z = torch::randn({1, 4, px / 8, px / 8}).to(p.device(), p.scalar_type());
  torch::Tensor whole, tiled;
  const auto dt = p.scalar_type();
  const char* name = dt == torch::kFloat16 ? "fp16" : dt == torch::kBFloat16 ? "bf16" : "fp32";
  rows.push_back(measure("SD 1.x VAE decode " + std::to_string(px) + " px, whole, " + name,
                         [&] { whole = vae.decode(z); }));
  for (bool offload : {false, true}) {
    if (offload && p.device().is_cpu()) continue;
    models::TileOptions t;
    t.tile_sample_size = 256;
    t.offload = offload;
    Row r = measure(offload ? "  same, 256 px tiles, maps in host memory" : "  same, 256 px tiles",
                    [&] { tiled = vae.decode_tiled(z, t); });
    char note[80];
    std::snprintf(note, sizeof note, "vs whole: relative L2 %.2g", relative_l2(tiled, whole));
    r.note = note;
    rows.push_back(r);
  }
}

// ControlNetModel.from_unet's config: the UNet's down path, the default conditioning embedding.
config::ControlNetConfig controlnet_config(const config::UNetConfig& unet) {
  config::ControlNetConfig c;
  c.unet = unet;
  return c;
}

// A CFG denoising step's UNet alone and with a ControlNet in front (residuals added), in the same
// run: the ControlNet's added cost per step.
void control_step_rows(std::vector<Row>& rows, const std::string& what, models::UNet2DConditionModelImpl& unet,
                       models::ControlNetModelImpl& net, const torch::Tensor& x, const torch::Tensor& t,
                       const torch::Tensor& ctx, const Measure& measure) {
  const auto p = unet.parameters().front();
  auto image = torch::rand({x.size(0), 3, x.size(2) * 8, x.size(3) * 8}).to(p.device(), p.scalar_type());
  Row plain = measure(what + ", UNet alone", [&] { unet.forward(x, t, ctx); });
  Row with = measure("  same, ControlNet + UNet", [&] {
    auto r = net.forward(x, t, ctx, image, 1.0, false);
    models::UNetExtra extra;
    extra.down_block_additional_residuals = r.down;
    extra.mid_block_additional_residual = r.mid;
    unet.forward(x, t, ctx, extra);
  });
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  char note[96];
  std::snprintf(note, sizeof note, "ControlNet adds %.3f s per step (+%.0f%%)", median(with.seconds) - median(plain.seconds),
                100 * (median(with.seconds) / median(plain.seconds) - 1));
  with.note = note;
  rows.push_back(plain);
  rows.push_back(with);
}

void print(const std::vector<Row>& rows) {
  std::printf("| %-58s | %9s | %9s | %9s | %10s | %s\n", "what", "median s", "min s", "max s", "peak MiB", "note");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(11, '-').c_str(),
              std::string(11, '-').c_str(), std::string(11, '-').c_str(), std::string(12, '-').c_str());
  for (auto r : rows) {
    std::sort(r.seconds.begin(), r.seconds.end());
    double med = r.seconds.empty() ? 0 : r.seconds[r.seconds.size() / 2];
    std::printf("| %-58s | %9.3f | %9.3f | %9.3f | %10.0f | %s\n", r.what.c_str(), med,
                r.seconds.empty() ? 0 : r.seconds.front(), r.seconds.empty() ? 0 : r.seconds.back(), r.peak_mib,
                r.note.c_str());
  }
}

std::vector<double> time_it(int warmup, int repeat, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> s;
  for (int i = 0; i < repeat; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return s;
}

// Peak bytes the caching allocator handed out since the last reset (0 where not built in).
double cuda_peak_mib() {
#ifdef BIOESP_BENCH_CUDA_MEMORY
  return c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].peak / 1048576.0;
#else
  return 0;
#endif
}
void cuda_reset_peak() {
#ifdef BIOESP_BENCH_CUDA_MEMORY
  c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
}

// The CFG pair (prompt and negative) as one batch-2 UNet pass and as two batch-1 passes, timed
// alternately on the same inputs: which of the two a CPU step should run.
void cfg_pair_rows(std::vector<Row>& rows, models::UNet2DConditionModelImpl& unet, int px, int repeat) {
  const int64_t side = px / 8;
  const auto ctx_dim = static_cast<int64_t>(unet.config().cross_attention_dim.at(0));
  auto x = torch::randn({2, 4, side, side}), ctx = torch::randn({2, 77, ctx_dim}), t = torch::tensor({999.0, 999.0});
  torch::Tensor batched, split;
  auto one_pass = [&] { batched = unet.forward(x, t, ctx); };
  auto two_passes = [&] {
    split = torch::cat({unet.forward(x.slice(0, 0, 1), t.slice(0, 0, 1), ctx.slice(0, 0, 1)),
                        unet.forward(x.slice(0, 1, 2), t.slice(0, 1, 2), ctx.slice(0, 1, 2))});
  };
  const std::string size = std::to_string(px) + " px";
  Row one{"SD 1.x CFG pair, " + size + ", one batch-2 UNet pass", {}};
  Row two{"  same, two batch-1 passes", {}};
  one_pass();  // warm-up: oneDNN's primitives for both batch sizes
  two_passes();
  for (int i = 0; i < repeat; ++i) {
    one.seconds.push_back(time_it(0, 1, one_pass)[0]);
    two.seconds.push_back(time_it(0, 1, two_passes)[0]);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  char note[96];
  std::snprintf(note, sizeof note, "%.2fx the batch-2 pass; relative L2 %.2g", median(two.seconds) / median(one.seconds),
                relative_l2(split, batched));
  two.note = note;
  rows.push_back(one);
  rows.push_back(two);
}

// The full-size SD 1.x pipeline with random weights (tokenizer and scheduler of the tiny model).
std::unique_ptr<pipeline::StableDiffusion> sd1_random(torch::Device device, torch::ScalarType dtype,
                                                      c10::optional<torch::ScalarType> weight_storage = c10::nullopt) {
  json c = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
  pipeline::LoadOptions lo;
  lo.device = device;
  lo.dtype = dtype;
  lo.weight_storage = weight_storage;
  return pipeline::StableDiffusion::create(reference() + "/models/tiny-sd1", c["clip_l"].dump(), c["sd1.unet"].dump(),
                                           c["vae"].dump(), lo, 0);
}

// SDXL's add_time_ids for `batch` whole `px`-pixel pictures: original size, no crop, target size.
torch::Tensor whole_picture_time_ids(int px, int64_t batch) {
  return torch::tensor({double(px), double(px), 0.0, 0.0, double(px), double(px)}).repeat({batch, 1});
}

// One prompt's `steps`-step image at `px` pixels, for the rows that time a whole generation.
pipeline::GenerateOptions bench_image(int px, int steps, double guidance, const std::string& scheduler) {
  pipeline::GenerateOptions g;
  g.prompts = {"criatura especulativa colombiana"};
  g.steps = steps;
  g.guidance = guidance;
  g.width = g.height = px;
  g.scheduler = scheduler;
  return g;
}

// A micro-batch of `batch` random samples at `res` pixels.
train::StepInputs random_inputs(pipeline::StableDiffusion& sd, int res, int batch, at::Generator& gen) {
  train::StepInputs in;
  in.pixel_values = at::rand({batch, 3, res, res}, gen) * 2 - 1;
  in.vae_eps = at::randn({batch, 4, res / 8, res / 8}, gen);
  in.noise = at::randn({batch, 4, res / 8, res / 8}, gen);
  in.timesteps = at::randint(0, 1000, {batch}, gen, torch::kLong);
  in.encoder_hidden_states =
      at::randn({batch, 77, static_cast<int64_t>(sd.unet()->config().cross_attention_dim.at(0))}, gen);
  if (sd.sdxl()) {  // the added conditions: the pooled projection and the time ids of a whole picture
    in.pooled = at::randn({batch, static_cast<int64_t>(sd.text_encoder_2()->config().projection_dim)}, gen);
    in.time_ids = whole_picture_time_ids(res, batch);
  }
  return in;
}

// One DreamBooth-LoRA optimizer step as the trainer runs it (VAE encode, UNet forward and
// backward, clipping, AdamW), batch 1, rank 4, on random inputs.
Row train_row(pipeline::StableDiffusion& sd, int res, int warmup, int repeat, const std::string& what,
              bool checkpointing = false) {
  train::Setup s;
  s.fp16_loss_scaling = sd.dtype() == torch::kFloat16;
  s.gradient_checkpointing = checkpointing;
  train::Trainer tr(sd, s);
  at::Generator gen = at::detail::createCPUGenerator(0);
  const train::StepInputs in = random_inputs(sd, res, 1, gen);
  auto step = [&] {
    tr.backward(in, 1);  // reads the loss back: the step is synchronised
    tr.update(1e-4);
  };
  for (int i = 0; i < warmup; ++i) step();
  // After warm-up: cuDNN's autotuning tries algorithms with large workspaces on first calls.
  if (sd.device().is_cuda()) cuda_reset_peak();
  Row r{what, time_it(0, repeat, step)};
  r.peak_mib = sd.device().is_cuda() ? cuda_peak_mib() : peak_rss_mib();
  return r;
}

// The three recorded diffusers steps on `sd`: worst relative error of the final LoRA.
double train_parity(pipeline::StableDiffusion& sd) {
  auto golden = io::read_safetensors(reference() + "/golden/tiny-sd1/lora_train.safetensors");
  auto g = [&](const std::string& n) { return models::to_torch(*golden.find("", n)).clone(); };
  train::Trainer tr(sd, {});
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, p] : tr.parameters()) const_cast<torch::Tensor&>(p).copy_(g("lora.init." + name));
  }
  for (int step = 0; step < 3; ++step) {
    std::string s = "train.step" + std::to_string(step) + ".";
    train::StepInputs in{g(s + "pixel_values"), g(s + "vae_eps"), {}, g(s + "noise"), g(s + "timesteps"),
                         g("train.encoder_hidden_states")};
    tr.backward(in, 1);
    tr.update(1e-4);
  }
  double worst = 0;
  for (const auto& [name, p] : tr.parameters()) {
    auto want = g("lora.final." + name);
    worst = std::max(worst, ((p.detach().cpu() - want).norm() / want.norm()).item<double>());
  }
  return worst;
}

// The full-size SDXL base pipeline with random weights (tokenizers, scheduler and model index of
// the tiny SDXL folder): configs.json's UNet, CLIP-L and OpenCLIP bigG, and SD 1.x's VAE
// architecture with SDXL's scaling factor and force_upcast.
std::unique_ptr<pipeline::StableDiffusion> sdxl_random(c10::optional<torch::ScalarType> weight_storage) {
  json c = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
  json clip_l = c["clip_l"], clip_g = c["clip_g"], vae = c["vae"];
  clip_l["architectures"] = {"CLIPTextModel"};
  clip_g["architectures"] = {"CLIPTextModelWithProjection"};
  vae["scaling_factor"] = 0.13025;
  vae["force_upcast"] = true;
  pipeline::LoadOptions lo;
  lo.weight_storage = weight_storage;
  return pipeline::StableDiffusion::create(reference() + "/models/tiny-sdxl", clip_l.dump(), c["sdxl.unet"].dump(),
                                           vae.dump(), lo, 0, clip_g.dump());
}

// Issue 21's rows: full-size SDXL (random weights) at `px` on the CPU — the UNet's CFG step with
// its added conditions, the VAE decode, a whole 4-step image (text, UNet, VAE) and a LoRA training
// step with gradient checkpointing — each with the process's peak resident memory during it.
void sdxl_rows(std::vector<Row>& rows, int px, int repeat, c10::optional<torch::ScalarType> storage,
               const std::string& storage_name) {
  // As generate and train run them: in a CPU memory scope of their own, peaks measured apart.
  auto measured = [&](const std::string& what, int warmup, int n, const std::function<void()>& fn) {
    reset_peak_rss();
    runtime::CpuMemoryScope memory;
    Row r{what + ", " + std::to_string(px) + " px, weights " + storage_name, time_it(warmup, n, fn)};
    r.peak_mib = peak_rss_mib();
    rows.push_back(r);
  };
  std::unique_ptr<pipeline::StableDiffusion> sd;
  measured("SDXL random weights built (UNet 2.6 B, encoders 0.8 B)", 0, 1, [&] { sd = sdxl_random(storage); });
  rows.back().note = "peak = resident after building";
  const int64_t h = px / 8;
  {
    torch::NoGradGuard no_grad;
    auto z = torch::randn({2, 4, h, h}), ctx = torch::randn({2, 77, 2048}), t = torch::tensor({499.0, 499.0});
    models::UNetExtra extra;
    extra.text_embeds = torch::randn({2, 1280});
    extra.time_ids = whole_picture_time_ids(px, 2);
    measured("SDXL UNet CFG step (batch 2, added conditions)", 1, repeat, [&] { sd->unet()->forward(z, t, ctx, extra); });
    measured("SDXL VAE decode", 0, repeat, [&] { sd->vae()->decode(z.slice(0, 0, 1)); });
    const auto g = bench_image(px, 4, 5, "euler");
    measured("SDXL image, 4 euler steps with CFG (both encoders, UNet, VAE)", 0, 1, [&] { sd->generate(g); });
  }
  train::Setup setup;
  setup.gradient_checkpointing = true;
  train::Trainer tr(*sd, setup);
  at::Generator gen = at::detail::createCPUGenerator(0);
  const train::StepInputs in = random_inputs(*sd, px, 1, gen);
  measured("SDXL DreamBooth-LoRA step (batch 1, rank 4, gradient checkpointing)", 1, repeat, [&] {
    tr.backward(in, 1);
    tr.update(1e-4);
  });
  rows.back().note = "VAE encode, UNet forward and backward, AdamW";
}

config::UNetConfig sd1_unet_config() {
  json c = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
  return config::parse_unet(c["sd1.unet"].dump(), "configs.json sd1.unet");
}

// Writes a full-size SD 1.x UNet as fp16 safetensors with random values, names and shapes from
// the manifest. Returns the file size.
size_t write_synthetic_unet(const std::string& path) {
  json manifest = json::parse(io::read_text_file(reference() + "/manifests/sd1.unet.json"));
  std::vector<io::Tensor> tensors;
  std::vector<std::shared_ptr<uint16_t[]>> buffers;
  uint32_t state = 12345;
  for (const auto& [name, v] : manifest.items()) {
    io::Tensor t;
    t.name = name;
    t.dtype = io::DType::F16;
    t.shape = v[0].get<std::vector<int64_t>>();
    size_t n = static_cast<size_t>(io::checked_numel(t.shape, name));
    std::shared_ptr<uint16_t[]> buf(new uint16_t[n]);
    for (size_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      buf[i] = static_cast<uint16_t>(0x2000 | (state >> 22));  // small positive halves
    }
    t.data = reinterpret_cast<const uint8_t*>(buf.get());
    t.nbytes = n * 2;
    buffers.push_back(buf);
    tensors.push_back(std::move(t));
  }
  size_t bytes = 0;
  for (const auto& t : tensors) bytes += t.nbytes;
  io::write_safetensors(path, tensors, {{"format", "pt"}});
  return bytes;
}

int load_unet(const std::string& path) {
  models::BuildScope scope(torch::TensorOptions().dtype(torch::kFloat16));
  models::UNet2DConditionModel unet(sd1_unet_config());
  auto t0 = std::chrono::steady_clock::now();
  auto set = io::open_weights(path, {});
  models::load_state(*unet, set, "", "unet");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.3f %.1f\n", s, peak_rss_mib());
  return 0;
}

// A whole 512 px LoRA training step captured as a CUDA graph (train::CapturedStep) against the
// trainer's eager step on the same inputs: the time, and how far three steps of each drift apart
// from the same start (in bf16 two eager runs drift too, which gives the scale).
Row graph_train_row(const torch::Device& dev, int repeat) {
  Row r{"  same, 512 px, bf16, captured as a CUDA graph", {}};
  try {
    torch::AutoGradMode grad(true);
    auto sd = sd1_random(dev, torch::kBFloat16);
    train::Trainer tr(*sd, train::Setup{});
    at::Generator gen = at::detail::createCPUGenerator(0);
    const int res = 512;
    train::StepInputs in;
    in.pixel_values = at::rand({1, 3, res, res}, gen) * 2 - 1;
    in.vae_eps = at::randn({1, 4, res / 8, res / 8}, gen);
    in.noise = at::randn({1, 4, res / 8, res / 8}, gen);
    in.timesteps = at::randint(0, 1000, {1}, gen, torch::kLong);
    in.encoder_hidden_states = at::randn({1, 77, 768}, gen);
    std::vector<torch::Tensor> params, start;
    for (const auto& [name, t] : tr.parameters()) {
      params.push_back(t);
      start.push_back(t.detach().clone());
    }
    auto reset = [&] {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) {
        params[i].copy_(start[i]);
        tr.optimizer().exp_avg()[i].zero_();
        tr.optimizer().exp_avg_sq()[i].zero_();
      }
      tr.optimizer().set_steps(0);
    };
    auto snapshot = [&] {
      std::vector<torch::Tensor> out;
      for (const auto& p : params) out.push_back(p.detach().clone());
      return out;
    };
    auto eager_run = [&] {
      reset();
      for (int i = 0; i < 3; ++i) {
        tr.backward(in, 1);
        tr.update(1e-4);
      }
      return snapshot();
    };
    // Relative L2 distance between what two runs changed from the start.
    auto change_distance = [&](const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
      double num = 0, den = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        num += (a[i] - b[i]).pow(2).sum().item<double>();
        den += (b[i] - start[i]).pow(2).sum().item<double>();
      }
      return std::sqrt(num / den);
    };
    const auto eager = eager_run();
    const double eager_drift = change_distance(eager_run(), eager);
    auto eager_s = time_it(1, repeat * 5, [&] {
      tr.backward(in, 1);
      tr.update(1e-4);
    });
    std::sort(eager_s.begin(), eager_s.end());

    reset();
    train::CapturedStep step(tr, in);
    for (int i = 0; i < 3; ++i) step.run(in, 1e-4);
    const double graph_drift = change_distance(snapshot(), eager);
    cuda_reset_peak();
    r.seconds = time_it(3, repeat * 5, [&] { step.run(in, 1e-4); });
    r.peak_mib = cuda_peak_mib();
    char note[160];
    std::snprintf(note, sizeof note,
                  "3-step LoRA change vs eager: relative L2 %.2g (two eager runs: %.2g); eager step %.3f s; target 60 ms",
                  graph_drift, eager_drift, eager_s[eager_s.size() / 2]);
    r.note = note;
  } catch (const std::exception& e) {
    r.note = std::string("failed: ") + std::string(e.what()).substr(0, 160);
  }
  return r;
}

// How far a cached image is from the uncached one: PSNR (dB) and mean absolute error in 8-bit
// levels, for images [N, H, W, 3] in [0, 1].
std::string drift(const torch::Tensor& cached, const torch::Tensor& plain, const char* against = "uncached") {
  const double mse = (cached - plain).pow(2).mean().item<double>();
  const double mae = (cached - plain).abs().mean().item<double>() * 255;
  char note[96];
  std::snprintf(note, sizeof note, "vs %s: PSNR %.1f dB, mean abs error %.2f / 255", against, 10 * std::log10(1 / mse), mae);
  return note;
}

std::string format_ratio(double r) {
  char b[16];
  std::snprintf(b, sizeof b, "%.2f", r);
  return b;
}

// Step caching's image drift: 25 steps, a full pass every 3 from the shallowest branch, against
// the uncached image with the same seed.
void cache_drift_row(std::vector<Row>& rows, pipeline::StableDiffusion& sd, const std::string& what, int px, double guidance) {
  pipeline::GenerateOptions g;
  g.prompts = {"lagarto mariposa"};
  g.steps = 25;
  g.guidance = guidance;
  g.width = g.height = px;
  g.seed = 3;
  torch::Tensor plain, cached;
  auto plain_s = time_it(0, 1, [&] { plain = sd.generate(g); });
  g.cache_interval = 3;
  Row r{what + ", 25 steps, cached every 3, branch 0", time_it(0, 1, [&] { cached = sd.generate(g); })};
  char speed[48];
  std::snprintf(speed, sizeof speed, "; %.2fx faster", plain_s[0] / r.seconds[0]);
  r.note = drift(cached, plain) + speed;
  rows.push_back(r);
}

// Issue 18's rows on the CPU, full-size SD 1.x with random weights at `px`: the tiny autoencoder
// against the VAE, a 4-step LCM image against a 25-step CFG one, step caching. A 512 px UNet step
// takes half a minute here, so each part is timed once and images are the sums of their parts
// (marked "derived"); a real 4-step generate() call is timed too.
void fast_rows(std::vector<Row>& rows, int px) {
  json c = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
  json unet_config = c["sd1.unet"];
  unet_config["time_cond_proj_dim"] = 256;  // LCM's SD 1.5 UNets
  auto sd = pipeline::StableDiffusion::create(reference() + "/models/tiny-sd1", c["clip_l"].dump(), unet_config.dump(),
                                              c["vae"].dump(), {}, 0);
  models::AutoencoderTiny taesd{config::TinyVAEConfig{}};
  models::initialise_random(*taesd, 3);
  taesd->eval();
  const std::string size = std::to_string(px) + " px";
  auto once = [&](const std::string& what, const std::function<void()>& fn, const std::string& note = "") {
    reset_peak_rss();
    Row r{what, time_it(0, 1, fn)};
    r.peak_mib = peak_rss_mib();
    r.note = note;
    rows.push_back(r);
    return r.seconds[0];
  };
  auto ids1 = torch::randint(0, 49408, {1, 77}, torch::kLong), ids2 = torch::randint(0, 49408, {2, 77}, torch::kLong);
  const double text1 = once("SD 1.x text encoder, batch 1 (no CFG)", [&] { sd->text_encoder()->forward(ids1); });
  const double text2 = once("SD 1.x text encoder, batch 2 (CFG)", [&] { sd->text_encoder()->forward(ids2); });
  const int64_t h = px / 8;
  auto z1 = torch::randn({1, 4, h, h}), z2 = torch::randn({2, 4, h, h});
  auto ctx1 = torch::randn({1, 77, 768}), ctx2 = torch::randn({2, 77, 768}), t = torch::tensor(499.0);
  models::UNetExtra lcm;
  lcm.timestep_cond = models::guidance_embedding(torch::full({1}, 7.0f), 256);
  const double unet1 = once("SD 1.x UNet step, " + size + ", batch 1 (LCM: guidance embedding)",
                            [&] { sd->unet()->forward(z1, t, ctx1, lcm); });
  const double unet2 = once("SD 1.x UNet step, " + size + ", batch 2 (CFG)", [&] { sd->unet()->forward(z2, t, ctx2); });
  for (int64_t branch : {0, 3}) {
    models::StepCache cache;
    cache.branch = branch;
    sd->unet()->forward(z2, t, ctx2, {}, &cache);  // the full pass that fills the cache
    cache.reuse = true;
    const double s = once("  same, a cached step from branch " + std::to_string(branch),
                          [&] { sd->unet()->forward(z2, t, ctx2, {}, &cache); });
    const int full = (25 + 2) / 3;  // steps 0, 3, …, 24
    char note[96];
    std::snprintf(note, sizeof note, "25 steps cached every 3: %.2fx faster (derived; target 1.8x)",
                  25 * unet2 / (full * unet2 + (25 - full) * s));
    rows.back().note = note;
  }
  torch::Tensor decoded;
  const double vae = once("SD 1.x VAE decode, " + size, [&] { decoded = sd->vae()->decode(z1); });
  const double tiny = once("TAESD decode, " + size, [&] { decoded = taesd->decode(z1); });
  char note[96];
  std::snprintf(note, sizeof note, "1/%.0f of the VAE's (target 1/20)", vae / tiny);
  rows.back().note = note;
  const double cfg = text2 + 25 * unet2 + vae, fast = text1 + 4 * unet1 + tiny;
  rows.push_back(Row{"25-step CFG image, " + size + " (text + 25 UNet steps + VAE)", {cfg}, 0, "derived"});
  std::snprintf(note, sizeof note, "derived; 1/%.1f of the 25-step CFG image (target 1/15)", cfg / fast);
  rows.push_back(Row{"4-step LCM image, " + size + " (text + 4 UNet passes + TAESD)", {fast}, 0, note});
  sd->set_autoencoder({nullptr, taesd});
  const auto g = bench_image(px, 4, 8, "lcm");
  const double real = once("  same, one generate() call, lcm scheduler", [&] { sd->generate(g); });
  std::snprintf(note, sizeof note, "1/%.1f of the derived CFG image", cfg / real);
  rows.back().note = note;
}

// Issue 19's weight storages (bioesp_model_options.weight_storage), named as the option names them.
const std::vector<std::pair<std::string, c10::optional<torch::ScalarType>>> kStorages{
    {"dtype", c10::nullopt}, {"f16", torch::kFloat16}, {"bf16", torch::kBFloat16}, {"int8", torch::kInt8}};

c10::optional<torch::ScalarType> storage_named(const std::string& name) {
  for (const auto& [n, t] : kStorages)
    if (n == name) return t;
  throw std::runtime_error("no weight storage " + name);
}

// (internal) One process per storage, so that its peak resident memory is its own: full-size
// SD 1.x with random weights built with that storage; at 256 px one CFG UNet step timed (after a
// warm-up one); then a whole 1-step `px` generation (text, UNet, VAE). Prints the step's and the
// generation's seconds and the process's peak MiB.
int weights_child(const std::string& storage, int px) {
  torch::NoGradGuard no_grad;
  auto sd = sd1_random(torch::kCPU, torch::kFloat32, storage_named(storage));
  double step = 0;
  if (px <= 256) {
    auto z = torch::randn({2, 4, px / 8, px / 8}), ctx = torch::randn({2, 77, 768}), t = torch::tensor(499.0);
    step = time_it(1, 1, [&] { sd->unet()->forward(z, t, ctx); })[0];
  }
  pipeline::GenerateOptions g;
  g.prompts = {"lagarto mariposa"};
  g.steps = 1;
  g.width = g.height = px;
  const double whole = time_it(0, 1, [&] { sd->generate(g); })[0];
  std::printf("%.3f %.3f %.1f\n", step, whole, peak_rss_mib());
  return 0;
}

// Per storage: the children's 256 px CFG step and 512 px generation with their peaks, and the
// drift of 6-step 256 px images (full-size, random weights) and of the embedded and tiny models'
// images from float32's.
void weight_rows(std::vector<Row>& rows) {
  torch::NoGradGuard no_grad;
  auto image = [](pipeline::StableDiffusion& sd, int px, int steps, double guidance) {
    pipeline::GenerateOptions g;
    g.prompts = {"criatura especulativa colombiana"};
    g.negative_prompt = "blurry, low quality";
    g.steps = steps;
    g.guidance = guidance;
    g.width = g.height = px;
    g.seed = 1234;
    return sd.generate(g);
  };
  std::vector<std::pair<std::string, std::string>> small{{"tiny", reference() + "/models/tiny-sd1"}};
  if (const char* e = bioesp_embedded_model()) small.emplace_back("embedded", e);
  for (const auto& [what, path] : small) {
    const int steps = what == "tiny" ? 10 : 25;
    const double guidance = what == "tiny" ? 7.5 : 5;
    const auto exact = image(*pipeline::StableDiffusion::load(path, {}), 0, steps, guidance);
    for (size_t i = 1; i < kStorages.size(); ++i) {
      pipeline::LoadOptions lo;
      lo.weight_storage = kStorages[i].second;
      auto sd = pipeline::StableDiffusion::load(path, lo);
      torch::Tensor img;
      Row r{what + " model image, " + std::to_string(steps) + " steps, weights " + kStorages[i].first,
            time_it(0, 1, [&] { img = image(*sd, 0, steps, guidance); })};
      r.note = drift(img, exact, "float32");
      rows.push_back(r);
    }
  }
  for (const auto& [name, storage] : kStorages)
    for (int px : {256, 512}) {
      std::string cmd = "/proc/self/exe weights-child " + name + " " + std::to_string(px);
      FILE* p = popen(cmd.c_str(), "r");
      double step = 0, whole = 0, mib = 0;
      const bool ok = p && std::fscanf(p, "%lf %lf %lf", &step, &whole, &mib) == 3;
      if (p) pclose(p);
      const std::string size = std::to_string(px) + " px";
      rows.push_back(Row{px <= 256 ? "SD 1.x UNet step, " + size + ", batch 2 (CFG), weights " + name
                                   : "SD 1.x 1-step CFG generation, " + size + ", weights " + name,
                         {px <= 256 ? step : whole}, mib, ok ? "peak: the whole process's" : "failed"});
    }
  torch::Tensor exact;
  for (const auto& [name, storage] : kStorages) {
    auto img = image(*sd1_random(torch::kCPU, torch::kFloat32, storage), 256, 6, 7.5);
    if (!storage) exact = img;
    else rows.push_back(Row{"SD 1.x random weights, 256 px, 6 steps, weights " + name, {}, 0, drift(img, exact, "float32")});
  }
}

// Issue 19's token merging rows: the full-size SD 1.x UNet's CFG step at `px` per ratio, and the
// image drift from the exact image on the tiny, the embedded and the random full-size model.
void tome_rows(std::vector<Row>& rows, int px, int repeat) {
  torch::NoGradGuard no_grad;
  const double ratios[] = {0, 0.25, 0.5};
  auto sd = sd1_random(torch::kCPU, torch::kFloat32);
  const int64_t side = px / 8;
  auto x = torch::randn({2, 4, side, side}), ctx = torch::randn({2, 77, 768}), t = torch::tensor({999.0, 999.0});
  double exact_s = 0;
  for (double ratio : ratios) {
    models::TokenMergeScope merging({ratio, 1, 0, side * side, 1});
    Row r{"SD 1.x UNet CFG step (batch 2), " + std::to_string(px) + " px, token merging " + format_ratio(ratio),
          time_it(1, repeat, [&] { sd->unet()->forward(x, t, ctx); })};
    auto s = r.seconds;
    std::sort(s.begin(), s.end());
    if (ratio == 0) exact_s = s[s.size() / 2];
    else {
      char note[48];
      std::snprintf(note, sizeof note, "%.2fx the exact step", s[s.size() / 2] / exact_s);
      r.note = note;
    }
    rows.push_back(r);
  }
  struct Case {
    std::string what;
    pipeline::StableDiffusion* sd;
    int px, steps;
    double guidance;
  };
  auto tiny = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {});
  std::unique_ptr<pipeline::StableDiffusion> embedded;
  std::vector<Case> cases{{"tiny model", tiny.get(), 0, 10, 7.5}};
  if (const char* e = bioesp_embedded_model()) {
    embedded = pipeline::StableDiffusion::load(e, {});
    cases.push_back({"embedded model", embedded.get(), 0, 25, 5});
  }
  cases.push_back({"SD 1.x random weights, 256 px", sd.get(), 256, 6, 7.5});
  for (const auto& c : cases) {
    pipeline::GenerateOptions g;
    g.prompts = {"criatura especulativa colombiana"};
    g.negative_prompt = "blurry, low quality";
    g.steps = c.steps;
    g.guidance = c.guidance;
    g.width = g.height = c.px;
    g.seed = 1234;
    torch::Tensor exact;
    for (double ratio : ratios) {
      g.token_merging = ratio;
      torch::Tensor img;
      Row r{c.what + ", " + std::to_string(c.steps) + " steps, token merging " + format_ratio(ratio),
            time_it(0, 1, [&] { img = c.sd->generate(g); })};
      if (ratio == 0) exact = img;
      else r.note = drift(img, exact, "exact");
      rows.push_back(r);
    }
  }
}

// CPU rows: wall time, and the peak resident memory of the measured calls (after a reset).
Measure cpu_measure(int repeat) {
  return [repeat](const std::string& what, const std::function<void()>& fn) {
    reset_peak_rss();
    Row r{what, time_it(0, repeat, fn)};
    r.peak_mib = peak_rss_mib();
    return r;
  };
}

// CUDA rows: device-synchronised wall times around each call.
int bench_cuda(bool full, int repeat) {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "bench: CUDA is not available\n");
    return 1;
  }
  torch::NoGradGuard no_grad;
  at::globalContext().setBenchmarkCuDNN(true);
  const torch::Device dev(torch::kCUDA);
  // Synchronised times after warm-up; the allocator's peak is reset after the warm-up calls.
  auto sync_time = [&](int warmup, int n, const std::function<void()>& fn) {
    auto synced = [&] {
      fn();
      torch::cuda::synchronize();
    };
    for (int i = 0; i < warmup; ++i) synced();
    cuda_reset_peak();
    return time_it(0, n, synced);
  };
  std::vector<Row> rows;
  {
    std::string dir = reference() + "/models/tiny-sd1/unet";
    auto cfg = config::parse_unet(io::read_text_file(dir + "/config.json"), "tiny unet");
    auto weights = io::open_weights(dir, {});
    models::UNet2DConditionModel cpu(cfg);
    models::load_state(*cpu, weights, "", "unet");
    models::BuildScope scope(torch::TensorOptions().device(dev));
    models::UNet2DConditionModel gpu(cfg);
    models::load_state(*gpu, weights, "", "unet");
    auto x = torch::randn({2, 4, 16, 16}), ctx = torch::randn({2, 77, 32}), t = torch::tensor({999.0, 37.0});
    auto ref = cpu->forward(x, t, ctx);
    auto out = gpu->forward(x.to(dev), t.to(dev), ctx.to(dev)).cpu();
    double err = ((out - ref).norm() / ref.norm()).item<double>();
    Row r{"tiny UNet forward on CUDA, fp32, batch 2", sync_time(3, repeat * 10, [&] { gpu->forward(x.to(dev), t.to(dev), ctx.to(dev)); })};
    char note[80];
    std::snprintf(note, sizeof note, "vs CPU: relative L2 %.2g (target 1e-3)", err);
    r.note = note;
    rows.push_back(r);
  }
  {
    // Whole images with the tiny pipeline: CUDA fp32/fp16/bf16 against the CPU's fp32 image.
    pipeline::GenerateOptions g;
    g.prompts = {"criatura especulativa colombiana"};
    g.negative_prompt = "blurry, low quality";
    g.steps = 25;
    g.seed = 1234;
    g.scheduler = "dpmpp_2m";
    auto cpu = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {});
    auto ref = cpu->generate(g);
    for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
      pipeline::LoadOptions lo;
      lo.device = dev;
      lo.dtype = dtype;
      auto sd = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", lo);
      torch::Tensor image;
      Row r{std::string("tiny txt2img on CUDA, 25 steps DPM++ 2M, CFG, ") + c10::toString(dtype),
            sync_time(1, repeat, [&] { image = sd->generate(g); })};
      char note[96];
      std::snprintf(note, sizeof note, "image vs CPU fp32: relative L2 %.2g (target %s)",
                    ((image - ref).norm() / ref.norm()).item<double>(), dtype == torch::kFloat32 ? "1e-3" : "1e-2");
      r.note = note;
      rows.push_back(r);
    }
  }
  {
    torch::AutoGradMode grad(true);
    auto sd = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {pipeline::LoadOptions{"", "", dev}});
    char note[96];
    std::snprintf(note, sizeof note, "final LoRA vs diffusers (CPU): relative L2 %.2g (target 1e-3)", train_parity(*sd));
    Row r{"tiny LoRA training, diffusers' 3 recorded steps, CUDA fp32", {}};
    r.note = note;
    rows.push_back(r);
  }
  if (full) {
    for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
      models::BuildScope scope(torch::TensorOptions().device(dev).dtype(dtype));
      models::UNet2DConditionModel unet(sd1_unet_config());
      models::initialise_random(*unet, 0);
      auto x = torch::randn({2, 4, 64, 64}, torch::TensorOptions().device(dev).dtype(dtype));
      auto ctx = torch::randn({2, 77, 768}, torch::TensorOptions().device(dev).dtype(dtype));
      auto t = torch::tensor({999.0, 999.0}).to(dev);
      torch::cuda::synchronize();
      std::string name = dtype == torch::kFloat16 ? "fp16" : "bf16";
      Row r{"SD 1.x UNet forward, 64x64 latents, batch 2 (CFG), " + name, sync_time(3, repeat * 5, [&] { unet->forward(x, t, ctx); })};
      r.peak_mib = cuda_peak_mib();
      r.note = "diffusers on H200: 42.6 ms median (fp16)";
      rows.push_back(r);
      if (dtype == torch::kFloat16) {
        // Experiment: channels-last convolution weights and input (NHWC tensor-core kernels).
        Row cl{"  same, channels-last weights and input (experiment)", {}};
        try {
          torch::NoGradGuard ng;
          for (auto& p : unet->parameters())
            if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
          auto xcl = x.contiguous(torch::MemoryFormat::ChannelsLast);
          auto ref = unet->forward(x, t, ctx);
          cl.seconds = sync_time(3, repeat * 5, [&] { unet->forward(xcl, t, ctx); });
          auto out = unet->forward(xcl, t, ctx);
          char note[80];
          std::snprintf(note, sizeof note, "vs NCHW: relative L2 %.2g", ((out - ref).norm() / ref.norm()).item<double>());
          cl.note = note;
        } catch (const std::exception& e) {
          cl.note = std::string("failed: ") + std::string(e.what()).substr(0, 80);
        }
        rows.push_back(cl);
      }
    }
    auto sd = sd1_random(dev, torch::kFloat16);
    {
      models::BuildScope scope(torch::TensorOptions().device(dev).dtype(torch::kFloat16));
      models::ControlNetModel net(controlnet_config(sd1_unet_config()));
      models::initialise_random(*net, 1);
      auto x = torch::randn({2, 4, 64, 64}, torch::TensorOptions().device(dev).dtype(torch::kFloat16));
      auto ctx = torch::randn({2, 77, 768}, torch::TensorOptions().device(dev).dtype(torch::kFloat16));
      auto t = torch::tensor({999.0, 999.0}).to(dev);
      control_step_rows(rows, "SD 1.x step, 64x64 latents, batch 2, fp16", *sd->unet(), *net, x, t, ctx,
                        [&](const std::string& what, const std::function<void()>& fn) {
                          Row r{what, sync_time(3, repeat * 5, fn)};
                          r.peak_mib = cuda_peak_mib();
                          return r;
                        });
    }
    {
      auto z = torch::randn({1, 4, 64, 64}, torch::TensorOptions().device(dev).dtype(torch::kFloat16));
      Row r{"SD 1.x VAE decode 512 px, fp16 weights", sync_time(2, repeat * 3, [&] { sd->vae()->decode(z); })};
      r.peak_mib = cuda_peak_mib();
      r.note = "diffusers: 21.3 ms";
      rows.push_back(r);
      for (int px : {1024, 2048})
        vae_tile_rows(rows, *sd->vae(), px, [&](const std::string& what, const std::function<void()>& fn) {
          Row r{what, sync_time(1, repeat, fn)};
          r.peak_mib = cuda_peak_mib();
          return r;
        });
    }
    struct Case { int steps, images; const char* diffusers; };
    for (Case c : {Case{25, 1, "0.734 s"}, Case{50, 1, "1.703 s"}, Case{25, 4, "0.942 s"}}) {
      pipeline::GenerateOptions g;
      g.prompts = {"criatura especulativa colombiana"};
      g.steps = c.steps;
      g.images_per_prompt = c.images;
      g.scheduler = "dpmpp_2m";
      g.guidance = 7.5;
      g.width = g.height = 512;
      Row r{"SD 1.x txt2img 512 px, DPM++ 2M, " + std::to_string(c.steps) + " steps, CFG, " + std::to_string(c.images) +
                " image(s), fp16",
            sync_time(1, repeat, [&] { sd->generate(g); })};
      r.peak_mib = cuda_peak_mib();
      r.note = std::string("diffusers: ") + c.diffusers + "; peak = allocator peak";
      rows.push_back(r);
    }
    {
      torch::AutoGradMode grad(true);
      for (int res : {512, 256}) {
        Row r = train_row(*sd, res, 3, repeat * 5, "SD 1.x LoRA training step, " + std::to_string(res) +
                                                       " px, batch 1, fp16 weights, fp32 LoRA");
        r.note = res == 512 ? "diffusers: 0.162 s, 3.2 GiB" : "diffusers: 0.146 s";
        rows.push_back(r);
      }
      Row r = train_row(*sd, 512, 3, repeat * 5, "  same, 512 px, gradient checkpointing", true);
      r.note = "recomputes the UNet blocks in backward";
      rows.push_back(r);
    }
    {
      // Experiment: the CFG UNet step captured as a CUDA graph and replayed (launch overhead gone).
      Row r{"SD 1.x UNet step as a CUDA graph, batch 2, fp16 (experiment)", {}};
#ifdef BIOESP_BENCH_CUDA_GRAPHS
      try {
        auto x = torch::randn({2, 4, 64, 64}, torch::TensorOptions().device(dev).dtype(torch::kFloat16));
        auto ctx = torch::randn({2, 77, 768}, torch::TensorOptions().device(dev).dtype(torch::kFloat16));
        auto t = torch::tensor({999.0, 999.0}).to(dev);
        auto ref = sd->unet()->forward(x, t, ctx);
        at::cuda::CUDAGraph graph;
        torch::Tensor out;
        auto stream = c10::cuda::getStreamFromPool();
        {
          c10::cuda::CUDAStreamGuard guard(stream);
          for (int i = 0; i < 3; ++i) sd->unet()->forward(x, t, ctx);
          stream.synchronize();
          graph.capture_begin();
          out = sd->unet()->forward(x, t, ctx);
          graph.capture_end();
        }
        torch::cuda::synchronize();
        r.seconds = sync_time(3, repeat * 5, [&] { graph.replay(); });
        char note[80];
        std::snprintf(note, sizeof note, "vs eager: relative L2 %.2g", ((out - ref).norm() / ref.norm()).item<double>());
        r.note = note;
      } catch (const std::exception& e) {
        r.note = std::string("failed: ") + std::string(e.what()).substr(0, 100);
      }
#else
      r.note = "not built: no CUDA runtime headers";
#endif
      rows.push_back(r);
    }
    sd.reset();
    rows.push_back(graph_train_row(dev, repeat));
  }
  print(rows);
  return 0;
}

// ------------------------------------------------------------------------------------------------
// Training across processes: one global batch on 1 and on N ranks (Gloo over the loopback).

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  int port = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                     getsockname(s, reinterpret_cast<sockaddr*>(&a), &n) == 0 ? ntohs(a.sin_port) : -1;
  close(s);
  return port;
}

// bench train-rank RANK WORLD PORT RES BATCH REPEAT THREADS FULL (internal): one rank of
// ranks_row timing LoRA steps on `batch` random samples, the gradients averaged over the ranks;
// rank 0 prints its seconds per step and those spent waiting for the all-reduce, as JSON.
int train_rank(char** argv) {
  const int rank = std::atoi(argv[0]), world = std::atoi(argv[1]), port = std::atoi(argv[2]), res = std::atoi(argv[3]),
            batch = std::atoi(argv[4]), repeat = std::atoi(argv[5]), threads = std::atoi(argv[6]);
  const bool full = std::strcmp(argv[7], "1") == 0;
  torch::set_num_threads(threads);
  auto sd = full ? sd1_random(torch::kCPU, torch::kFloat32) : pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {});
  train::DistributedOptions d;
  d.world_size = world, d.rank = rank, d.local_rank = rank, d.master_port = port, d.backend = "gloo", d.timeout = 600;
  train::Group group(d, torch::kCPU);
  train::Trainer tr(*sd, {});
  std::vector<torch::Tensor> params;
  for (const auto& p : tr.parameters()) params.push_back(p.second);
  train::GradientAverage average(group, params);
  at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(rank));
  const train::StepInputs in = random_inputs(*sd, res, batch, gen);
  std::vector<double> step, wait;
  for (int i = 0; i <= repeat; ++i) {  // the first is a warm-up
    const auto t0 = std::chrono::steady_clock::now();
    average.arm();
    tr.backward(in, 1);
    const double waited = average.finish();
    tr.update(1e-4);
    if (i == 0) continue;
    step.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    wait.push_back(waited);
  }
  if (rank == 0) std::printf("%s\n", json{{"step", step}, {"wait", wait}}.dump().c_str());
  return 0;
}

// `world` processes of global / world samples each, on `threads` intra-op threads each.
Row ranks_row(int world, int threads, int global, int res, bool full, int repeat) {
  const int port = free_port();
  int out[2];
  if (port < 0 || pipe(out) != 0) throw std::runtime_error("no port or pipe for the ranks");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> a = {"bench", "train-rank", std::to_string(r), std::to_string(world), std::to_string(port),
                                  std::to_string(res), std::to_string(global / world), std::to_string(repeat),
                                  std::to_string(threads), full ? "1" : "0"};
    std::vector<char*> argv;
    for (auto& x : a) argv.push_back(x.data());
    argv.push_back(nullptr);
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ) != 0) throw std::runtime_error("cannot start a rank");
    pids.push_back(pid);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("a rank failed");
  }
  const json j = json::parse(text);
  Row r{std::string(full ? "SD 1.x" : "tiny") + " LoRA, " + std::to_string(res) + " px, global batch " + std::to_string(global) +
            ": " + std::to_string(world) + " × " + std::to_string(global / world) + ", " + std::to_string(threads) + " thr",
        j["step"].get<std::vector<double>>()};
  auto wait = j["wait"].get<std::vector<double>>();
  std::sort(wait.begin(), wait.end());
  auto sorted = r.seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  char note[160];
  std::snprintf(note, sizeof note, "%.2f samples/s", global / median);
  r.note = note;
  if (world > 1) {
    std::snprintf(note, sizeof note, "; all-reduce wait %.1f%% of the step", 100 * wait[wait.size() / 2] / median);
    r.note += note;
  }
  return r;
}

}  // namespace

// Times `fn` (median of `repeat` after one warm-up), then profiles one more call.
void profile_rows(const std::string& what, int repeat, const std::function<void()>& fn) {
  auto s = time_it(1, repeat, fn);
  std::sort(s.begin(), s.end());
  std::printf("\n%s: median %.3f s of %d (min %.3f, max %.3f), peak RSS %.0f MiB\n", what.c_str(), s[s.size() / 2], repeat,
              s.front(), s.back(), peak_rss_mib());
  bench::OpProfile p;
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  p.print(what + ", profiled", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// bench --profile: the full-size SD 1.x UNet's CFG step and the VAE decode at `px`, random weights.
int profile(int px, int repeat) {
  torch::NoGradGuard no_grad;
  std::printf("%d intra-op threads\n", torch::get_num_threads());
  {
    models::UNet2DConditionModel unet(sd1_unet_config());
    models::initialise_random(*unet, 0);
    auto x = torch::randn({2, 4, px / 8, px / 8}), ctx = torch::randn({2, 77, 768}), t = torch::tensor({999.0, 999.0});
    profile_rows("SD 1.x UNet, " + std::to_string(px) + " px, batch 2 (one CFG step), fp32", repeat,
                 [&] { unet->forward(x, t, ctx); });
  }
  json configs = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
  models::AutoencoderKL vae(config::parse_vae(configs["vae"].dump(), "vae"));
  models::initialise_random(*vae, 0);
  auto z = torch::randn({1, 4, px / 8, px / 8});
  profile_rows("SD 1.x VAE decode, " + std::to_string(px) + " px, fp32", repeat, [&] { vae->decode(z); });
  return 0;
}

int main(int argc, char** argv) {
  torch::set_num_threads(threads::usable_cores());  // what a generation with threads 0 runs with alone
  if (argc == 3 && std::strcmp(argv[1], "load-unet") == 0) return load_unet(argv[2]);
  if (argc == 10 && std::strcmp(argv[1], "train-rank") == 0) return train_rank(argv + 2);
  if (argc == 4 && std::strcmp(argv[1], "weights-child") == 0) return weights_child(argv[2], std::atoi(argv[3]));
  bool full = false, cuda = false, train_only = false, graph_train = false, fast = false, weights = false;
  int vae_px = 0, cfg_px = 0, ranks = 0, profile_px = 0, sdxl_px = 0, tome_px = 0;
  std::string storage = "dtype";
  int repeat = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--full") == 0) full = true;
    else if (std::strcmp(argv[i], "--train") == 0) train_only = true;
    else if (std::strcmp(argv[i], "--graph-train") == 0) graph_train = true;
    else if (std::strcmp(argv[i], "--fast") == 0) fast = true;
    else if (std::strcmp(argv[i], "--weights") == 0) weights = true;
    else if (std::strcmp(argv[i], "--vae") == 0 && i + 1 < argc) vae_px = std::atoi(argv[++i]) / 8 * 8;
    else if (std::strcmp(argv[i], "--cfg") == 0 && i + 1 < argc) cfg_px = std::atoi(argv[++i]) / 8 * 8;
    else if (std::strcmp(argv[i], "--profile") == 0 && i + 1 < argc) profile_px = std::atoi(argv[++i]) / 8 * 8;
    else if (std::strcmp(argv[i], "--sdxl") == 0 && i + 1 < argc) sdxl_px = std::atoi(argv[++i]) / 8 * 8;
    else if (std::strcmp(argv[i], "--tome") == 0 && i + 1 < argc) tome_px = std::atoi(argv[++i]) / 8 * 8;
    else if (std::strcmp(argv[i], "--storage") == 0 && i + 1 < argc) storage = argv[++i];
    else if (std::strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) repeat = std::max(1, std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--ranks") == 0 && i + 1 < argc) ranks = std::max(2, std::atoi(argv[++i]));
    else if (std::strcmp(argv[i], "--device") == 0 && i + 1 < argc) cuda = std::strcmp(argv[++i], "cuda") == 0;
    else { std::fprintf(stderr, "usage: bench [--full] [--train [--ranks N]] [--fast] [--weights] [--vae PX] [--cfg PX] [--profile PX] [--sdxl PX] [--tome PX] [--storage dtype|f16|bf16|int8] [--graph-train] [--repeat N] [--device cpu|cuda]\n"); return 2; }
  }
  if (ranks > 0) {
    if (train::distributed_backends().empty()) {
      std::fprintf(stderr, "bench --ranks: this build cannot train across processes\n");
      return 1;
    }
    // The machine's cores shared between the ranks, and one process on one thread beside them.
    const int cores = threads::usable_cores();
    std::vector<std::pair<int, int>> runs{{1, cores}};  // (processes, threads each)
    if (cores > 1) runs.emplace_back(1, 1);
    runs.emplace_back(ranks, std::max(1, cores / ranks));
    std::vector<Row> rows;
    for (bool big : full ? std::vector<bool>{false, true} : std::vector<bool>{false})
      for (auto [world, threads] : runs) rows.push_back(ranks_row(world, threads, ranks, big ? 256 : 128, big, big ? repeat : repeat * 5));
    print(rows);
    return 0;
  }
  if (cuda && graph_train) {
    at::globalContext().setBenchmarkCuDNN(true);
    print({graph_train_row(torch::Device(torch::kCUDA), repeat)});
    return 0;
  }
  if (cuda) return bench_cuda(full, repeat);
  if (fast) {
    torch::NoGradGuard no_grad;
    std::vector<Row> rows;
    if (const char* embedded = bioesp_embedded_model()) {
      auto sd = pipeline::StableDiffusion::load(embedded, {});
      cache_drift_row(rows, *sd, "embedded model (criaturas), 64 px", 64, 5);
    }
    cache_drift_row(rows, *sd1_random(torch::kCPU, torch::kFloat32), "SD 1.x random weights, 128 px", 128, 7.5);
    for (int px : {256, 512}) fast_rows(rows, px);
    print(rows);
    return 0;
  }
  if (profile_px > 0) return profile(profile_px, repeat);
  if (sdxl_px > 0) {
    std::vector<Row> rows;
    sdxl_rows(rows, sdxl_px, repeat, storage_named(storage), storage);
    print(rows);
    return 0;
  }
  if (tome_px > 0) {
    std::vector<Row> rows;
    tome_rows(rows, tome_px, repeat);
    print(rows);
    return 0;
  }
  if (weights) {
    std::vector<Row> rows;
    weight_rows(rows);
    print(rows);
    return 0;
  }
  if (vae_px > 0) {
    torch::NoGradGuard no_grad;
    json configs = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
    models::AutoencoderKL vae(config::parse_vae(configs["vae"].dump(), "vae"));
    models::initialise_random(*vae, 0);
    std::vector<Row> rows;
    vae_tile_rows(rows, *vae, vae_px, cpu_measure(repeat));
    print(rows);
    return 0;
  }
  if (cfg_px > 0) {
    torch::NoGradGuard no_grad;
    models::UNet2DConditionModel unet{nullptr};
    {
      models::WeightScope weights(storage_named(storage));
      unet = models::UNet2DConditionModel(sd1_unet_config());
    }
    models::initialise_random(*unet, 0);
    if (storage == "int8") models::quantize_linears(*unet);
    std::vector<Row> rows;
    runtime::CpuMemoryScope memory;  // as a generation's denoising runs
    cfg_pair_rows(rows, *unet, cfg_px, repeat);
    rows.back().note += ", weights " + storage;
    print(rows);
    return 0;
  }
  std::vector<Row> rows;
  {
    auto sd = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {});
    Row r = train_row(*sd, 128, 1, repeat * 3, "tiny LoRA training step, 128 px, batch 1, fp32");
    rows.push_back(r);
  }
  if (full) {
    auto sd = sd1_random(torch::kCPU, torch::kFloat32);
    for (int res : {256, 512}) {
      Row r = train_row(*sd, res, res == 256 ? 1 : 0, res == 256 ? repeat : 1,
                        "SD 1.x LoRA training step, " + std::to_string(res) + " px, batch 1, fp32");
      r.note = "peak = process RSS so far";
      rows.push_back(r);
    }
  }
  if (train_only) {
    print(rows);
    return 0;
  }
  torch::NoGradGuard no_grad;
  {
    std::string dir = reference() + "/models/tiny-sd1/unet";
    models::UNet2DConditionModel unet(config::parse_unet(io::read_text_file(dir + "/config.json"), "tiny unet"));
    models::load_state(*unet, io::open_weights(dir, {}), "", "unet");
    auto x = torch::randn({2, 4, 16, 16}), ctx = torch::randn({2, 77, 32}), t = torch::tensor({999.0, 37.0});
    Row r{"tiny UNet forward, 16x16 latents, batch 2, fp32", time_it(2, repeat * 10, [&] { unet->forward(x, t, ctx); })};
    r.peak_mib = peak_rss_mib();
    rows.push_back(r);
    auto net = pipeline::load_controlnet(reference() + "/golden/control/controlnet", "", torch::kCPU, torch::kFloat32, {});
    control_step_rows(rows, "tiny step, 16x16 latents, batch 2, fp32", *unet, *net, x, t, ctx,
                      [&](const std::string& what, const std::function<void()>& fn) {
                        Row row{what, time_it(2, repeat * 10, fn)};
                        row.peak_mib = peak_rss_mib();
                        return row;
                      });
  }
  {
    auto sd = pipeline::StableDiffusion::load(reference() + "/models/tiny-sd1", {});
    pipeline::GenerateOptions g;
    g.prompts = {"criatura especulativa colombiana"};
    g.steps = 25;
    g.scheduler = "dpmpp_2m";
    Row r{"tiny txt2img, 128 px, 25 steps DPM++ 2M, CFG, fp32", time_it(1, repeat, [&] { sd->generate(g); })};
    r.peak_mib = peak_rss_mib();
    r.note = "per image";
    rows.push_back(r);
  }
  if (const char* embedded = bioesp_embedded_model()) {
    auto sd = pipeline::StableDiffusion::load(embedded, {});
    pipeline::GenerateOptions g;
    g.prompts = {"lagarto mariposa"};
    g.steps = 25;
    g.guidance = 5;
    const int threads = torch::get_num_threads();
    for (int n : {threads, 1}) {
      torch::set_num_threads(n);
      Row r{"embedded model (criaturas), 64 px, 25 steps, CFG, " + std::to_string(n) + " thread(s)",
            time_it(1, repeat, [&] { sd->generate(g); })};
      r.peak_mib = peak_rss_mib();
      r.note = "per image, load excluded; target < 3 s on 2 cores";
      rows.push_back(r);
    }
    torch::set_num_threads(threads);
  }
  if (full) {
    json configs = json::parse(io::read_text_file(reference() + "/manifests/configs.json"));
    double text_s = 0, vae_s = 0, step_s = 0;
    {
      models::CLIPTextModel te(config::parse_clip_text(configs["clip_l"].dump(), "clip_l"));
      models::initialise_random(*te, 0);
      auto ids = torch::randint(0, 49408, {2, 77}, torch::kLong);
      Row r{"SD 1.x text encoder (CLIP-L), batch 2 (prompt + negative), fp32", time_it(1, repeat, [&] { te->forward(ids); })};
      r.peak_mib = peak_rss_mib();
      std::sort(r.seconds.begin(), r.seconds.end());
      text_s = r.seconds[r.seconds.size() / 2];
      rows.push_back(r);
    }
    {
      models::AutoencoderKL vae(config::parse_vae(configs["vae"].dump(), "vae"));
      models::initialise_random(*vae, 0);
      const size_t first = rows.size();
      vae_tile_rows(rows, *vae, 512, cpu_measure(repeat));
      auto& r = rows[first];
      r.note = "stable-diffusion.cpp here: 60 s";
      std::sort(r.seconds.begin(), r.seconds.end());
      vae_s = r.seconds[r.seconds.size() / 2];
    }
    {
      models::UNet2DConditionModel unet(sd1_unet_config());
      models::initialise_random(*unet, 0);
      auto x = torch::randn({2, 4, 64, 64}), ctx = torch::randn({2, 77, 768}), t = torch::tensor({999.0, 999.0});
      Row r{"SD 1.x UNet forward, 64x64 latents (512 px), batch 2, fp32", time_it(1, repeat, [&] { unet->forward(x, t, ctx); })};
      r.peak_mib = peak_rss_mib();
      r.note = "one CFG denoising step; stable-diffusion.cpp here: 32 s";
      std::sort(r.seconds.begin(), r.seconds.end());
      step_s = r.seconds[r.seconds.size() / 2];
      rows.push_back(r);
      models::ControlNetModel net(controlnet_config(sd1_unet_config()));
      models::initialise_random(*net, 1);
      control_step_rows(rows, "SD 1.x step, 64x64 latents, batch 2, fp32", *unet, *net, x, t, ctx, cpu_measure(repeat));
      cfg_pair_rows(rows, *unet, 256, repeat);
    }
    Row image{"SD 1.x image, 512 px, 25 steps (text + 25 steps + VAE, from the rows above)",
              {text_s + 25 * step_s + vae_s}};
    image.note = "derived, not timed as one call";
    rows.push_back(image);
    std::string file = "/tmp/bioesp-bench-sd1-unet.fp16.safetensors";
    size_t bytes = write_synthetic_unet(file);
    std::string cmd = std::string("'") + argv[0] + "' load-unet '" + file + "'";
    Row r{"load SD 1.x UNet from fp16 safetensors into fp16 model", {}};
    for (int i = 0; i < repeat; ++i) {
      FILE* p = popen(cmd.c_str(), "r");
      double s = 0, mib = 0;
      if (!p || std::fscanf(p, "%lf %lf", &s, &mib) != 2) {
        std::fprintf(stderr, "bench: %s failed\n", cmd.c_str());
        return 1;
      }
      pclose(p);
      r.seconds.push_back(s);
      r.peak_mib = std::max(r.peak_mib, mib);
    }
    char note[96];
    std::snprintf(note, sizeof note, "file %.0f MiB: peak %.2fx the file", bytes / 1048576.0, r.peak_mib / (bytes / 1048576.0));
    r.note = note;
    rows.push_back(r);
    std::remove(file.c_str());
  }
  print(rows);
  return 0;
}
