/* bioesp pull and bioesp push: the Hugging Face Hub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_INCLUDE 64

int cmd_pull(int argc, char** argv) {
  bioesp_pull_options o;
  bioesp_pull_options_init(&o);
  o.log = print_log;
  const char* include[MAX_INCLUDE];
  int quiet = 0;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (strcmp(a, "--offline") == 0) { o.offline = 1; continue; }
    if (a[0] != '-') {
      if (o.repo) { fprintf(stderr, "bioesp pull: one repository at a time\n"); return 2; }
      o.repo = a;
      continue;
    }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp pull: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    if (strcmp(a, "--include") == 0) {
      if (o.num_include == MAX_INCLUDE) { fprintf(stderr, "bioesp pull: at most %d --include\n", MAX_INCLUDE); return 2; }
      include[o.num_include++] = v;
    }
    else if (strcmp(a, "--revision") == 0) o.revision = v;
    else if (strcmp(a, "--variant") == 0) o.variant = v;
    else if (strcmp(a, "--cache-dir") == 0) o.cache_dir = v;
    else if (strcmp(a, "--endpoint") == 0) o.endpoint = v;
    else if (strcmp(a, "--token") == 0) o.token = v;
    else if (strcmp(a, "--retries") == 0) { if (!parse_long(a, v, &n)) return 2; o.max_retries = (int)n; }
    else if (strcmp(a, "--retry-delay") == 0) { double d; if (!parse_double(a, v, &d)) return 2; o.retry_delay = d; }
    else { fprintf(stderr, "bioesp pull: unknown option %s\n", a); return 2; }
  }
  if (!o.repo) { fprintf(stderr, "bioesp pull: give a repository, ORG/NAME[@REVISION]\n"); return 2; }
  o.include = include;
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_sigint();
  char* snapshot = NULL;
  bioesp_status st = bioesp_pull(&o, &snapshot);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp pull: %s (rerun to resume)\n", bioesp_last_error()); return 130; }
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
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (strcmp(a, "--private") == 0) { o.private_repo = 1; continue; }
    if (a[0] != '-') {
      if (o.path) { fprintf(stderr, "bioesp push: one file or folder at a time\n"); return 2; }
      o.path = a;
      continue;
    }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp push: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    if (strcmp(a, "--repo") == 0) o.repo = v;
    else if (strcmp(a, "--token") == 0) o.token = v;
    else if (strcmp(a, "--message") == 0) o.commit_message = v;
    else if (strcmp(a, "--base-model") == 0) o.base_model = v;
    else if (strcmp(a, "--dataset") == 0) o.dataset = v;
    else if (strcmp(a, "--endpoint") == 0) o.endpoint = v;
    else if (strcmp(a, "--retries") == 0) { if (!parse_long(a, v, &n)) return 2; o.max_retries = (int)n; }
    else if (strcmp(a, "--retry-delay") == 0) { double d; if (!parse_double(a, v, &d)) return 2; o.retry_delay = d; }
    else { fprintf(stderr, "bioesp push: unknown option %s\n", a); return 2; }
  }
  if (!o.path || !o.repo) { fprintf(stderr, "bioesp push: LORA_OR_FOLDER and --repo ORG/NAME are required\n"); return 2; }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_sigint();
  char* url = NULL;
  bioesp_status st = bioesp_push(&o, &url);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp push: %s\n", bioesp_last_error()); return 130; }
  if (st != BIOESP_OK) return fail_with("push");
  if (url[0]) printf("%s\n", url);
  else fprintf(stderr, "bioesp: nothing changed; the Hub has these files already\n");
  bioesp_string_free(url);
  return 0;
}
