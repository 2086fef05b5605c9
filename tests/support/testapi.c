#include "testapi.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

const char* const kGoldenPrompt[1] = {"criatura especulativa colombiana"};

bioesp_generate_options golden_options(void) {
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = kGoldenPrompt;
  g.num_prompts = 1;
  g.negative_prompt = "blurry, low quality";
  g.steps = 10;
  g.guidance = 7.5f;
  g.seed = 1234;
  g.scheduler = "ddim";
  return g;
}

bioesp_image image_at(const bioesp_images* set, size_t i) {
  bioesp_image img;
  memset(&img, 0, sizeof img);
  img.struct_size = sizeof img;
  if (bioesp_images_get(set, i, &img) != BIOESP_OK) fail_msg("no image %zu: %s", i, bioesp_last_error());
  return img;
}
