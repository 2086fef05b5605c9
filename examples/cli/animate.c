/* bioesp animate: creatures morphing into one another, as GIF, MP4, WebM or PNG frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_KEYS 64

int cmd_animate(int argc, char** argv) {
  bioesp_animate_options o;
  bioesp_animate_options_init(&o);
  bioesp_animation_options save;
  bioesp_animation_options_init(&save);
  const char* prompts[MAX_KEYS];
  uint64_t seeds[MAX_KEYS];
  const char* loras[MAX_KEYS];
  const char* embeddings[MAX_KEYS];
  size_t num_loras = 0, num_embeddings = 0;
  const char* model_path = getenv("BIOESP_MODEL");
  const char* out = "creature.gif";
  int quiet = 0;
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.log = print_log;
  for (int i = 0; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--pingpong") == 0) { o.pingpong = 1; continue; }
    if (strcmp(a, "--no-loop") == 0) { save.loop = 0; continue; }
    if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
    if (i + 1 >= argc) { fprintf(stderr, "bioesp animate: %s needs a value\n", a); return 2; }
    const char* v = argv[++i];
    long n;
    double d;
    if (strcmp(a, "--model") == 0) model_path = v;
    else if (strcmp(a, "--config") == 0) mo.config_dir = v;
    else if (strcmp(a, "--prompt") == 0) {
      if (o.num_prompts == MAX_KEYS) { fprintf(stderr, "bioesp animate: at most %d prompts\n", MAX_KEYS); return 2; }
      prompts[o.num_prompts++] = v;
    } else if (strcmp(a, "--seed") == 0) {
      if (o.num_seeds == MAX_KEYS) { fprintf(stderr, "bioesp animate: at most %d seeds\n", MAX_KEYS); return 2; }
      if (!parse_long(a, v, &n) || n < 0) return 2;
      seeds[o.num_seeds++] = (uint64_t)n;
    } else if (strcmp(a, "--lora") == 0) {
      if (num_loras == MAX_KEYS) { fprintf(stderr, "bioesp animate: too many LoRAs\n"); return 2; }
      loras[num_loras++] = v;
    } else if (strcmp(a, "--embedding") == 0) {
      if (num_embeddings == MAX_KEYS) { fprintf(stderr, "bioesp animate: too many embeddings\n"); return 2; }
      embeddings[num_embeddings++] = v;
    } else if (strcmp(a, "--prompt-syntax") == 0) { if (!parse_prompt_syntax("animate", v, &o.prompt_syntax)) return 2; }
    else if (strcmp(a, "--frames") == 0) { if (!parse_long(a, v, &n)) return 2; o.frames = (int)n; }
    else if (strcmp(a, "--fps") == 0) { if (!parse_double(a, v, &d)) return 2; save.fps = d; }
    else if (strcmp(a, "--quality") == 0) { if (!parse_long(a, v, &n)) return 2; save.quality = (int)n; }
    else if (strcmp(a, "--negative-prompt") == 0) o.negative_prompt = v;
    else if (strcmp(a, "--steps") == 0) { if (!parse_long(a, v, &n)) return 2; o.steps = (int)n; }
    else if (strcmp(a, "--guidance") == 0) { if (!parse_double(a, v, &d)) return 2; o.guidance = (float)d; }
    else if (strcmp(a, "--scheduler") == 0) o.scheduler = v;
    else if (strcmp(a, "--width") == 0) { if (!parse_long(a, v, &n)) return 2; o.width = (int)n; }
    else if (strcmp(a, "--height") == 0) { if (!parse_long(a, v, &n)) return 2; o.height = (int)n; }
    else if (strcmp(a, "--vae-tiles") == 0) { if (!parse_long(a, v, &n)) return 2; o.vae_tile_size = (int)n; }
    else if (strcmp(a, "--threads") == 0) { if (!parse_long(a, v, &n)) return 2; mo.threads = (int)n; }
    else if (strcmp(a, "--out") == 0) out = v;
    else { fprintf(stderr, "bioesp animate: unknown option %s\n", a); return 2; }
  }
  if (!model_path || !*model_path) model_path = bioesp_embedded_model();
  if (!model_path) { fprintf(stderr, "bioesp animate: name a model with --model or BIOESP_MODEL (the embedded one is not installed)\n"); return 2; }
  if (o.num_prompts == 0) { fprintf(stderr, "bioesp animate: give at least one --prompt\n"); return 2; }
  if (o.num_seeds == 0) seeds[o.num_seeds++] = random_seed();
  if (o.num_prompts < 2 && o.num_seeds < 2) {
    seeds[o.num_seeds] = seeds[0] + 1; /* one prompt, one seed: morph to the next seed */
    ++o.num_seeds;
  }
  o.prompts = prompts;
  o.seeds = seeds;
  o.progress = steps_progress;
  o.progress_user = &quiet;
  o.log = print_log;
  catch_sigint();
  bioesp_model* model = NULL;
  bioesp_images* frames = NULL;
  if (bioesp_model_load(model_path, &mo, &model) != BIOESP_OK) return fail_with(model_path);
  int rc = 1;
  if (!attach_loras(model, loras, num_loras) || !attach_embeddings(model, embeddings, num_embeddings)) goto done;
  bioesp_status st = bioesp_animate(model, &o, &frames);
  if (st == BIOESP_ERR_CANCELLED) { fprintf(stderr, "\nbioesp animate: %s\n", bioesp_last_error()); rc = 130; goto done; }
  if (st != BIOESP_OK) { fail_with("animate"); goto done; }
  if (bioesp_images_save_animation(frames, out, &save) != BIOESP_OK) { fail_with(out); goto done; }
  size_t count = 0;
  bioesp_images_count(frames, &count);
  fprintf(stderr, "bioesp: %zu frames → %s\n", count, out);
  rc = 0;
done:
  bioesp_images_free(frames);
  bioesp_model_free(model);
  return rc;
}
