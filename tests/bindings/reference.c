/* What the C API draws for the settings every binding test uses, as raw pixels: the bindings
 * must return exactly these bytes. Usage: reference MODEL_DIR OUT_FILE */
#include <bioesp.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  bioesp_model* model = NULL;
  if (bioesp_model_load(argv[1], NULL, &model) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  const char* prompts[] = {"colibrí lagarto"};
  bioesp_generate_options o;
  bioesp_generate_options_init(&o);
  o.prompts = prompts;
  o.num_prompts = 1;
  o.steps = 3;
  o.seed = 42;
  o.width = 64;
  o.height = 64;
  bioesp_images* images = NULL;
  bioesp_image im = {sizeof im};
  if (bioesp_generate(model, &o, &images) != BIOESP_OK || bioesp_images_get(images, 0, &im) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  FILE* f = fopen(argv[2], "wb");
  size_t n = (size_t)im.width * im.height * im.channels;
  int ok = f && fwrite(im.pixels, 1, n, f) == n;
  if (f) ok = fclose(f) == 0 && ok;
  bioesp_images_free(images);
  bioesp_model_free(model);
  return ok ? 0 : 1;
}
