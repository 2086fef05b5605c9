/* Game textures through the public C API, on the embedded model: tiling (images that repeat
 * without seams; "none" unchanged) and transparent sprites (an alpha matte on a plain
 * backdrop). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static bioesp_model* model;

static int setup(void** state) {
  (void)state;
  const char* path = bioesp_embedded_model();
  if (!path) {
    fprintf(stderr, "the embedded model was not found\n");
    return 1;
  }
  if (bioesp_model_load(path, NULL, &model) != BIOESP_OK) {
    fprintf(stderr, "%s\n", bioesp_last_error());
    return 1;
  }
  return 0;
}

static int teardown(void** state) {
  (void)state;
  bioesp_model_free(model);
  return 0;
}

static const char* kPrompt[1];

/* Options for `prompt` (held in kPrompt: one set of options at a time). */
static bioesp_generate_options options(const char* prompt, uint64_t seed) {
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  kPrompt[0] = prompt;
  g.prompts = kPrompt;
  g.num_prompts = 1;
  g.steps = 20;
  g.guidance = 5.0f;
  g.seed = seed;
  return g;
}

static bioesp_images* draw(const bioesp_generate_options* g) {
  bioesp_images* out = NULL;
  if (bioesp_generate(model, g, &out) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  return out;
}

static bioesp_image first(const bioesp_images* set) {
  bioesp_image img;
  memset(&img, 0, sizeof img);
  img.struct_size = sizeof img;
  assert_int_equal(bioesp_images_get(set, 0, &img), BIOESP_OK);
  return img;
}

/* Mean absolute difference per channel value between pixel pairs (x0, y0)–(x1, y1). */
static double pair_difference(const bioesp_image* img, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1) {
  const uint8_t* a = img->pixels + ((size_t)y0 * img->width + x0) * img->channels;
  const uint8_t* b = img->pixels + ((size_t)y1 * img->width + x1) * img->channels;
  double d = 0;
  for (uint32_t c = 0; c < 3; ++c) d += abs(a[c] - b[c]);
  return d / 3;
}

/* Tiled 2×2, an image's seams pair its last column with its first (and its last row with its
 * first). The measure: the mean difference across the seam's pixel pairs, against the same mean
 * for every pair of neighbouring columns (rows) inside the image. A seam is no larger than the
 * interior's largest: it is not an edge the picture does not have elsewhere. */
typedef struct seams {
  double seam_x, interior_x, largest_x, seam_y, interior_y, largest_y;  /* interior: the average pair */
} seams;

static seams measure(const bioesp_image* img) {
  const uint32_t w = img->width, h = img->height;
  seams s = {0, 0, 0, 0, 0, 0};
  for (uint32_t x = 0; x < w; ++x) {  /* the pair of columns x, x + 1 (the seam: w - 1, 0) */
    double d = 0;
    for (uint32_t y = 0; y < h; ++y) d += pair_difference(img, x, y, (x + 1) % w, y) / h;
    if (x == w - 1) {
      s.seam_x = d;
    } else {
      s.interior_x += d / (w - 1);
      if (d > s.largest_x) s.largest_x = d;
    }
  }
  for (uint32_t y = 0; y < h; ++y) {
    double d = 0;
    for (uint32_t x = 0; x < w; ++x) d += pair_difference(img, x, y, x, (y + 1) % h) / w;
    if (y == h - 1) {
      s.seam_y = d;
    } else {
      s.interior_y += d / (h - 1);
      if (d > s.largest_y) s.largest_y = d;
    }
  }
  return s;
}

/* The measure sees a seam where there is one: a left-to-right gradient jumps back at its wrap. */
static void test_seam_measure(void** state) {
  (void)state;
  uint8_t pixels[16 * 16 * 3];
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) memset(pixels + (y * 16 + x) * 3, x * 16, 3);
  bioesp_image img = {sizeof img, 16, 16, 3, pixels};
  seams s = measure(&img);
  assert_true(s.seam_x > s.largest_x);
  assert_true(s.seam_y <= s.largest_y);
}

static void test_tiling_both_has_no_seams(void** state) {
  (void)state;
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    bioesp_generate_options g = options("cactus tigre", seed);
    g.tiling = "both";
    bioesp_images* tiled = draw(&g);
    bioesp_image t = first(tiled);
    seams s = measure(&t);
    printf("seed %llu, tiling both: seams %.1f / %.1f across x / y; interior pairs %.1f / %.1f on average, "
           "%.1f / %.1f at most\n",
           (unsigned long long)seed, s.seam_x, s.seam_y, s.interior_x, s.interior_y, s.largest_x, s.largest_y);
    assert_true(s.seam_x <= s.largest_x);
    assert_true(s.seam_y <= s.largest_y);
    assert_string_equal(bioesp_images_setting(tiled, 0, "tiling"), "both");
    bioesp_images_free(tiled);
  }
}

/* One axis wraps, the other does not: the x seam closes and the picture differs from both. */
static void test_tiling_one_axis(void** state) {
  (void)state;
  bioesp_generate_options g = options("lagarto", 5);
  g.tiling = "x";
  bioesp_images* x = draw(&g);
  g.tiling = "y";
  bioesp_images* y = draw(&g);
  bioesp_image ix = first(x), iy = first(y);
  seams sx = measure(&ix), sy = measure(&iy);
  assert_true(sx.seam_x <= sx.largest_x);
  assert_true(sy.seam_y <= sy.largest_y);
  assert_memory_not_equal(ix.pixels, iy.pixels, (size_t)ix.width * ix.height * 3);
  bioesp_images_free(x);
  bioesp_images_free(y);
}

/* "none", NULL and a caller compiled before the field existed (a shorter struct) give the
 * same bytes, and a tiled generation leaves the model as it was. */
static void test_tiling_none_unchanged(void** state) {
  (void)state;
  bioesp_generate_options g = options("mariposa", 9);
  bioesp_images* before = draw(&g);
  g.tiling = "both";
  bioesp_images_free(draw(&g));
  g.tiling = "none";
  bioesp_images* none = draw(&g);
  g.tiling = NULL;
  g.struct_size = offsetof(bioesp_generate_options, tiling);
  bioesp_images* old = draw(&g);
  bioesp_image a = first(before), b = first(none), c = first(old);
  const size_t n = (size_t)a.width * a.height * a.channels;
  assert_memory_equal(a.pixels, b.pixels, n);
  assert_memory_equal(a.pixels, c.pixels, n);
  bioesp_images_free(before);
  bioesp_images_free(none);
  bioesp_images_free(old);
}

static void test_transparent_sprite(void** state) {
  (void)state;
  bioesp_generate_options g = options("pulpo", 3);
  g.background = "transparent";
  bioesp_images* sprite = draw(&g);
  bioesp_images* again = draw(&g);
  /* The opaque picture the sprite was matted from: the same prompt with the backdrop asked for. */
  bioesp_generate_options o = options("pulpo, plain white background", 3);
  bioesp_images* opaque = draw(&o);
  bioesp_image s = first(sprite), p = first(opaque);
  assert_int_equal(s.channels, 4);
  assert_int_equal(p.channels, 3);
  assert_int_equal(s.width, p.width);
  size_t transparent = 0, opaque_pixels = 0;
  for (uint32_t y = 0; y < s.height; ++y)
    for (uint32_t x = 0; x < s.width; ++x) {
      const uint8_t* sp = s.pixels + ((size_t)y * s.width + x) * 4;
      const uint8_t* pp = p.pixels + ((size_t)y * p.width + x) * 3;
      if (x == 0 || y == 0 || x == s.width - 1 || y == s.height - 1) assert_int_equal(sp[3], 0);
      if (sp[3] == 255) {
        assert_memory_equal(sp, pp, 3);
        ++opaque_pixels;
      }
      transparent += sp[3] == 0;
    }
  assert_true(s.pixels[((size_t)(s.height / 2) * s.width + s.width / 2) * 4 + 3] > 0);
  printf("transparent sprite: %zu of %u pixels transparent, %zu opaque\n", transparent, s.width * s.height, opaque_pixels);
  assert_true(opaque_pixels > 0 && transparent > 0);
  assert_string_equal(bioesp_images_setting(sprite, 0, "background"), "transparent");
  assert_string_equal(bioesp_images_setting(sprite, 0, "prompt"), "pulpo");
  /* Deterministic, and written as an RGBA PNG. */
  bioesp_image a = first(again);
  assert_memory_equal(a.pixels, s.pixels, (size_t)s.width * s.height * 4);
  const char* png = path_join(temp_dir(), "sprite.png");
  assert_int_equal(bioesp_images_save(sprite, 0, png, NULL), BIOESP_OK);
  bioesp_images* read = NULL;
  assert_int_equal(bioesp_images_load(png, &read), BIOESP_OK);
  bioesp_image r = first(read);
  assert_int_equal(r.channels, 4);
  assert_memory_equal(r.pixels, s.pixels, (size_t)s.width * s.height * 4);
  assert_null(bioesp_images_setting(opaque, 0, "background"));
  bioesp_images_free(read);
  bioesp_images_free(again);
  bioesp_images_free(sprite);
  bioesp_images_free(opaque);
}

static void refused(bioesp_generate_options* g, bioesp_status status, const char* message) {
  bioesp_images* out = NULL;
  assert_int_equal(bioesp_generate(model, g, &out), status);
  assert_null(out);
  if (!strstr(bioesp_last_error(), message)) fail_msg("'%s' lacks '%s'", bioesp_last_error(), message);
}

static void test_bad_values(void** state) {
  (void)state;
  bioesp_generate_options g = options("x", 1);
  g.tiling = "diagonal";
  refused(&g, BIOESP_ERR_INVALID_ARGUMENT, "tiling: must be one of none, x, y, both, not 'diagonal'");
  g.tiling = "both";
  g.vae_tile_size = 32;
  refused(&g, BIOESP_ERR_UNSUPPORTED, "tiling and VAE tiles cannot be combined");
  g = options("x", 1);
  g.background = "green";
  refused(&g, BIOESP_ERR_INVALID_ARGUMENT, "background: must be one of opaque, transparent, not 'green'");
  const size_t n = 10u << 20;
  char* huge = malloc(n + 1);
  memset(huge, 'a', n);
  huge[n] = '\0';
  g = options(huge, 1);
  refused(&g, BIOESP_ERR_INVALID_ARGUMENT, "a prompt is 10485760 bytes; at most 65536 are accepted");
  g = options("x", 1);
  g.negative_prompt = huge;
  refused(&g, BIOESP_ERR_INVALID_ARGUMENT, "the negative prompt is 10485760 bytes");
  free(huge);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seam_measure), cmocka_unit_test(test_tiling_both_has_no_seams),
      cmocka_unit_test(test_tiling_one_axis),
      cmocka_unit_test(test_tiling_none_unchanged), cmocka_unit_test(test_transparent_sprite),
      cmocka_unit_test(test_bad_values)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
