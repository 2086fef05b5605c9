/* What the C API draws for the settings every binding test uses, as raw pixels: the bindings
 * must return exactly these bytes. With a ControlNet folder, also that picture steered by a
 * ControlNet (its Canny edges, scale 0.7) and inpainted (its right half repainted), and the
 * mask as a PNG for the bindings to load.
 * Usage: reference MODEL_DIR OUT_FILE [CONTROLNET_DIR OUT_CONTROL OUT_INPAINT OUT_MASK_PNG] */
#include <bioesp.h>
#include <stdio.h>
#include <string.h>

static int write_raw(const char* path, const bioesp_image* im) {
  FILE* f = fopen(path, "wb");
  size_t n = (size_t)im->width * im->height * im->channels;
  int ok = f && fwrite(im->pixels, 1, n, f) == n;
  if (f) ok = fclose(f) == 0 && ok;
  return ok;
}

/* The picture generated with `o` (and what it points to), written to `path`. */
static int draw(bioesp_model* model, const bioesp_generate_options* o, const char* path) {
  bioesp_images* images = NULL;
  bioesp_image im = {sizeof im};
  if (bioesp_generate(model, o, &images) != BIOESP_OK || bioesp_images_get(images, 0, &im) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 0;
  }
  int ok = write_raw(path, &im);
  bioesp_images_free(images);
  return ok;
}

static int steered(bioesp_model* model, bioesp_generate_options o, const bioesp_image* picture, char** argv) {
  bioesp_controlnet* net = NULL;
  if (bioesp_controlnet_load(model, argv[3], &net) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 0;
  }
  bioesp_control c;
  bioesp_control_init(&c);
  c.controlnet = net;
  c.image = picture;
  c.preprocess = "canny";
  c.scale = 0.7f;
  o.controls = &c;
  o.num_controls = 1;
  int ok = draw(model, &o, argv[4]);
  o.num_controls = 0;
  static uint8_t half[64 * 64];
  for (int i = 0; i < 64 * 64; ++i) half[i] = i % 64 >= 32 ? 255 : 0;
  bioesp_image mask = {sizeof mask, 64, 64, 1, half};
  o.init_image = picture;
  o.mask = &mask;
  o.strength = 1.0f;
  ok = ok && draw(model, &o, argv[5]);
  bioesp_images* saved = NULL;
  ok = ok && bioesp_images_copy(&mask, 1, &saved) == BIOESP_OK && bioesp_images_save(saved, 0, argv[6], NULL) == BIOESP_OK;
  bioesp_images_free(saved);
  bioesp_controlnet_free(net);
  return ok;
}

int main(int argc, char** argv) {
  if (argc != 3 && argc != 7) return 2;
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
  int ok = write_raw(argv[2], &im);
  if (ok && argc == 7) ok = steered(model, o, &im, argv);
  bioesp_images_free(images);
  bioesp_model_free(model);
  return ok ? 0 : 1;
}
