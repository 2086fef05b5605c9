/* bioesp animate: creatures morphing into one another, as GIF, MP4, WebM or PNG frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* Renders and writes the frames. */
static int run_animate(const char* model_path, const bioesp_model_options* mo, const cli_attached* attached,
                       const bioesp_animate_options* o, const bioesp_animation_options* save, const char* out) {
  bioesp_model* model = NULL;
  bioesp_images* frames = NULL;
  if (bioesp_model_load(model_path, mo, &model) != BIOESP_OK) return fail_with(model_path);
  int rc = 1;
  if (!attach_all(model, attached)) goto done;
  bioesp_status st = bioesp_animate(model, o, &frames);
  if (st == BIOESP_ERR_CANCELLED) {
    fprintf(stderr, "\nbioesp animate: %s\n", bioesp_last_error());
    rc = interrupted_status();
    goto done;
  }
  if (st != BIOESP_OK) { fail_with("animate"); goto done; }
  if (bioesp_images_save_animation(frames, out, save) != BIOESP_OK) { fail_with(out); goto done; }
  size_t count = 0;
  bioesp_images_count(frames, &count);
  fprintf(stderr, "bioesp: %zu frames → %s\n", count, out);
  rc = 0;
done:
  bioesp_images_free(frames);
  bioesp_model_free(model);
  return rc;
}

int cmd_animate(int argc, char** argv) {
  bioesp_animate_options o;
  bioesp_animate_options_init(&o);
  o.log = print_log;
  bioesp_animation_options save;
  bioesp_animation_options_init(&save);
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.log = print_log;
  const char* model_path = getenv("BIOESP_MODEL");
  const char* out = "creature.gif";
  cli_attached attached = {{0}, {0}};
  int quiet = 0;
  const cli_flag own[] = {
      CLI_MODEL_FLAGS(&model_path, &attached),
      {"out", "PATH", "creature.gif (the default), .mp4, .webm, or a folder of PNG frames", cli_text, &out},
      {"quiet", NULL, "no progress bar", cli_switch, &quiet}};
  static const char* const defaults[] = {"seeds", "random (one prompt, one seed: that seed and the next)", NULL};
  const cli_command command = {
      "animate", "--prompt A [--prompt B ...] [--seed N ...] [options]",
      "Morphs between creatures: keyframes are prompts and seeds (as many of each, or one of either);\n"
      "frames interpolate the starting noise spherically and the text embeddings linearly.\n",
      {{BIOESP_OPTIONS_MODEL, &mo}, {BIOESP_OPTIONS_ANIMATE, &o}, {BIOESP_OPTIONS_ANIMATION, &save}}, 3,
      own, sizeof own / sizeof own[0], NULL, defaults};
  int rc;
  cli_args* args = cli_parse(&command, argc, argv, &rc);
  if (!args) {
    cli_attached_free(&attached);
    return rc;
  }
  rc = 2;
  uint64_t seeds[2];
  if (o.num_prompts == 0) {
    fprintf(stderr, "bioesp animate: give at least one --prompt\n");
  } else if ((model_path = model_or_embedded("animate", model_path))) {
    if (o.num_seeds < 2 && o.num_prompts < 2) { /* one prompt, one seed: morph to the next seed */
      seeds[0] = o.num_seeds ? o.seeds[0] : random_seed();
      seeds[1] = seeds[0] + 1;
      o.seeds = seeds, o.num_seeds = 2;
    } else if (o.num_seeds == 0) {
      seeds[0] = random_seed();
      o.seeds = seeds, o.num_seeds = 1;
    }
    o.progress = steps_progress;
    o.progress_user = &quiet;
    catch_interrupts();
    rc = run_animate(model_path, &mo, &attached, &o, &save, out);
  }
  cli_free(args);
  cli_attached_free(&attached);
  return rc;
}
