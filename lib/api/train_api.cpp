// C entry points for fine-tuning.
#include <cstring>

#include "api/device.h"
#include "api/guard.h"
#include "api/options.h"
#include "core/threads.h"
#include "hub/pull.h"
#include "train/scratch.h"
#include "train/run.h"

using namespace bioesp;

namespace {

// The processes of the run: the options' own, or torchrun's variables when world_size is 0.
train::DistributedOptions distributed_options(const bioesp_train_options& o) {
  train::DistributedOptions d;
  if (o.master_addr) d.master_addr = o.master_addr;
  d.master_port = o.master_port;
  if (o.backend) d.backend = o.backend;
  d.timeout = o.timeout;
  if (o.world_size == 0) return train::from_environment(d);
  d.world_size = o.world_size;
  d.rank = o.process_rank;
  d.local_rank = o.local_rank;
  return d;
}

}  // namespace

extern "C" {

void bioesp_train_options_init(bioesp_train_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->use_captions = 1;
  o->prior_weight = 1.0f;
  o->resolution = 512;
  o->epochs = 1;
  o->batch_size = 1;
  o->grad_accumulation = 1;
  o->learning_rate = 1e-4f;
  o->lr_cycles = 1;
  o->lr_power = 1.0f;
  o->adam_beta1 = 0.9f;
  o->adam_beta2 = 0.999f;
  o->adam_weight_decay = -1.0f;
  o->adam_epsilon = 1e-8f;
  o->max_grad_norm = 1.0f;
  o->rank = 4;
  o->device = BIOESP_DEVICE_CPU;
  o->checkpoints_kept = 3;
  o->validation_steps = 25;
  o->kl_weight = 1e-6f;
  o->master_port = 29500;
  o->timeout = 1800.0f;
  o->adam_weight_decay_text_encoder = -1.0f;
  o->text_encoder_lr = -1.0f;
}

bioesp_status bioesp_train(const bioesp_train_options* options, char** result_path) {
  return guard([&] {
    if (result_path) *result_path = nullptr;
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_TRAIN, options, bioesp_train_options_init);
    require(o.model && o.data && o.out, "model, data and out must be set");
    auto str = [](const char* s) { return s ? std::string(s) : std::string(); };
    train::RunOptions r;
    const io::Logger log = c_logger(o.log, o.log_user);
    r.model = hub::resolve_model(o.model, log);
    r.config_dir = hub::resolve_model(str(o.config_dir), log);
    r.data = o.data;
    r.prompt = str(o.prompt);
    r.use_captions = o.use_captions != 0;
    r.class_data = str(o.class_data);
    r.class_prompt = str(o.class_prompt);
    r.num_class_images = o.num_class_images;
    r.setup.prior_weight = o.prior_weight;
    r.resolution = o.resolution;
    r.random_crop = o.random_crop != 0;
    r.flip = o.flip != 0;
    r.cache_latents = o.cache_latents != 0;
    r.steps = o.steps;
    r.epochs = o.epochs;
    r.batch = o.batch_size;
    r.grad_accum = o.grad_accumulation;
    r.lr = o.learning_rate;
    r.scale_lr = o.scale_lr != 0;
    if (o.lr_scheduler) r.lr_schedule.name = o.lr_scheduler;
    r.lr_schedule.warmup = o.lr_warmup_steps;
    r.lr_schedule.cycles = o.lr_cycles;
    r.lr_schedule.power = o.lr_power;
    r.setup.adam = {o.adam_beta1, o.adam_beta2, o.adam_weight_decay, o.adam_epsilon};
    r.setup.text_encoder_weight_decay = o.adam_weight_decay_text_encoder;
    r.text_encoder_lr = o.text_encoder_lr;
    if (o.vae) r.vae = hub::resolve_model(o.vae, log);
    r.setup.max_grad_norm = o.max_grad_norm;
    r.setup.rank = o.rank;
    r.setup.alpha = o.alpha;
    r.setup.dropout = o.lora_dropout;
    r.setup.train_text_encoder = o.train_text_encoder != 0;
    r.setup.full = o.full != 0;
    r.setup.noise_offset = o.noise_offset;
    r.setup.snr_gamma = o.snr_gamma;
    r.setup.seed = o.seed;
    if (o.mixed_precision) r.mixed_precision = o.mixed_precision;
    r.setup.gradient_checkpointing = o.gradient_checkpointing != 0;
    r.device = device_from(o.device, o.device_index);
    r.checkpoint_every = o.checkpoint_every;
    r.checkpoints_kept = o.checkpoints_kept;
    r.resume = o.resume != 0;
    r.validation_prompt = str(o.validation_prompt);
    r.validation_every = o.validation_every;
    r.validation_steps = o.validation_steps;
    r.save_kohya = o.save_kohya != 0;
    r.setup.vae = o.train_vae != 0;
    r.setup.kl_weight = o.kl_weight;
    r.tag_dropout = o.tag_dropout;
    r.shuffle_tags = o.shuffle_tags != 0;
    r.caption_dropout = o.caption_dropout;
    r.save_dtype = o.save_half ? torch::kFloat16 : torch::kFloat32;
    r.distributed = distributed_options(o);
    r.out = o.out;
    r.log = c_logger(o.log, o.log_user);
    if (o.progress) {
      auto fn = o.progress;
      void* user = o.progress_user;
      r.progress = [fn, user](const train::Progress& p) {
        bioesp_train_progress c{};
        c.struct_size = sizeof c;
        c.stage = p.stage.c_str();
        c.step = p.step;
        c.total = p.total;
        c.loss = p.loss;
        c.learning_rate = p.lr;
        c.seconds_per_step = p.seconds_per_step;
        c.eta_seconds = p.eta_seconds;
        c.world_size = p.world_size;
        c.samples_per_second = p.samples_per_second;
        return fn(user, &c) == 0;
      };
    }
    threads::Share share(o.threads);
    r.progress = [&share, report = std::move(r.progress)](const train::Progress& p) {  // follows the jobs that come and go
      share.apply();
      return !report || report(p);
    };
    std::string result = train::run(r);
    if (result_path) *result_path = dup_string(result);
  });
}

void bioesp_new_model_options_init(bioesp_new_model_options* o) {
  if (!o) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
}

bioesp_status bioesp_new_model(const bioesp_new_model_options* options, char** result_path) {
  return guard([&] {
    if (result_path) *result_path = nullptr;
    require(options != nullptr, "options must not be NULL");
    auto o = read_checked(BIOESP_OPTIONS_NEW_MODEL, options, bioesp_new_model_options_init);
    require(o.configs && o.data && o.out, "configs, data and out must be set");
    train::NewModelOptions n;
    n.configs = o.configs;
    n.data = o.data;
    n.vocab_size = o.vocab_size;
    n.seed = o.seed;
    n.out = o.out;
    n.log = c_logger(o.log, o.log_user);
    std::string path = train::new_model(n);
    if (result_path) *result_path = dup_string(path);
  });
}

}  // extern "C"
