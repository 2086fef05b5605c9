/* bioesp fetch and bioesp prepare: datasets from Wikimedia Commons or any folder of images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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

#define MAX_TITLES 100000

int cmd_fetch(int argc, char** argv) {
  bioesp_fetch_options o;
  bioesp_fetch_options_init(&o);
  o.log = print_log;
  int quiet = 0, sources = 0;
  const char* titles_file = NULL;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--original") == 0) { o.original = 1; continue; }
    if (strcmp(a, "--allow-restricted") == 0) { o.allow_restricted = 1; continue; }
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp fetch: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    if (strcmp(a, "--category") == 0) { o.source = BIOESP_SOURCE_CATEGORY; o.value = v; ++sources; }
    else if (strcmp(a, "--campaign") == 0) { o.source = BIOESP_SOURCE_CAMPAIGN; o.value = v; ++sources; }
    else if (strcmp(a, "--search") == 0) { o.source = BIOESP_SOURCE_SEARCH; o.value = v; ++sources; }
    else if (strcmp(a, "--titles") == 0) { o.source = BIOESP_SOURCE_TITLES; titles_file = v; ++sources; }
    else if (strcmp(a, "--limit") == 0) { if (!parse_long(a, v, &n)) return 2; o.limit = (int)n; }
    else if (strcmp(a, "--seed") == 0) { if (!parse_long(a, v, &n) || n < 0) return 2; o.seed = (uint64_t)n; }
    else if (strcmp(a, "--width") == 0) { if (!parse_long(a, v, &n)) return 2; o.width = (int)n; }
    else if (strcmp(a, "--licenses") == 0) o.licenses = v;
    else if (strcmp(a, "--keywords") == 0) o.keywords = v;
    else if (strcmp(a, "--contact") == 0) o.contact = v;
    else if (strcmp(a, "--api") == 0) o.api = v;
    else if (strcmp(a, "--out") == 0) o.out = v;
    else if (strcmp(a, "--retries") == 0) { if (!parse_long(a, v, &n)) return 2; o.max_retries = (int)n; }
    else if (strcmp(a, "--retry-delay") == 0) { double d; if (!parse_double(a, v, &d)) return 2; o.retry_delay = d; }
    else { fprintf(stderr, "bioesp fetch: unknown option %s\n", a); return 2; }
  }
  if (sources != 1) { fprintf(stderr, "bioesp fetch: give one of --category, --campaign, --search, --titles\n"); return 2; }
  if (!o.out) { fprintf(stderr, "bioesp fetch: --out is required\n"); return 2; }
  char** titles = NULL;
  size_t count = 0;
  if (titles_file) {
    FILE* f = fopen(titles_file, "r");
    if (!f) { fprintf(stderr, "bioesp fetch: cannot read %s\n", titles_file); return 1; }
    titles = calloc(MAX_TITLES, sizeof *titles);
    char line[4096];
    while (titles && count < MAX_TITLES && fgets(line, sizeof line, f)) {
      line[strcspn(line, "\r\n")] = 0;
      if (line[0]) titles[count++] = strdup(line);
    }
    fclose(f);
    o.titles = (const char* const*)titles;
    o.num_titles = count;
  }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_sigint();
  size_t downloaded = 0, skipped = 0;
  bioesp_status st = bioesp_fetch(&o, &downloaded, &skipped);
  for (size_t i = 0; i < count; ++i) free(titles[i]);
  free(titles);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp fetch: %s\n", bioesp_last_error()); return 130; }
  if (st != BIOESP_OK) return fail_with("fetch");
  fprintf(stderr, "bioesp: %zu downloaded, %zu skipped; manifest and ATTRIBUTION.md in %s\n", downloaded, skipped, o.out);
  return 0;
}

int cmd_prepare(int argc, char** argv) {
  bioesp_prepare_options o;
  bioesp_prepare_options_init(&o);
  o.log = print_log;
  int quiet = 0;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (strcmp(a, "--caption-from-metadata") == 0) { o.caption_from_metadata = 1; continue; }
    if (a[0] != '-') {
      if (o.in) { fprintf(stderr, "bioesp prepare: one input folder\n"); return 2; }
      o.in = a;
      continue;
    }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp prepare: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    if (strcmp(a, "--size") == 0) { if (!parse_long(a, v, &n)) return 2; o.size = (int)n; }
    else if (strcmp(a, "--crop") == 0) o.crop = v;
    else if (strcmp(a, "--caption") == 0) o.caption = v;
    else if (strcmp(a, "--near-duplicates") == 0) { if (!parse_long(a, v, &n)) return 2; o.near_duplicate_distance = (int)n; }
    else if (strcmp(a, "--background") == 0) {
      unsigned r, g, b;
      if (sscanf(v, "%2x%2x%2x", &r, &g, &b) != 3 || strlen(v) != 6) { fprintf(stderr, "bioesp prepare: --background is RRGGBB\n"); return 2; }
      o.background[0] = (uint8_t)r, o.background[1] = (uint8_t)g, o.background[2] = (uint8_t)b;
    } else if (strcmp(a, "--out") == 0) o.out = v;
    else { fprintf(stderr, "bioesp prepare: unknown option %s\n", a); return 2; }
  }
  if (!o.in || !o.out) { fprintf(stderr, "bioesp prepare: IN_DIR and --out are required\n"); return 2; }
  o.progress = files_progress;
  o.progress_user = &quiet;
  catch_sigint();
  size_t prepared = 0, skipped = 0;
  bioesp_status st = bioesp_prepare(&o, &prepared, &skipped);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp prepare: %s\n", bioesp_last_error()); return 130; }
  if (st != BIOESP_OK) return fail_with("prepare");
  fprintf(stderr, "bioesp: %zu prepared, %zu skipped into %s\n", prepared, skipped, o.out);
  return 0;
}
