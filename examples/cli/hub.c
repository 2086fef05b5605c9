/* bioesp pull and bioesp push: the Hugging Face Hub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

int cmd_pull(int argc, char** argv) {
  bioesp_pull_options o;
  bioesp_pull_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  const cli_flag own[] = {{"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  const cli_command command = {
      "pull", "ORG/NAME[@REVISION] [options]",
      "Downloads a model from the Hugging Face Hub into the cache huggingface_hub shares and prints its\n"
      "folder. Without --include, only what a pipeline needs. Every file is verified; interrupted\n"
      "downloads resume. Model ids work wherever a model path does. ORG/NAME is --repo.\n",
      {{BIOESP_OPTIONS_PULL, &o}}, 1, own, 1, "repo", NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  if (!o.repo) {
    fprintf(stderr, "bioesp pull: give a repository, ORG/NAME[@REVISION]\n");
    cli_free(args);
    return 2;
  }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_interrupts();
  char* snapshot = NULL;
  bioesp_status st = bioesp_pull(&o, &snapshot);
  cli_free(args);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp pull: %s (rerun to resume)\n", bioesp_last_error());
    return interrupted_status();
  }
  if (st != BIOESP_OK) return fail_with("pull");
  printf("%s\n", snapshot);
  bioesp_string_free(snapshot);
  return 0;
}

int cmd_push(int argc, char** argv) {
  bioesp_push_options o;
  bioesp_push_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  const cli_flag own[] = {{"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  const cli_command command = {
      "push", "LORA_OR_FOLDER --repo ORG/NAME [options]",
      "Publishes a LoRA or a training output folder, with a model card that credits every dataset\n"
      "image. LORA_OR_FOLDER is --path.\n",
      {{BIOESP_OPTIONS_PUSH, &o}}, 1, own, 1, "path", NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  cli_free(args);
  if (!o.path || !o.repo) {
    fprintf(stderr, "bioesp push: LORA_OR_FOLDER and --repo ORG/NAME are required\n");
    return 2;
  }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_interrupts();
  char* url = NULL;
  bioesp_status st = bioesp_push(&o, &url);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp push: %s\n", bioesp_last_error());
    return interrupted_status();
  }
  if (st != BIOESP_OK) return fail_with("push");
  if (url[0]) printf("%s\n", url);
  else fprintf(stderr, "bioesp: nothing changed; the Hub has these files already\n");
  bioesp_string_free(url);
  return 0;
}
