/* Fast sampling through the public C API: live previews (as many as promised, cancellable, the
 * images unchanged, kept for polling by jobs), TAESD in place of the VAE or for previews only, a
 * full VAE named, step caching, bad files (a TAESD with a wrong key, an SDXL LoRA) refused with
 * the names, and the options' refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testapi.h"
#include "support/testutil.h"

static bioesp_model* model;

static bioesp_model* load(const char* vae, const char* preview_vae) {
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.threads = 2;
  o.vae = vae;
  o.preview_vae = preview_vae;
  bioesp_model* m = NULL;
  if (bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &m) != BIOESP_OK)
    fail_msg("%s", bioesp_last_error());
  return m;
}

static int setup(void** state) {
  (void)state;
  model = load(NULL, NULL);
  return 0;
}

static int teardown(void** state) {
  (void)state;
  bioesp_model_free(model);
  return 0;
}

static const char* kPrompts[] = {"criatura especulativa colombiana", "colibrí"};

static bioesp_generate_options options(int steps) {
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = kPrompts;
  g.num_prompts = 1;
  g.steps = steps;
  g.seed = 1234;
  g.scheduler = "euler";
  return g;
}

/* What the previews of one run looked like. */
typedef struct previews {
  int calls, cancel_after;
  int steps[64];
  size_t index[64];
  uint32_t width, height;
  long sum; /* of the last preview's bytes: previews are pictures, not zeros */
} previews;

static int on_preview(void* user, const bioesp_preview* p) {
  previews* r = (previews*)user;
  assert_true(p->struct_size >= sizeof(bioesp_preview));
  assert_int_equal(p->image.channels, 3);
  if (r->calls < 64) {
    r->steps[r->calls] = p->step;
    r->index[r->calls] = p->index;
  }
  r->width = p->image.width;
  r->height = p->image.height;
  r->sum = 0;
  for (size_t i = 0; i < (size_t)p->image.width * p->image.height * 3; ++i) r->sum += p->image.pixels[i];
  ++r->calls;
  return r->cancel_after > 0 && r->calls >= r->cancel_after;
}

/* Asks `g` for previews every `every` steps into a cleared `r`. */
static void want_previews(bioesp_generate_options* g, previews* r, int every) {
  memset(r, 0, sizeof *r);
  g->preview_every = every;
  g->preview = on_preview;
  g->preview_user = r;
}

static void assert_same_images(const bioesp_images* a, const bioesp_images* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    bioesp_image x = image_at(a, i), y = image_at(b, i);
    assert_int_equal(x.width, y.width);
    assert_memory_equal(x.pixels, y.pixels, (size_t)x.width * x.height * 3);
  }
}

static void test_previews(void** state) {
  (void)state;
  /* Two prompts with CFG, 7 steps, a preview every 3: steps 3 and 6, for each image. */
  bioesp_generate_options g = options(7);
  g.num_prompts = 2;
  bioesp_images *plain = NULL, *with = NULL;
  assert_int_equal(bioesp_generate(model, &g, &plain), BIOESP_OK);
  previews r;
  want_previews(&g, &r, 3);
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_OK);
  assert_int_equal(r.calls, 4);
  const int steps[] = {3, 3, 6, 6};
  const size_t index[] = {0, 1, 0, 1};
  for (int i = 0; i < 4; ++i) {
    assert_int_equal(r.steps[i], steps[i]);
    assert_int_equal(r.index[i], index[i]);
  }
  /* Without a tiny autoencoder: the linear map, one pixel per latent. */
  assert_int_equal(r.width, 16);
  assert_int_equal(r.height, 16);
  assert_true(r.sum > 0);
  assert_same_images(plain, with, 2); /* byte-identical with and without previews */
  bioesp_images_free(with);

  /* Every step; cancelled from the preview callback. */
  want_previews(&g, &r, 1);
  r.cancel_after = 3;
  with = NULL;
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_ERR_CANCELLED);
  assert_null(with);
  assert_int_equal(r.calls, 3);

  /* A callback without preview_every, and a negative interval, are refused. */
  g.preview_every = 0;
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "preview_every"));
  g.preview = NULL;
  g.preview_every = -1;
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_images_free(plain);
}

static void test_job_previews(void** state) {
  (void)state;
  bioesp_generate_options g = options(4);
  bioesp_images* plain = NULL;
  assert_int_equal(bioesp_generate(model, &g, &plain), BIOESP_OK);
  previews r;
  want_previews(&g, &r, 2);
  bioesp_job* job = NULL;
  assert_int_equal(bioesp_generate_async(model, &g, &job), BIOESP_OK);
  int finished = 0;
  assert_int_equal(bioesp_job_wait(job, -1, &finished), BIOESP_OK);
  assert_int_equal(r.calls, 2); /* on the worker thread */
  bioesp_images* latest = NULL;
  uint64_t step = 0;
  assert_int_equal(bioesp_job_preview(job, &latest, &step), BIOESP_OK);
  assert_non_null(latest);
  assert_int_equal(step, 4);
  assert_int_equal(image_at(latest, 0).width, 16);
  bioesp_images_free(latest);
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_job_take(job, &images), BIOESP_OK);
  assert_same_images(plain, images, 1);
  bioesp_images_free(images);
  bioesp_job_free(job);
  /* Polling alone: previews are kept without a callback; none before the first. */
  g.preview = NULL;
  assert_int_equal(bioesp_generate_async(model, &g, &job), BIOESP_OK);
  assert_int_equal(bioesp_job_wait(job, -1, &finished), BIOESP_OK);
  assert_int_equal(bioesp_job_preview(job, &latest, &step), BIOESP_OK);
  assert_non_null(latest);
  bioesp_images_free(latest);
  bioesp_job_free(job);
  g.preview_every = 0;
  assert_int_equal(bioesp_generate_async(model, &g, &job), BIOESP_OK);
  assert_int_equal(bioesp_job_wait(job, -1, &finished), BIOESP_OK);
  assert_int_equal(bioesp_job_preview(job, &latest, &step), BIOESP_OK);
  assert_null(latest);
  assert_int_equal(step, 0);
  bioesp_job_free(job);
  bioesp_images_free(plain);
}

/* The golden TAESD draws the images in place of the VAE (both of its layouts give the same
 * pixels), encodes img2img's init image, and decodes previews at full size. */
static void test_tiny_autoencoder(void** state) {
  (void)state;
  const char* dir = path_join(ref_dir(), "golden/fast/taesd/diffusers");
  char diffusers[4096];
  snprintf(diffusers, sizeof diffusers, "%s", dir);
  bioesp_model* tiny = load(diffusers, NULL);
  bioesp_model* original = load(path_join(ref_dir(), "golden/fast/taesd/taesd_decoder.safetensors"), NULL);
  bioesp_generate_options g = options(3);
  bioesp_images *a = NULL, *b = NULL, *full = NULL;
  previews r;
  want_previews(&g, &r, 3);
  assert_int_equal(bioesp_generate(tiny, &g, &a), BIOESP_OK);
  assert_int_equal(r.width, 128); /* decoded by the TAESD */
  assert_int_equal(bioesp_generate(original, &g, &b), BIOESP_OK);
  assert_int_equal(bioesp_generate(model, &g, &full), BIOESP_OK);
  assert_same_images(a, b, 1);
  assert_string_equal(bioesp_images_setting(a, 0, "vae"), diffusers);
  bioesp_image x = image_at(a, 0), y = image_at(full, 0);
  assert_int_equal(x.width, 128);
  assert_true(memcmp(x.pixels, y.pixels, 128 * 128 * 3) != 0); /* another decoder */
  /* img2img through the TAESD encoder */
  g.init_image = &y;
  g.strength = 0.5f;
  bioesp_images* again = NULL;
  assert_int_equal(bioesp_generate(tiny, &g, &again), BIOESP_OK);
  bioesp_images_free(again);
  bioesp_images_free(a);
  bioesp_images_free(b);

  /* For previews only: the images are the full VAE's, the previews the TAESD's. */
  bioesp_model* previewing = load(NULL, diffusers);
  g = options(3);
  want_previews(&g, &r, 1);
  assert_int_equal(bioesp_generate(previewing, &g, &a), BIOESP_OK);
  assert_int_equal(r.calls, 3);
  assert_int_equal(r.width, 128);
  assert_same_images(a, full, 1);
  bioesp_images_free(a);
  bioesp_images_free(full);
  bioesp_model_free(previewing);
  bioesp_model_free(tiny);
  bioesp_model_free(original);

  /* A full VAE is not a preview decoder; a missing autoencoder is named. */
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  bioesp_model* m = NULL;
  o.preview_vae = path_join(ref_dir(), "models/tiny-sd1/vae");
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &m), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "tiny autoencoder"));
  o.preview_vae = NULL;
  o.vae = path_join(temp_dir(), "no-taesd-here");
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &m), BIOESP_ERR_NOT_FOUND);
  assert_non_null(strstr(bioesp_last_error(), "no-taesd-here"));
  assert_null(m);
}

/* The golden TAESD decoder with one weight renamed (same length: the offsets hold), as a file. */
static const char* taesd_with_wrong_key(void) {
  FILE* f = fopen(path_join(ref_dir(), "golden/fast/taesd/taesd_decoder.safetensors"), "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  const size_t n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char* bytes = malloc(n + 1);
  assert_int_equal(fread(bytes, 1, n, f), n);
  fclose(f);
  bytes[n] = 0;
  char* key = strstr(bytes + 8, "\"3.conv.2.weight\"");
  assert_non_null(key);
  memcpy(key, "\"3.conv.2.kernel\"", 17);
  const char* path = path_join(temp_dir(), "taesd_decoder.safetensors");
  write_file(path, bytes, n);
  free(bytes);
  return path;
}

/* A full AutoencoderKL named as `vae` draws the model's own images; a TAESD with a wrong key and a
 * LoRA for SDXL are refused, naming what does not fit, and nothing changes. */
static void test_bad_files(void** state) {
  (void)state;
  bioesp_model* full = load(path_join(ref_dir(), "models/tiny-sd1/vae"), NULL);
  bioesp_generate_options g = options(2);
  bioesp_images *a = NULL, *b = NULL;
  assert_int_equal(bioesp_generate(full, &g, &a), BIOESP_OK);
  assert_int_equal(bioesp_generate(model, &g, &b), BIOESP_OK);
  assert_same_images(a, b, 1);
  bioesp_images_free(a);
  bioesp_model_free(full);

  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.vae = taesd_with_wrong_key();
  bioesp_model* m = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &m), BIOESP_ERR_MISMATCH);
  assert_non_null(strstr(bioesp_last_error(), "decoder.layers.2.conv.2.kernel"));
  assert_null(m);

  assert_int_equal(bioesp_model_add_lora(model, path_join(ref_dir(), "golden/tiny-sdxl/lora/pytorch_lora_weights.safetensors"),
                                         1.0f, "xl"),
                   BIOESP_ERR_MISMATCH);
  assert_non_null(strstr(bioesp_last_error(), "text_encoder_2"));
  assert_non_null(strstr(bioesp_last_error(), "transformer_blocks.1"));
  assert_int_equal(bioesp_model_remove_lora(model, "xl"), BIOESP_ERR_NOT_FOUND); /* nothing attached */
  assert_int_equal(bioesp_generate(model, &g, &a), BIOESP_OK);
  assert_same_images(a, b, 1);
  bioesp_images_free(a);
  bioesp_images_free(b);
}

static void test_step_cache(void** state) {
  (void)state;
  bioesp_generate_options g = options(6);
  bioesp_images *plain = NULL, *cached = NULL, *again = NULL;
  assert_int_equal(bioesp_generate(model, &g, &plain), BIOESP_OK);
  g.cache_interval = 3;
  g.cache_branch = 0;
  assert_int_equal(bioesp_generate(model, &g, &cached), BIOESP_OK);
  assert_int_equal(bioesp_generate(model, &g, &again), BIOESP_OK);
  assert_same_images(cached, again, 1); /* deterministic */
  bioesp_image x = image_at(plain, 0), y = image_at(cached, 0);
  assert_true(memcmp(x.pixels, y.pixels, 128 * 128 * 3) != 0); /* the shallow steps reuse features */
  assert_string_equal(bioesp_images_setting(cached, 0, "cache_interval"), "3");
  bioesp_images_free(again);
  /* An interval of 1 is a full pass every step: the uncached image. */
  g.cache_interval = 1;
  assert_int_equal(bioesp_generate(model, &g, &again), BIOESP_OK);
  assert_same_images(plain, again, 1);
  bioesp_images_free(again);
  /* The tiny UNet has 9 skips (conv_in's, 3 blocks of 2 layers, 2 downsamplers). */
  g.cache_interval = 2;
  g.cache_branch = 8;
  assert_int_equal(bioesp_generate(model, &g, &again), BIOESP_OK);
  bioesp_images_free(again);
  g.cache_branch = 9;
  assert_int_equal(bioesp_generate(model, &g, &again), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "between 0 and 8"));
  g.cache_branch = 0;
  g.cache_interval = -2;
  assert_int_equal(bioesp_generate(model, &g, &again), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_images_free(plain);
  bioesp_images_free(cached);
}

static void test_images_copy(void** state) {
  (void)state;
  const uint8_t gray[4] = {0, 64, 128, 255};
  bioesp_image v;
  memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.width = 2;
  v.height = 2;
  v.channels = 1;
  v.pixels = gray;
  bioesp_images* set = NULL;
  assert_int_equal(bioesp_images_copy(&v, 1, &set), BIOESP_OK);
  bioesp_image c = image_at(set, 0);
  assert_int_equal(c.channels, 3);
  assert_int_equal(c.pixels[9], 255);
  assert_int_equal(c.pixels[10], 255);
  assert_int_equal(bioesp_images_save(set, 0, path_join(temp_dir(), "copy.png"), NULL), BIOESP_OK);
  bioesp_images_free(set);
  v.pixels = NULL;
  assert_int_equal(bioesp_images_copy(&v, 1, &set), BIOESP_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_previews), cmocka_unit_test(test_job_previews),
                                     cmocka_unit_test(test_tiny_autoencoder), cmocka_unit_test(test_bad_files),
                                     cmocka_unit_test(test_step_cache),
                                     cmocka_unit_test(test_images_copy)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
