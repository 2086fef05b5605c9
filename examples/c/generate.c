/* The smallest complete bioesp program: load a model, draw one image with a progress line, save
 * it. Usage: generate MODEL "PROMPT" OUT.png */
#include <bioesp.h>
#include <stdio.h>

static int show(void* user, const bioesp_progress* p) {
  (void)user;
  fprintf(stderr, "\r%s %llu/%llu", p->stage, (unsigned long long)p->current, (unsigned long long)p->total);
  return 0; /* nonzero would cancel */
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL PROMPT OUT.png\n", argv[0]);
    return 2;
  }
  if (bioesp_check_version(BIOESP_VERSION_NUMBER) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  bioesp_model* model = NULL;
  bioesp_images* images = NULL;
  int rc = 1;
  if (bioesp_model_load(argv[1], NULL, &model) != BIOESP_OK) goto done;
  const char* prompts[] = {argv[2]};
  bioesp_generate_options o;
  bioesp_generate_options_init(&o);
  o.prompts = prompts;
  o.num_prompts = 1;
  o.steps = 25;
  o.seed = 7;
  o.progress = show;
  if (bioesp_generate(model, &o, &images) != BIOESP_OK) goto done;
  if (bioesp_images_save(images, 0, argv[3], NULL) != BIOESP_OK) goto done;
  fprintf(stderr, "\nwrote %s\n", argv[3]);
  rc = 0;
done:
  if (rc) fprintf(stderr, "\nbioesp: %s\n", bioesp_last_error());
  bioesp_images_free(images);
  bioesp_model_free(model);
  return rc;
}
