/* bioesp train and new-model: their options from the library's table, a progress bar with the
 * loss, and Ctrl-C, SIGTERM or SIGHUP turned into a clean cancel (checkpoint first). */
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
      fprintf(stderr, "] %d/%d  loss %.4f  lr %.2e  %.2f s/step  eta %.0f s   ", p->step, p->total, p->loss,
              p->learning_rate, p->seconds_per_step, p->eta_seconds);
      if (p->step == p->total) fputc('\n', stderr);
    } else if (p->total > 0) {
      fprintf(stderr, "\r%s %d/%d   ", p->stage, p->step + 1, p->total);
    } else {
      fprintf(stderr, "bioesp: %s\n", p->stage);
    }
  }
  if (interrupted()) fprintf(stderr, "\nbioesp: interrupted (signal %d); writing a checkpoint\n", interrupted());
  return interrupted() != 0;
}

int cmd_train(int argc, char** argv) {
  bioesp_train_options o;
  bioesp_train_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  const cli_flag own[] = {{"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  static const char* const defaults[] = {"model", "$BIOESP_MODEL", "seed", "random (printed)", NULL};
  const cli_command command = {
      "train", "--model DIR|FILE|ID --data DIR --prompt TEXT --out DIR [options]",
      "Fine-tunes with DreamBooth-LoRA (as diffusers' train_dreambooth_lora.py) or, with --full, every UNet\n"
      "weight. Ctrl-C, SIGTERM and SIGHUP write a checkpoint; run again with --resume to continue.\n",
      {{BIOESP_OPTIONS_TRAIN, &o}}, 1, own, 1, NULL, defaults};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  if (!o.model) o.model = getenv("BIOESP_MODEL");
  if (!o.model || !o.data || !o.out) {
    fprintf(stderr, "bioesp train: --model (or BIOESP_MODEL), --data and --out are required\n");
    cli_free(args);
    return 2;
  }
  if (!cli_given(args, "seed")) {
    o.seed = random_seed();
    fprintf(stderr, "bioesp: seed %llu\n", (unsigned long long)o.seed);
  }
  cli_free(args);
  o.progress = train_progress;
  o.progress_user = &quiet;
  catch_interrupts();
  char* result = NULL;
  bioesp_status st = bioesp_train(&o, &result);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "bioesp train: %s\n", bioesp_last_error());
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
