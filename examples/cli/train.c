/* bioesp train, new-model and evaluate: their options from the library's table, a progress bar with the
 * loss, and Ctrl-C, SIGTERM or SIGHUP turned into a clean cancel (checkpoint first); train
 * --nproc N starts N ranks (launch.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

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
  if (interrupted() && !quiet) fprintf(stderr, "\nbioesp: interrupted (signal %d); writing a checkpoint\n", interrupted());
  return interrupted() != 0;
}

/* The ranks after the first say only what is wrong, and which rank says it. */
static void worker_log(void* user, bioesp_log_level level, const char* message) {
  if (level >= BIOESP_LOG_WARNING) fprintf(stderr, "bioesp (rank %d): %s\n", *(const int*)user, message);
}

/* --nproc N: the same command as N workers, --nproc left out and every one on the same seed. */
static int launch(long nproc, int have_seed, bioesp_train_options* o, int argc, char** argv) {
  if (o->world_size > 1 || getenv("WORLD_SIZE")) {
    fprintf(stderr, "bioesp train: --nproc starts the ranks itself: not with --world-size or WORLD_SIZE\n");
    return 2;
  }
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)(have_seed ? o->seed : random_seed()));
  if (!have_seed) fprintf(stderr, "bioesp: seed %s\n", seed);
  char** args = malloc(((size_t)argc + 2) * sizeof *args);
  if (!args) return 1;
  int n = 0;
  for (int i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--nproc") == 0 || strcmp(argv[i], "--seed") == 0) {
      ++i;
      continue;
    }
    args[n++] = argv[i];
  }
  args[n++] = "--seed";
  args[n++] = seed;
  int code = launch_workers((int)nproc, n, args, o->timeout);
  free(args);
  return code;
}

int cmd_train(int argc, char** argv) {
  bioesp_train_options o;
  bioesp_train_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  long nproc = 1;
  cli_int nproc_flag = {&nproc, 1, 4096};
  const cli_flag own[] = {{"quiet", NULL, "no progress bar", cli_switch, &quiet},
                          {"nproc", "N", "train as N processes on this machine, as torchrun --nproc-per-node N (default 1)",
                           cli_integer, &nproc_flag}};
  static const char* const defaults[] = {"model", "$BIOESP_MODEL", "seed", "random (printed)", NULL};
  const cli_command command = {
      "train", "--model DIR|FILE|ID --data DIR --prompt TEXT --out DIR [options]",
      "Fine-tunes with DreamBooth-LoRA (as diffusers' train_dreambooth_lora.py) or, with --full, every UNet\n"
      "weight. Ctrl-C, SIGTERM and SIGHUP write a checkpoint; run again with --resume to continue.\n",
      {{BIOESP_OPTIONS_TRAIN, &o}}, 1, own, 2, NULL, defaults};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  if (!o.model) o.model = getenv("BIOESP_MODEL");
  if (!o.model || !o.data || !o.out) {
    fprintf(stderr, "bioesp train: --model (or BIOESP_MODEL), --data and --out are required\n");
    cli_free(args);
    return 2;
  }
  const int have_seed = cli_given(args, "seed");
  if (nproc > 1) {
    int code = launch(nproc, have_seed, &o, argc, argv);
    cli_free(args);
    return code;
  }
  /* torchrun's variables unless the options say otherwise (as the library reads them). */
  const char* env_world = getenv("WORLD_SIZE");
  const int world = o.world_size > 0 ? o.world_size : env_world ? atoi(env_world) : 1;
  int rank = o.world_size > 0 ? o.process_rank : getenv("RANK") ? atoi(getenv("RANK")) : 0;
  if (world > 1 && !have_seed) {
    fprintf(stderr, "bioesp train: training across processes needs --seed (the same on every rank)\n");
    cli_free(args);
    return 2;
  }
  if (!have_seed) {
    o.seed = random_seed();
    fprintf(stderr, "bioesp: seed %llu\n", (unsigned long long)o.seed);
  }
  cli_free(args);
  if (rank > 0) {
    quiet = 1;
    o.log = worker_log;
    o.log_user = &rank;
  }
  o.progress = train_progress;
  o.progress_user = &quiet;
  catch_interrupts();
  char* result = NULL;
  bioesp_status st = bioesp_train(&o, &result);
  if (st == BIOESP_ERR_CANCELLED) {
    if (rank == 0) fprintf(stderr, "bioesp train: %s\n", bioesp_last_error());  /* once, not once a rank */
    return interrupted_status();
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
  const cli_command command = {
      "new-model", "--configs DIR --data DIR --out DIR [options]",
      "A model folder to train from scratch: weights initialised from the component configs, a CLIP BPE\n"
      "vocabulary learned from the dataset's captions. Then train --train-vae, then train --full\n"
      "--train-text-encoder (scripts/embedded-model/train.sh does it all).\n",
      {{BIOESP_OPTIONS_NEW_MODEL, &o}}, 1, NULL, 0, NULL, NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  cli_free(args);
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

int cmd_evaluate(int argc, char** argv) {
  const char* model_path = getenv("BIOESP_MODEL");
  int json = 0, quiet = 0;
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.log = print_log;
  bioesp_evaluate_options eo;
  bioesp_evaluate_options_init(&eo);
  const cli_flag own[] = {
      {"model", "DIR|FILE|ID", "the model (default $BIOESP_MODEL, else the embedded model)", cli_text, &model_path},
      {"json", NULL, "print the result as one JSON object on stdout", cli_switch, &json},
      {"quiet", NULL, "no line per picture", cli_switch, &quiet}};
  const cli_command command = {
      "evaluate", "--data DIR [--classify K] [options]",
      "A model's grip on captioned pictures it did not train on: its mean denoising loss with their\n"
      "captions and, with --classify K, the diffusion classifier's top-1 accuracy among K captions\n"
      "(Li et al. 2023): the same fixed timesteps and noises for every caption, the lowest loss wins.\n",
      {{BIOESP_OPTIONS_MODEL, &mo}, {BIOESP_OPTIONS_EVALUATE, &eo}}, 2, own, sizeof own / sizeof own[0], NULL, NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  cli_free(args);
  if (!eo.data) {
    fprintf(stderr, "bioesp evaluate: --data is required\n");
    return 2;
  }
  if (!(model_path = model_or_embedded("evaluate", model_path))) return 2;
  if (!quiet) eo.log = print_log;
  bioesp_model* model = NULL;
  if (bioesp_model_load(model_path, &mo, &model) != BIOESP_OK) return fail_with("evaluate");
  bioesp_evaluation r;
  r.struct_size = sizeof r;
  const bioesp_status st = bioesp_evaluate(model, &eo, &r);
  bioesp_model_free(model);
  if (st != BIOESP_OK) return fail_with("evaluate");
  if (json) {
    printf("{\"pictures\": %d, \"candidates\": %d, \"timesteps\": %d, \"noises\": %d, \"seed\": %llu, \"loss\": %.6f, "
           "\"accuracy\": ", r.pictures, eo.classify, eo.timesteps, eo.noises, (unsigned long long)eo.seed, r.loss);
    if (eo.classify) printf("%.6f}\n", r.accuracy);
    else printf("null}\n");
  } else {
    printf("%d pictures: mean denoising loss %.4f", r.pictures, r.loss);
    if (eo.classify)
      printf("; top-1 accuracy among %d captions %.3f (%d right; chance %.3f)", eo.classify, r.accuracy,
             (int)(r.accuracy * r.pictures + 0.5), 1.0 / eo.classify);
    printf("\n");
  }
  return 0;
}
