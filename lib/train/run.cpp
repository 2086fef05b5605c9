#include "train/run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "image/image_io.h"
#include "runtime/cpu_memory.h"
#include "io/file.h"
#include "train/batches.h"
#include "train/captured_step.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/distributed.h"

namespace bioesp::train {

namespace {

using Clock = std::chrono::steady_clock;
using Stage = std::function<void(const char*, int, int)>;

std::string shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string format_step(const char* pattern, int step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, step);
  return buf;
}

void check_options(const RunOptions& o) {
  auto bad = [](const std::string& m) { fail(BIOESP_ERR_INVALID_ARGUMENT, m); };
  if (o.model.empty()) bad("no model given");
  if (o.data.empty()) bad("no instance data folder given");
  if (o.out.empty()) bad("no output folder given");
  if (o.resolution < 8 || o.resolution % 8) bad("resolution must be a positive multiple of 8 (got " + std::to_string(o.resolution) + ")");
  if (o.steps < 0 || o.epochs < 1) bad("steps must be ≥ 0 and epochs ≥ 1");
  if (o.batch < 1 || o.grad_accum < 1) bad("batch size and gradient accumulation must be ≥ 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) bad("learning rate must be a positive number");
  if (!std::isfinite(o.text_encoder_lr)) bad("the text encoders' learning rate must be a number");
  if (!o.vae.empty() && o.setup.vae) bad("--vae replaces the frozen VAE that encodes the pictures; VAE training trains the model's");
  if (o.mixed_precision != "no" && o.mixed_precision != "fp16" && o.mixed_precision != "bf16")
    bad("mixed precision is no, fp16 or bf16 (got '" + o.mixed_precision + "')");
  if (o.mixed_precision == "fp16" && o.device.is_cpu()) bad("fp16 training needs CUDA; on the CPU use bf16 or no");
  if ((o.setup.full || o.setup.vae) && o.mixed_precision != "no")
    bad("full and VAE training keep float32 weights; use --mixed-precision no (LoRA trains in fp16/bf16)");
  for (double p : {o.tag_dropout, o.caption_dropout})
    if (!(p >= 0 && p < 1)) bad("tag and caption dropout are probabilities in [0, 1)");
  if (o.save_dtype != torch::kFloat32 && o.save_dtype != torch::kFloat16 && o.save_dtype != torch::kBFloat16)
    bad("model folders are saved in float32, float16 or bfloat16");
  if (!o.class_data.empty() && o.class_prompt.empty()) bad("a class folder needs a class prompt");
  if (o.setup.vae && (o.cache_latents || !o.class_data.empty())) bad("VAE training takes neither cached latents nor class images");
  if (o.checkpoint_every < 0 || o.validation_every < 0) bad("checkpoint and validation intervals must be ≥ 0");
  validate(o.lr_schedule);
  validate(o.distributed);
}

// The folder with the model's component configs, which must hold its noise schedule.
std::string config_folder(const RunOptions& o) {
  const std::string dir = io::is_directory(o.model) ? o.model : o.config_dir;
  if (dir.empty() || !io::is_file(dir + "/scheduler/scheduler_config.json"))
    fail(BIOESP_ERR_NOT_FOUND, (dir.empty() ? o.model : dir) +
                                   ": training needs the model's noise schedule (scheduler/scheduler_config.json)");
  return dir;
}

std::unique_ptr<pipeline::StableDiffusion> load_model(const RunOptions& o) {
  pipeline::LoadOptions lo;
  lo.config_dir = o.config_dir;
  lo.device = o.device;
  lo.dtype = o.mixed_precision == "fp16" ? torch::kFloat16 : o.mixed_precision == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  lo.log = o.log;
  lo.vae = o.vae;
  auto sd = pipeline::StableDiffusion::load(o.model, lo);
  if (sd->tiny_vae())
    fail(BIOESP_ERR_UNSUPPORTED, o.vae + ": a tiny autoencoder (TAESD) only approximates the VAE's latents; training "
                                         "encodes with a full AutoencoderKL (e.g. madebyollin/sdxl-vae-fp16-fix)");
  // As train_dreambooth_lora_sdxl.py keeps it, a --vae one too: SDXL's VAE overflows in float16.
  if (sd->sdxl()) sd->vae()->to(torch::kFloat32);
  if (!o.vae.empty() && o.log)
    o.log(BIOESP_LOG_INFO, "pictures encoded by " + o.vae + ", latents × its scaling factor " +
                               shortest(sd->vae()->config().scaling_factor));
  return sd;
}

DatasetOptions dataset_options(const RunOptions& o) {
  DatasetOptions d;
  d.resolution = o.resolution;
  d.prompt = o.prompt;
  d.use_captions = o.use_captions;
  return d;
}

// One picture with the model as it is now (class images, validation), written as PNG.
void draw(const RunOptions& o, pipeline::StableDiffusion& sd, const std::string& prompt, uint64_t seed, int size,
          const std::string& path) {
  pipeline::GenerateOptions g;
  g.prompts = {prompt};
  g.steps = o.validation_steps;
  g.seed = seed;
  g.width = g.height = size;
  image::write_png(path, pipeline::to_images(sd.generate(g))[0]);
}

// Prior preservation's class images: missing ones come from the base model itself, as
// diffusers' script makes them.
void make_class_images(const RunOptions& o, pipeline::StableDiffusion& sd, const Stage& stage) {
  if (o.class_data.empty()) return;
  io::make_directories(o.class_data);
  int have = 0;
  for (const auto& n : io::list_directory(o.class_data)) have += image::is_image_file_name(n);
  for (int i = have; i < o.num_class_images; ++i) {
    stage("class-images", i - have, o.num_class_images - have);
    draw(o, sd, o.class_prompt, o.setup.seed + static_cast<uint64_t>(i), o.resolution,
         o.class_data + "/" + format_step("class-%05d.png", i));
  }
}

std::vector<Example> class_images(const RunOptions& o) {
  if (o.class_data.empty()) return {};
  DatasetOptions c = dataset_options(o);
  c.prompt = o.class_prompt;
  c.use_captions = false;
  return load_examples(o.class_data, c, nullptr);
}

// What every rank must agree on, one setting a line: all that changes the arithmetic or when the
// ranks meet.
std::string settings_of(const RunOptions& o) {
  std::ostringstream s;
  const Setup& u = o.setup;
  s << "model " << o.model << "\ndata " << o.data << " " << dataset_fingerprint(o.data) << "\nprompt " << o.prompt
    << "\nclass data " << o.class_data << " " << o.class_prompt << " " << o.num_class_images << "\nresolution "
    << o.resolution << "\nsteps " << o.steps << " epochs " << o.epochs << "\nbatch " << o.batch << " accumulation "
    << o.grad_accum << "\nlearning rate " << o.lr << (o.scale_lr ? " scaled" : "") << " " << o.lr_schedule.name << " "
    << o.lr_schedule.warmup << " " << o.lr_schedule.cycles << " " << o.lr_schedule.power << "\nseed " << u.seed
    << "\nmode " << (u.vae ? "vae" : u.full ? "full" : "lora") << (u.train_text_encoder ? " text-encoder" : "")
    << " rank " << u.rank << " alpha " << u.alpha << " dropout " << u.dropout << "\nadam " << u.adam.beta1 << " "
    << u.adam.beta2 << " " << u.adam.weight_decay << " " << u.text_encoder_weight_decay << " " << u.adam.eps
    << " clip " << u.max_grad_norm << " text encoder rate " << o.text_encoder_lr << "\nvae " << o.vae
    << "\nobjective " << u.prior_weight << " " << u.noise_offset << " " << u.snr_gamma << " " << u.kl_weight
    << "\nmixed precision " << o.mixed_precision << (u.gradient_checkpointing ? " checkpointed" : "")
    << "\npictures " << o.random_crop << o.flip << o.use_captions << o.cache_latents << " " << o.tag_dropout << " "
    << o.shuffle_tags << " " << o.caption_dropout << "\ncheckpoints every " << o.checkpoint_every
    << (o.resume ? " resumed" : "") << "\nvalidation every " << o.validation_every << " "
    << !o.validation_prompt.empty() << " " << o.validation_steps << "\n";
  return s.str();
}

// A validation picture of the model at `step` (none when the UNet does not train).
void validate(const RunOptions& o, pipeline::StableDiffusion& sd, int step, int total, const Stage& stage) {
  if (o.validation_prompt.empty() || o.setup.vae) return;
  stage("validate", step, total);
  io::make_directories(o.out + "/validation");
  draw(o, sd, o.validation_prompt, o.setup.seed, 0, o.out + "/validation/" + format_step("step-%06d.png", step));
}

// One optimizer step: `accumulation` micro-batches through the loss and backward, the gradients
// averaged across the processes during the last backward pass, then clipping and AdamW. On CUDA
// with BIOESP_CUDA_GRAPHS=1 a step of one process runs as one captured graph where the setup
// allows (see CapturedStep): opt-in while its final losses differ from eager training's by more
// than eager runs in different precisions differ from each other (docs/performance.md).
class Steps {
 public:
  Steps(Trainer& tr, GradientAverage& average, int accumulation, io::Logger log)
      : tr_(tr), average_(average), accumulation_(accumulation), log_(std::move(log)) {
    const char* graphs = std::getenv("BIOESP_CUDA_GRAPHS");
    try_capture_ = tr.device().is_cuda() && graphs && std::string(graphs) == "1";
  }

  // This process's mean loss of the step and the gradient norm before clipping.
  std::pair<double, double> run(Batches& batches, RunState& st, at::Generator& gen, double lr, double text_encoder_lr) {
    double loss = 0, norm = 0;
    for (int a = 0; a < accumulation_; ++a) {
      StepInputs in = batches.next(st.data, st.prior, gen);
      if (try_capture_) capture(in);
      if (captured_) {
        std::tie(loss, norm) = captured_->run(in, lr);
        continue;
      }
      if (a == accumulation_ - 1) average_.arm();
      loss += tr_.backward(in, accumulation_, &gen) / accumulation_;
    }
    if (!captured_) {
      average_.finish();
      norm = tr_.update(lr, text_encoder_lr);
    }
    return {loss, norm};
  }

 private:
  void capture(const StepInputs& in) {
    try_capture_ = false;
    const std::string why =
        average_.active() ? "the gradients are averaged across processes" : CapturedStep::unsupported(tr_, accumulation_);
    if (!why.empty()) {
      if (log_) log_(BIOESP_LOG_INFO, "training steps run eagerly: " + why);
      return;
    }
    try {
      captured_ = std::make_unique<CapturedStep>(tr_, in);
      if (log_) log_(BIOESP_LOG_INFO, "training steps run as a captured CUDA graph");
    } catch (const std::exception& e) {
      if (log_) log_(BIOESP_LOG_WARNING, std::string("capturing the training step failed; training eagerly: ") + e.what());
    }
  }

  Trainer& tr_;
  GradientAverage& average_;
  int accumulation_;
  io::Logger log_;
  bool try_capture_;
  std::unique_ptr<CapturedStep> captured_;
};

// Every rank starts where rank 0 does, as DDP's first broadcast: its trained tensors and AdamW
// moments (fresh or resumed), the step, the data orders and the loss scaler. Its generator is its
// own state from the checkpoint when the run continues exactly (`rngs`, on rank 0), else drawn
// from the run's seed, its rank and the step, so no two ranks draw the same noise.
at::Generator start_together(Group& group, Trainer& tr, RunState& st, const std::vector<torch::Tensor>& rngs,
                             uint64_t seed) {
  std::vector<torch::Tensor> tensors;
  for (size_t i = 0; i < tr.parameters().size(); ++i)
    tensors.insert(tensors.end(), {tr.parameters()[i].second, tr.optimizer().exp_avg()[i], tr.optimizer().exp_avg_sq()[i]});
  auto counts = torch::tensor({int64_t{st.step}, tr.optimizer().steps(), st.data.epoch, st.data.position, st.prior.epoch,
                               st.prior.position, int64_t{tr.scaler().state_growth()}, static_cast<int64_t>(rngs.size())});
  auto scale = torch::tensor({tr.scaler().state_scale()}, torch::kDouble);
  tensors.insert(tensors.end(), {counts, scale});
  {
    torch::NoGradGuard no_grad;
    group.broadcast(tensors);
  }
  const auto* c = counts.data_ptr<int64_t>();
  st.step = static_cast<int>(c[0]);
  tr.optimizer().set_steps(c[1]);
  st.data.epoch = c[2], st.data.position = c[3], st.prior.epoch = c[4], st.prior.position = c[5];
  tr.scaler().restore(scale.item<double>(), static_cast<int>(c[6]));
  at::Generator gen = at::detail::createCPUGenerator(seed + static_cast<uint64_t>(group.rank()) +
                                                     (static_cast<uint64_t>(st.step) << 32));
  if (c[7] == group.size()) {
    auto all = group.rank() == 0 ? torch::stack(rngs) : torch::empty({c[7], gen.get_state().numel()}, torch::kUInt8);
    group.broadcast({all});
    gen.set_state(all[group.rank()].clone());
  }
  return gen;
}

// As the Stable Diffusion authors chose 0.18215: the reciprocal of the standard deviation of
// posterior samples of the training images, so the UNet sees latents of unit variance.
void set_scaling_factor(const std::string& out, pipeline::StableDiffusion& sd, const std::vector<Example>& examples,
                        int resolution, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  std::vector<torch::Tensor> samples;
  for (size_t i = 0; i < examples.size(); i += 16) {
    std::vector<torch::Tensor> px;
    for (size_t k = i; k < std::min(examples.size(), i + 16); ++k) px.push_back(pixels(examples[k], resolution, false, false, gen));
    auto post = sd.vae()->encode(torch::stack(px).to(sd.device()));
    samples.push_back(post.sample(at::randn(post.mean.sizes(), gen).to(sd.device())).cpu());
  }
  const double std = torch::cat(samples).std().item<double>();
  if (!(std > 0) || !std::isfinite(std)) fail(BIOESP_ERR_INTERNAL, "the trained VAE's latents have no spread; train longer or lower the rate");
  const std::string path = out + "/vae/config.json";
  auto j = nlohmann::ordered_json::parse(io::read_text_file(path));
  j["scaling_factor"] = 1.0 / std;
  io::write_text_file(path, j.dump(2) + "\n");
}

// The text encoders' base rate as train_dreambooth_lora_sdxl.py takes --text_encoder_lr (default
// 5e-6, 0 the UNet's); train_dreambooth_lora.py has one rate for all.
double text_encoder_rate(const RunOptions& o, bool sdxl, double base_lr) {
  if (o.text_encoder_lr > 0) return o.text_encoder_lr;
  return o.text_encoder_lr < 0 && sdxl ? 5e-6 : base_lr;
}

std::string result_path(const RunOptions& o) {
  return o.setup.full || o.setup.vae ? o.out : o.out + "/pytorch_lora_weights.safetensors";
}

// The trained model: a model folder (full, VAE) or the LoRA with its settings as metadata.
std::string save_result(const RunOptions& o, const std::string& config_dir, pipeline::StableDiffusion& sd,
                        const Trainer& tr, const std::vector<Example>& examples, int total, double base_lr) {
  // The dataset's credits travel with the result: `bioesp push` lists them in the model card.
  if (io::is_file(o.data + "/manifest.jsonl")) io::copy_file(o.data + "/manifest.jsonl", o.out + "/dataset_manifest.jsonl");
  const Setup& s = o.setup;
  if (s.full || s.vae) {
    sd.save(o.out, config_dir, o.save_dtype);
    if (s.vae) set_scaling_factor(o.out, sd, examples, o.resolution, s.seed);
    return result_path(o);
  }
  std::vector<std::pair<std::string, std::string>> meta{
      {"format", "pt"},
      {"bioesp.version", bioesp_version_string()},
      {"bioesp.base_model", o.model},
      {"bioesp.rank", std::to_string(s.rank)},
      {"bioesp.alpha", std::to_string(s.alpha > 0 ? s.alpha : s.rank)},
      {"bioesp.prompt", o.prompt},
      {"bioesp.steps", std::to_string(total)},
      {"bioesp.seed", std::to_string(s.seed)},
      {"bioesp.resolution", std::to_string(o.resolution)},
      {"bioesp.dataset", dataset_fingerprint(o.data)},
      {"bioesp.text_encoder", s.train_text_encoder ? "1" : "0"},
      {"bioesp.learning_rate", shortest(base_lr)},
      {"bioesp.lr_scheduler", o.lr_schedule.name},
      {"bioesp.batch_size", std::to_string(o.batch * o.grad_accum * o.distributed.world_size)},
      {"bioesp.mixed_precision", o.mixed_precision}};
  if (!o.vae.empty()) meta.emplace_back("bioesp.vae", o.vae);
  tr.save_lora(result_path(o), meta, false);
  if (o.save_kohya) tr.save_lora(o.out + "/kohya_lora.safetensors", meta, true);
  return result_path(o);
}


// The run of one rank, rank 0 the only one to write.
std::string run_rank(const RunOptions& o, Group& group, const Stage& stage,
                     const std::function<bool(const Progress&)>& report) {
  const bool writer = group.rank() == 0;
  const int world = group.size();
  const std::string config_dir = config_folder(o);
  auto sd = load_model(o);
  auto examples = load_examples(o.data, dataset_options(o), o.log);
  if (examples.size() < 10 && o.log)
    o.log(BIOESP_LOG_WARNING, o.data + ": only " + std::to_string(examples.size()) +
                                  " images; DreamBooth works best with 20–50 varied pictures of the subject");
  std::optional<OutputFolder> folder;
  if (writer) {
    io::make_directories(o.out);
    folder.emplace(o.out, o.log);
  }
  group.rank0_alone([&] { make_class_images(o, *sd, stage); });
  auto prior = class_images(o);
  group.agree("pictures " + std::to_string(examples.size()) + " and " + std::to_string(prior.size()) + " class pictures\n");

  Setup setup = o.setup;
  setup.fp16_loss_scaling = o.mixed_precision == "fp16";
  Trainer tr(*sd, setup);
  const Checkpoints checkpoints(o.out + "/checkpoints", model_fingerprint(*sd), o.checkpoints_kept, o.log);
  const int64_t per_epoch = (DataOrder::share(static_cast<int64_t>(examples.size()), world) + o.batch - 1) / o.batch;
  const int total = o.steps > 0 ? o.steps : static_cast<int>((per_epoch * o.epochs + o.grad_accum - 1) / o.grad_accum);
  LrSchedule schedule = o.lr_schedule;
  schedule.total = total;
  const double base_lr = o.scale_lr ? o.lr * o.batch * o.grad_accum * world : o.lr;
  const double text_encoder_lr = text_encoder_rate(o, sd->sdxl(), base_lr);

  // The data orders are dealt as DistributedSampler does (class images from another seed); each
  // rank draws everything else (crops, noise, timesteps, captions, dropout) from its own generator.
  RunState st;
  st.data_size = static_cast<int64_t>(examples.size()), st.prior_size = static_cast<int64_t>(prior.size());
  st.data.seed = setup.seed, st.prior.seed = setup.seed + (uint64_t{1} << 32);
  st.data.rank = st.prior.rank = group.rank();
  st.data.world = st.prior.world = world;
  std::vector<torch::Tensor> rngs;
  if (o.resume && writer) rngs = checkpoints.resume(tr, st, world, st.data_size, st.prior_size, total).rngs;
  at::Generator gen = start_together(group, tr, st, rngs, setup.seed);
  Batches batches(o, *sd, tr, examples, prior, stage);
  std::optional<TrainLog> log;
  if (writer) log.emplace(o.out + "/train_log.jsonl", st.step);
  std::vector<torch::Tensor> trained;
  for (const auto& p : tr.parameters()) trained.push_back(p.second);
  GradientAverage average(group, trained);
  Steps steps(tr, average, o.grad_accum, o.log);
  auto checkpoint = [&] {
    const auto states = group.gather(gen.get_state());
    group.rank0_alone([&] {
      log->write();  // first: a checkpoint never covers steps the log lacks
      checkpoints.save(tr, st, states);
    });
  };

  const auto started = Clock::now();
  const int first = st.step;
  while (st.step < total) {
    const double lr = learning_rate(schedule, base_lr, st.step);
    const auto [loss_here, norm] = steps.run(batches, st, gen, lr, learning_rate(schedule, text_encoder_lr, st.step));
    ++st.step;
    const double loss = group.average(loss_here);
    if (writer) log->add(st.step, loss, lr, norm);
    Progress p;
    p.stage = "train";
    p.step = st.step, p.total = total, p.loss = loss, p.lr = lr, p.world_size = world;
    p.seconds_per_step = std::chrono::duration<double>(Clock::now() - started).count() / (st.step - first);
    p.eta_seconds = p.seconds_per_step * (total - st.step);
    p.samples_per_second = static_cast<double>(o.batch) * o.grad_accum * world / p.seconds_per_step;
    const bool stop = group.any(!report(p));  // every rank stops at the same step
    if (stop || (o.checkpoint_every > 0 && st.step % o.checkpoint_every == 0 && st.step < total)) checkpoint();
    if (stop) fail(BIOESP_ERR_CANCELLED, "training cancelled at step " + std::to_string(st.step) + "; a checkpoint was written, --resume continues");
    if (o.validation_every > 0 && st.step % o.validation_every == 0 && st.step < total)
      group.rank0_alone([&] { validate(o, *sd, st.step, total, stage); });
  }

  stage("save", total, total);
  group.rank0_alone([&] {
    log->write();
    save_result(o, config_dir, *sd, tr, examples, total, base_lr);
    validate(o, *sd, total, total, stage);
  });
  return result_path(o);
}

}  // namespace

std::string run(const RunOptions& options) {
  check_options(options);
  runtime::CpuMemoryScope memory;
  RunOptions o = options;
  // As torchrun's convention has it, each rank takes its machine's LOCAL_RANK-th GPU.
  if (o.distributed.world_size > 1 && o.device.is_cuda()) {
    const int local = o.distributed.local_rank, gpus = static_cast<int>(torch::cuda::device_count());
    if (local >= gpus)
      fail(BIOESP_ERR_INVALID_ARGUMENT, "local rank " + std::to_string(local) + " takes GPU " + std::to_string(local) +
                                            ", but this machine has " + std::to_string(gpus));
    o.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local));
  }
  auto report = [&](const Progress& p) { return !o.progress || o.progress(p); };
  const Stage stage = [&](const char* name, int done, int total) {
    Progress p;
    p.stage = name, p.step = done, p.total = total, p.world_size = o.distributed.world_size;
    if (!report(p)) fail(BIOESP_ERR_CANCELLED, "training cancelled");
  };
  stage("prepare", 0, 0);
  Group group(o.distributed, o.device);
  if (group.size() > 1) group.agree(settings_of(o));  // alone, the data folder is checked where it is read
  try {
    return run_rank(o, group, stage, report);
  } catch (const std::exception& e) {
    group.announce_failure(e.what());
    throw;
  }
}

}  // namespace bioesp::train
