/* bioesp fetch and bioesp prepare: datasets from Wikimedia Commons or any folder of images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

int files_progress(void* user, const bioesp_progress* p) {
  int quiet = *(const int*)user;
  if (!quiet) {
    if (p->total == 0) {
      fprintf(stderr, "\r%s: %s        ", p->stage, p->item ? p->item : "");
    } else {
      int width = 24, filled = (int)(p->current * width / p->total);
      fprintf(stderr, "\r[");
      for (int i = 0; i < width; ++i) fputc(i < filled ? '#' : '.', stderr);
      fprintf(stderr, "] %llu/%llu files", (unsigned long long)p->current, (unsigned long long)p->total);
      if (p->bytes) fprintf(stderr, ", %.1f MB", p->bytes / 1e6);
      fprintf(stderr, "  %.40s   ", p->item ? p->item : "");
      if (p->current == p->total) fputc('\n', stderr);
    }
  }
  return interrupted();
}

/* --category, --campaign and --search: the source and its value at once. */
typedef struct source_flag {
  bioesp_fetch_options* options;
  bioesp_source source;
  int* count;
} source_flag;

static const char* set_source(void* target, const char* value) {
  source_flag* f = target;
  f->options->source = f->source;
  f->options->value = value;
  ++*f->count;
  return NULL;
}

/* The lines of a titles file (empty ones skipped); NULL after printing why. */
static char** read_titles(const char* path, size_t* count) {
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "bioesp fetch: cannot read %s\n", path);
    return NULL;
  }
  char** titles = NULL;
  char line[4096];
  *count = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char** more = realloc(titles, (*count + 1) * sizeof *titles);
    if (!more) break;
    titles = more;
    titles[(*count)++] = strdup(line);
  }
  fclose(f);
  return titles ? titles : calloc(1, sizeof *titles);
}

static int fetch_with(bioesp_fetch_options* o, int quiet) {
  o->progress = files_progress;
  o->progress_user = &quiet;
  catch_interrupts();
  size_t downloaded = 0, skipped = 0;
  bioesp_status st = bioesp_fetch(o, &downloaded, &skipped);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp fetch: %s\n", bioesp_last_error());
    return interrupted_status();
  }
  if (st != BIOESP_OK) return fail_with("fetch");
  fprintf(stderr, "bioesp: %zu downloaded, %zu skipped; manifest and ATTRIBUTION.md in %s\n", downloaded, skipped, o->out);
  return 0;
}

int cmd_fetch(int argc, char** argv) {
  bioesp_fetch_options o;
  bioesp_fetch_options_init(&o);
  o.log = print_log;
  int quiet = 0, sources = 0;
  const char* titles_file = NULL;
  source_flag category = {&o, BIOESP_SOURCE_CATEGORY, &sources}, campaign = {&o, BIOESP_SOURCE_CAMPAIGN, &sources},
              search = {&o, BIOESP_SOURCE_SEARCH, &sources};
  const cli_flag own[] = {
      {"category", "NAME", "a Commons category (\"Category:\" may be left out): --source category --value NAME", set_source, &category},
      {"campaign", "NAME", "an upload campaign, e.g. \"Biodiversidad en Colombia 2025\"", set_source, &campaign},
      {"search", "TEXT", "a search of the File namespace", set_source, &search},
      {"titles", "FILE", "a file of \"File:…\" titles, one a line", cli_text, &titles_file},
      {"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  const cli_command command = {
      "fetch", "--category NAME | --campaign NAME | --search TEXT | --titles FILE --out DIR [options]",
      "Downloads openly licensed images from Wikimedia Commons with their authors and licenses\n"
      "(manifest.jsonl, ATTRIBUTION.md). Rerunning continues; Ctrl-C keeps what finished.\n",
      {{BIOESP_OPTIONS_FETCH, &o}}, 1, own, sizeof own / sizeof own[0], NULL, NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  const int given = cli_given(args, "value") || cli_given(args, "titles");
  cli_free(args);
  if (sources + (titles_file != NULL) + given != 1) {
    fprintf(stderr, "bioesp fetch: give one of --category, --campaign, --search, --titles (or --source with --value or --title)\n");
    return 2;
  }
  if (!o.out) {
    fprintf(stderr, "bioesp fetch: --out is required\n");
    return 2;
  }
  if (!titles_file) return fetch_with(&o, quiet);
  size_t count = 0;
  char** titles = read_titles(titles_file, &count);
  if (!titles) return 1;
  o.source = BIOESP_SOURCE_TITLES;
  o.titles = (const char* const*)titles;
  o.num_titles = count;
  rc = fetch_with(&o, quiet);
  for (size_t i = 0; i < count; ++i) free(titles[i]);
  free(titles);
  return rc;
}

int cmd_prepare(int argc, char** argv) {
  bioesp_prepare_options o;
  bioesp_prepare_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  const cli_flag own[] = {{"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  const cli_command command = {
      "prepare", "IN_DIR --out DIR [options]",
      "Squares (never stretches) and resizes images for training, with captions, duplicate detection and\n"
      "the manifest and attribution carried over. IN_DIR is --in.\n",
      {{BIOESP_OPTIONS_PREPARE, &o}}, 1, own, 1, "in", NULL};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) return rc;
  cli_free(args);
  if (!o.in || !o.out) {
    fprintf(stderr, "bioesp prepare: IN_DIR and --out are required\n");
    return 2;
  }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_interrupts();
  size_t prepared = 0, skipped = 0;
  bioesp_status st = bioesp_prepare(&o, &prepared, &skipped);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp prepare: %s\n", bioesp_last_error());
    return interrupted_status();
  }
  if (st != BIOESP_OK) return fail_with("prepare");
  fprintf(stderr, "bioesp: %zu prepared, %zu skipped into %s\n", prepared, skipped, o.out);
  return 0;
}
