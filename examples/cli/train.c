/* bioesp train: option parsing over bioesp_train_options, a progress bar with the loss, and
 * Ctrl-C turned into a clean cancel (checkpoint first); --nproc N starts N ranks (launch.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int train_progress(void* user, const bioesp_train_progress* p) {
  int quiet = *(const int*)user;
  if (!quiet) {
    if (strcmp(p->stage, "train") == 0) {
      int width = 24, filled = p->total ? p->step * width / p->total : 0;
      fprintf(stderr, "\r[");
      for (int i = 0; i < width; ++i) fputc(i < filled ? '#' : '.', stderr);
      fprintf(stderr, "] %d/%d  loss %.4f  lr %.2e  %.2f s/step  %.1f samples/s  eta %.0f s", p->step, p->total,
              p->loss, p->learning_rate, p->seconds_per_step, p->samples_per_second, p->eta_seconds);
      if (p->world_size > 1) fprintf(stderr, "  %d processes", p->world_size);
      fprintf(stderr, "   ");
      if (p->step == p->total) fputc('\n', stderr);
    } else if (p->total > 0) {
      fprintf(stderr, "\r%s %d/%d   ", p->stage, p->step + 1, p->total);
    } else {
      fprintf(stderr, "bioesp: %s\n", p->stage);
    }
  }
  if (interrupted() && !quiet) fprintf(stderr, "\nbioesp: interrupted; writing a checkpoint\n");
  return interrupted();
}

/* The ranks after the first say only what is wrong, and which rank says it. */
static void worker_log(void* user, bioesp_log_level level, const char* message) {
  if (level >= BIOESP_LOG_WARNING) fprintf(stderr, "bioesp (rank %d): %s\n", *(const int*)user, message);
}

enum kind { INT, FLOAT, TEXT, FLAG, CLEAR };
struct option_spec {
  const char* flag;
  enum kind kind;
  void* target;
};

int cmd_train(int argc, char** argv) {
  bioesp_train_options o;
  bioesp_train_options_init(&o);
  o.log = print_log;
  int quiet = 0, have_seed = 0, nproc = 1;
  const char* device = "cpu";
  const struct option_spec specs[] = {
      {"--model", TEXT, &o.model}, {"--config", TEXT, &o.config_dir}, {"--data", TEXT, &o.data},
      {"--prompt", TEXT, &o.prompt}, {"--no-captions", CLEAR, &o.use_captions},
      {"--class-data", TEXT, &o.class_data}, {"--class-prompt", TEXT, &o.class_prompt},
      {"--prior-weight", FLOAT, &o.prior_weight}, {"--num-class-images", INT, &o.num_class_images},
      {"--resolution", INT, &o.resolution}, {"--random-crop", FLAG, &o.random_crop}, {"--flip", FLAG, &o.flip},
      {"--cache-latents", FLAG, &o.cache_latents}, {"--steps", INT, &o.steps}, {"--epochs", INT, &o.epochs},
      {"--batch", INT, &o.batch_size}, {"--grad-accum", INT, &o.grad_accumulation},
      {"--lr", FLOAT, &o.learning_rate}, {"--scale-lr", FLAG, &o.scale_lr},
      {"--lr-scheduler", TEXT, &o.lr_scheduler}, {"--warmup", INT, &o.lr_warmup_steps},
      {"--lr-cycles", INT, &o.lr_cycles}, {"--lr-power", FLOAT, &o.lr_power},
      {"--adam-beta1", FLOAT, &o.adam_beta1}, {"--adam-beta2", FLOAT, &o.adam_beta2},
      {"--weight-decay", FLOAT, &o.adam_weight_decay}, {"--adam-epsilon", FLOAT, &o.adam_epsilon},
      {"--max-grad-norm", FLOAT, &o.max_grad_norm}, {"--rank", INT, &o.rank}, {"--alpha", FLOAT, &o.alpha},
      {"--lora-dropout", FLOAT, &o.lora_dropout}, {"--train-text-encoder", FLAG, &o.train_text_encoder},
      {"--full", FLAG, &o.full}, {"--noise-offset", FLOAT, &o.noise_offset}, {"--snr-gamma", FLOAT, &o.snr_gamma},
      {"--mixed-precision", TEXT, &o.mixed_precision}, {"--gradient-checkpointing", FLAG, &o.gradient_checkpointing}, {"--checkpoint-every", INT, &o.checkpoint_every},
      {"--checkpoints-kept", INT, &o.checkpoints_kept}, {"--resume", FLAG, &o.resume},
      {"--validation-prompt", TEXT, &o.validation_prompt}, {"--validation-every", INT, &o.validation_every},
      {"--validation-steps", INT, &o.validation_steps}, {"--kohya", FLAG, &o.save_kohya}, {"--out", TEXT, &o.out},
      {"--device", TEXT, &device}, {"--threads", INT, &o.threads}, {"--quiet", FLAG, &quiet},
      {"--train-vae", FLAG, &o.train_vae}, {"--kl-weight", FLOAT, &o.kl_weight},
      {"--tag-dropout", FLOAT, &o.tag_dropout}, {"--shuffle-tags", FLAG, &o.shuffle_tags},
      {"--caption-dropout", FLOAT, &o.caption_dropout}, {"--save-half", FLAG, &o.save_half},
      {"--nproc", INT, &nproc}, {"--world-size", INT, &o.world_size}, {"--process-rank", INT, &o.process_rank},
      {"--local-rank", INT, &o.local_rank}, {"--master-addr", TEXT, &o.master_addr},
      {"--master-port", INT, &o.master_port}, {"--backend", TEXT, &o.backend}, {"--timeout", FLOAT, &o.timeout}};
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--seed") == 0 && i + 1 < argc) {
      char* end;
      const char* v = argv[++i];
      o.seed = strtoull(v, &end, 10);
      if (!*v || *end || v[0] == '-') { fprintf(stderr, "bioesp train: --seed needs a non-negative integer\n"); return 2; }
      have_seed = 1;
      continue;
    }
    const struct option_spec* s = NULL;
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; ++k)
      if (strcmp(a, specs[k].flag) == 0) s = &specs[k];
    if (!s) { fprintf(stderr, "bioesp train: unknown option %s\n", a); return 2; }
    if (s->kind == FLAG) { *(int*)s->target = 1; continue; }
    if (s->kind == CLEAR) { *(int*)s->target = 0; continue; }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp train: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    double d;
    if (s->kind == TEXT) *(const char**)s->target = v;
    else if (s->kind == INT) { if (!parse_long(a, v, &n)) return 2; *(int*)s->target = (int)n; }
    else { if (!parse_double(a, v, &d)) return 2; *(float*)s->target = (float)d; }
  }
  if (!o.model) o.model = getenv("BIOESP_MODEL");
  if (!o.model || !o.data || !o.out) {
    fprintf(stderr, "bioesp train: --model (or BIOESP_MODEL), --data and --out are required\n");
    return 2;
  }
  if (strcmp(device, "cpu") == 0) o.device = BIOESP_DEVICE_CPU;
  else if (strcmp(device, "cuda") == 0) o.device = BIOESP_DEVICE_CUDA;
  else { fprintf(stderr, "bioesp train: --device is cpu or cuda\n"); return 2; }
  if (nproc > 1) {
    if (o.world_size > 1 || getenv("WORLD_SIZE")) { fprintf(stderr, "bioesp train: --nproc starts the ranks itself: not with --world-size or WORLD_SIZE\n"); return 2; }
    /* Every rank on the same seed: the workers get it as an argument. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(have_seed ? o.seed : random_seed()));
    if (!have_seed) fprintf(stderr, "bioesp: seed %s\n", seed);
    char** args = malloc(((size_t)argc + 2) * sizeof *args);
    if (!args) return 1;
    int n = 0;
    for (int i = 0; i < argc; ++i) {
      if (strcmp(argv[i], "--nproc") == 0 || strcmp(argv[i], "--seed") == 0) { ++i; continue; }
      args[n++] = argv[i];
    }
    args[n++] = "--seed";
    args[n++] = seed;
    int code = launch_workers(nproc, n, args, o.timeout);
    free(args);
    return code;
  }
  if (nproc < 1) { fprintf(stderr, "bioesp train: --nproc is at least 1\n"); return 2; }
  const char* env_world = getenv("WORLD_SIZE");
  const int world = o.world_size > 0 ? o.world_size : env_world ? atoi(env_world) : 1;
  int rank = o.world_size > 0 ? o.process_rank : getenv("RANK") ? atoi(getenv("RANK")) : 0;
  if (world > 1 && !have_seed) { fprintf(stderr, "bioesp train: training across processes needs --seed (the same on every rank)\n"); return 2; }
  if (!have_seed) {
    o.seed = random_seed();
    fprintf(stderr, "bioesp: seed %llu\n", (unsigned long long)o.seed);
  }
  if (rank > 0) {
    quiet = 1;
    o.log = worker_log;
    o.log_user = &rank;
  }
  o.progress = train_progress;
  o.progress_user = &quiet;
  catch_sigint();
  char* result = NULL;
  bioesp_status st = bioesp_train(&o, &result);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "bioesp train: %s\n", bioesp_last_error());
    return 130;
  }
  if (st != BIOESP_OK) return fail_with("train");
  fprintf(stderr, "bioesp: wrote %s\n", result);
  bioesp_string_free(result);
  return 0;
}

int cmd_new_model(int argc, char** argv) {
  bioesp_new_model_options o;
  bioesp_new_model_options_init(&o);
  o.log = print_log;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (i + 1 >= argc) { fprintf(stderr, "bioesp new-model: unknown option or missing value: %s\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    if (strcmp(a, "--configs") == 0) o.configs = v;
    else if (strcmp(a, "--data") == 0) o.data = v;
    else if (strcmp(a, "--out") == 0) o.out = v;
    else if (strcmp(a, "--vocab-size") == 0) { if (!parse_long(a, v, &n)) return 2; o.vocab_size = (int)n; }
    else if (strcmp(a, "--seed") == 0) { if (!parse_long(a, v, &n) || n < 0) return 2; o.seed = (uint64_t)n; }
    else { fprintf(stderr, "bioesp new-model: unknown option %s\n", a); return 2; }
  }
  if (!o.configs || !o.data || !o.out) {
    fprintf(stderr, "bioesp new-model: --configs, --data and --out are required\n");
    return 2;
  }
  char* result = NULL;
  if (bioesp_new_model(&o, &result) != BIOESP_OK) return fail_with("new-model");
  fprintf(stderr, "bioesp: wrote %s\n", result);
  bioesp_string_free(result);
  return 0;
}
