/* Generation through the public C API: the PNG that bioesp writes against diffusers' image,
 * async jobs (queueing, concurrency, cancel), LoRA calls, img2img inputs, VAE tiles, bad
 * requests, both prompt syntaxes and textual-inversion embeddings. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <stdatomic.h>
#include <time.h>
#include <jpeglib.h>

#include <bioesp.h>

#include "support/testapi.h"
#include "support/testutil.h"

static bioesp_model* model;

static int setup(void** state) {
  (void)state;
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.threads = 2;
  if (bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &model) != BIOESP_OK) {
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

/* The mean absolute difference in 8-bit levels between image `index` of `images` and golden image
 * `key` of `file` (H×W×3 floats in [0, 1]). */
static double golden_difference(const bioesp_images* images, size_t index, const char* file, const char* key) {
  bioesp_image img = image_at(images, index);
  bioesp_weights* golden = NULL;
  assert_int_equal(bioesp_weights_open(path_join(ref_dir(), file), NULL, &golden), BIOESP_OK);
  size_t at;
  assert_int_equal(bioesp_weights_find(golden, NULL, key, &at), BIOESP_OK);
  size_t n = (size_t)img.width * img.height * 3;
  float* ref = malloc(n * sizeof(float));
  assert_int_equal(bioesp_weights_read(golden, at, BIOESP_DTYPE_F32, ref, n * sizeof(float)), BIOESP_OK);
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += fabs((double)img.pixels[i] - round(ref[i] * 255.0));
  free(ref);
  bioesp_weights_close(golden);
  return total / n;
}

static void test_png_matches_diffusers(void** state) {
  (void)state;
  bioesp_generate_options g = golden_options();
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_generate(model, &g, &images), BIOESP_OK);
  const char* png = path_join(temp_dir(), "ddim.png");
  assert_int_equal(bioesp_images_save(images, 0, png, NULL), BIOESP_OK);
  assert_string_equal(bioesp_images_setting(images, 0, "seed"), "1234");
  assert_string_equal(bioesp_images_setting(images, 0, "prompt"), kGoldenPrompt[0]);
  bioesp_images_free(images);

  bioesp_images* back = NULL;
  assert_int_equal(bioesp_images_load(png, &back), BIOESP_OK);
  bioesp_image img = image_at(back, 0);
  assert_int_equal(img.width, 128);
  assert_int_equal(img.height, 128);
  assert_int_equal(img.channels, 3);

  double mad = golden_difference(back, 0, "golden/tiny-sd1/pipeline.safetensors", "ddim.steps10");
  print_message("PNG vs diffusers rounded to 8 bits: mean absolute difference %.4f / 255\n", mad);
  assert_true(mad <= 1.0);
  bioesp_images_free(back);
}

/* SDXL through the C API: micro-conditioning set by name reaches the UNet (diffusers' 64×128
 * micro-conditioning image), a NULL negative prompt gives diffusers' zero negative embeddings. */
static void test_sdxl(void** state) {
  (void)state;
  bioesp_model* xl = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sdxl"), NULL, &xl), BIOESP_OK);
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  assert_float_equal(g.aesthetic_score, 6.0f, 0);
  g.prompts = kGoldenPrompt;
  g.num_prompts = 1;
  g.steps = 10;
  g.guidance = 5.0f;
  g.seed = 1234;
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_generate(xl, &g, &images), BIOESP_OK);
  double mad = golden_difference(images, 0, "golden/tiny-sdxl/pipeline.safetensors", "euler.steps10.negative_none_zeros");
  print_message("SDXL, no negative prompt, vs diffusers: %.4f / 255\n", mad);
  assert_true(mad <= 1.0);
  bioesp_images_free(images);

  g.negative_prompt = "blurry, low quality";
  g.width = 128;
  g.height = 64;
  const char* micro[][2] = {{"original_width", "192"}, {"original_height", "96"}, {"crop_left", "8"},
                            {"crop_top", "4"},         {"target_width", "128"},   {"target_height", "64"}};
  for (size_t i = 0; i < sizeof micro / sizeof micro[0]; ++i)
    assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, micro[i][0], micro[i][1]), BIOESP_OK);
  assert_int_equal(bioesp_generate(xl, &g, &images), BIOESP_OK);
  mad = golden_difference(images, 0, "golden/tiny-sdxl/pipeline.safetensors", "euler.64x128.micro_conditioning");
  print_message("SDXL micro-conditioning vs diffusers: %.4f / 255\n", mad);
  assert_true(mad <= 1.0);
  bioesp_images_free(images);
  assert_int_equal(bioesp_option_set(BIOESP_OPTIONS_GENERATE, &g, "aesthetic_score", "11"), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_model_free(xl);
}

static int count_progress(void* user, const bioesp_progress* p) {
  int* calls = user;
  ++*calls;
  assert_string_equal(p->stage, "denoise");
  assert_true(p->current <= p->total);
  return 0;
}

static int cancel_at_two(void* user, const bioesp_progress* p) {
  (void)user;
  return p->current >= 2;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* What a job's progress callback saw (written on its worker thread, read here). */
typedef struct probe {
  atomic_int* order;   /* shared counter: the job's place among the jobs that have started */
  atomic_int started;  /* its place, from 1; 0 until its first step */
  atomic_int steps;
  atomic_int* hold;    /* while nonzero, the job waits at its first step (holding the model) */
  struct probe* partner; /* when set: the job waits at its first step until the partner started */
  atomic_int partner_seen;
} probe;

static void probe_init(probe* p, atomic_int* order, atomic_int* hold) {
  memset(p, 0, sizeof *p);
  p->order = order;
  p->hold = hold;
  atomic_init(&p->started, 0);
  atomic_init(&p->steps, 0);
  atomic_init(&p->partner_seen, 0);
}

static int probe_progress(void* user, const bioesp_progress* p) {
  probe* pr = user;
  (void)p;
  if (atomic_fetch_add(&pr->steps, 1) == 0) {
    atomic_store(&pr->started, atomic_fetch_add(pr->order, 1) + 1);
    for (int i = 0; pr->hold && atomic_load(pr->hold) && i < 60000; ++i) sleep_ms(1);
    for (int i = 0; pr->partner && !atomic_load(&pr->partner->started) && i < 60000; ++i) sleep_ms(1);
    if (pr->partner) atomic_store(&pr->partner_seen, atomic_load(&pr->partner->started) != 0);
  }
  return 0;
}

static bioesp_job_state state_of(const bioesp_job* job) {
  bioesp_job_state st;
  assert_int_equal(bioesp_job_poll(job, &st, NULL, NULL), BIOESP_OK);
  return st;
}

static void wait_done(bioesp_job* job) {
  int finished = 0;
  assert_int_equal(bioesp_job_wait(job, 120000, &finished), BIOESP_OK);
  assert_true(finished);
}

/* Jobs on one model run one at a time in the order submitted; each is QUEUED until it holds the
 * model, then RUNNING; their images equal the synchronous ones. */
static void test_jobs_in_order(void** state) {
  (void)state;
  enum { N = 5 };
  bioesp_generate_options g = golden_options();
  g.steps = 2;
  int calls = 0;
  g.progress = count_progress;
  g.progress_user = &calls;
  bioesp_images* sync = NULL;
  assert_int_equal(bioesp_generate(model, &g, &sync), BIOESP_OK);
  assert_int_equal(calls, 2);
  atomic_int order, hold;
  atomic_init(&order, 0);
  atomic_init(&hold, 1);
  probe probes[N];
  bioesp_job* jobs[N];
  for (int i = 0; i < N; ++i) {
    probe_init(&probes[i], &order, i == 0 ? &hold : NULL);
    g.progress = probe_progress;
    g.progress_user = &probes[i];
    assert_int_equal(bioesp_generate_async(model, &g, &jobs[i]), BIOESP_OK);
  }
  /* the first holds the model (stopped at its first step): the others wait their turn */
  for (int i = 0; i < 60000 && !atomic_load(&probes[0].started); ++i) sleep_ms(1);
  assert_int_equal(state_of(jobs[0]), BIOESP_JOB_RUNNING);
  for (int round = 0; round < 2; ++round) {
    for (int i = 1; i < N; ++i) assert_int_equal(state_of(jobs[i]), BIOESP_JOB_QUEUED);
    sleep_ms(100);
  }
  atomic_store(&hold, 0);
  for (int i = 0; i < N; ++i) wait_done(jobs[i]);
  for (int i = 0; i < N; ++i) {
    assert_int_equal(atomic_load(&probes[i].started), i + 1);
    bioesp_images* images = NULL;
    assert_int_equal(bioesp_job_take(jobs[i], &images), BIOESP_OK);
    assert_memory_equal(image_at(sync, 0).pixels, image_at(images, 0).pixels, 128 * 128 * 3);
    bioesp_images_free(images);
  }
  bioesp_images* again = NULL;
  assert_int_equal(bioesp_job_take(jobs[0], &again), BIOESP_ERR_INVALID_ARGUMENT); /* only once */
  assert_null(again);
  uint64_t step = 0, total = 0;
  bioesp_job_state st;
  assert_int_equal(bioesp_job_poll(jobs[1], &st, &step, &total), BIOESP_OK);
  assert_int_equal(st, BIOESP_JOB_DONE);
  assert_int_equal(step, 2);
  assert_int_equal(total, 2);
  for (int i = 0; i < N; ++i) bioesp_job_free(jobs[i]);
  bioesp_images_free(sync);
}

/* A job on a second model runs while one on the first is mid-way: each waits at its first step
 * until it sees the other started, which only concurrent jobs can. */
static void test_models_run_concurrently(void** state) {
  (void)state;
  bioesp_model* other = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), NULL, &other), BIOESP_OK);
  bioesp_generate_options g = golden_options();
  g.steps = 3;
  atomic_int order;
  atomic_init(&order, 0);
  probe a, b;
  probe_init(&a, &order, NULL);
  probe_init(&b, &order, NULL);
  a.partner = &b;
  b.partner = &a;
  bioesp_job *ja = NULL, *jb = NULL;
  g.progress = probe_progress;
  g.progress_user = &a;
  assert_int_equal(bioesp_generate_async(model, &g, &ja), BIOESP_OK);
  g.progress_user = &b;
  assert_int_equal(bioesp_generate_async(other, &g, &jb), BIOESP_OK);
  wait_done(ja);
  wait_done(jb);
  assert_true(atomic_load(&a.partner_seen));
  assert_true(atomic_load(&b.partner_seen));
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_job_take(jb, &images), BIOESP_OK);
  bioesp_images_free(images);
  bioesp_job_free(ja);
  bioesp_job_free(jb);
  bioesp_model_free(other);
}

/* Cancelling: from the callback, by bioesp_job_cancel, a queued job at once (and the jobs after
 * it still run), and by freeing a running job. */
static void test_cancel(void** state) {
  (void)state;
  bioesp_generate_options g = golden_options();
  g.steps = 10;
  g.progress = cancel_at_two;
  bioesp_images* out = NULL;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_CANCELLED);
  assert_null(out);

  g.progress = NULL;
  bioesp_job* a = NULL;
  assert_int_equal(bioesp_generate_async(model, &g, &a), BIOESP_OK);
  assert_int_equal(bioesp_job_cancel(a), BIOESP_OK);
  wait_done(a);
  uint64_t step = 0;
  assert_int_equal(bioesp_job_poll(a, NULL, &step, NULL), BIOESP_OK);
  assert_true(step < 10);
  assert_int_equal(bioesp_job_take(a, &out), BIOESP_ERR_CANCELLED);
  assert_non_null(strstr(bioesp_last_error(), "cancelled"));
  bioesp_job_free(a);

  atomic_int order, hold;
  atomic_init(&order, 0);
  atomic_init(&hold, 1);
  probe first;
  probe_init(&first, &order, &hold);
  g.steps = 2;
  g.progress = probe_progress;
  g.progress_user = &first;
  bioesp_job *running = NULL, *queued = NULL, *after = NULL;
  assert_int_equal(bioesp_generate_async(model, &g, &running), BIOESP_OK);
  g.progress = NULL;
  assert_int_equal(bioesp_generate_async(model, &g, &queued), BIOESP_OK);
  for (int i = 0; i < 60000 && !atomic_load(&first.started); ++i) sleep_ms(1);
  assert_int_equal(bioesp_job_cancel(queued), BIOESP_OK);
  int finished = 0;
  assert_int_equal(bioesp_job_wait(queued, 10000, &finished), BIOESP_OK);
  assert_true(finished); /* without waiting for the running job */
  assert_int_equal(state_of(running), BIOESP_JOB_RUNNING);
  assert_int_equal(bioesp_job_take(queued, &out), BIOESP_ERR_CANCELLED);
  assert_int_equal(bioesp_generate_async(model, &g, &after), BIOESP_OK);
  atomic_store(&hold, 0);
  wait_done(running);
  wait_done(after);
  assert_int_equal(bioesp_job_take(after, &out), BIOESP_OK);
  bioesp_images_free(out);
  bioesp_job_free(running);
  bioesp_job_free(queued);
  bioesp_job_free(after);

  /* Freeing a running job cancels it. */
  g.steps = 10;
  assert_int_equal(bioesp_generate_async(model, &g, &a), BIOESP_OK);
  bioesp_job_free(a);
}

static void test_img2img_inputs(void** state) {
  (void)state;
  /* Gray and RGBA inputs convert; sizes crop to multiples of 8. */
  static uint8_t gray[70 * 61], rgba[64 * 64 * 4];
  for (size_t i = 0; i < sizeof gray; ++i) gray[i] = (uint8_t)(i * 7);
  for (size_t i = 0; i < sizeof rgba; ++i) rgba[i] = (uint8_t)(i * 3);
  bioesp_image in = {sizeof(bioesp_image), 70, 61, 1, gray};
  bioesp_generate_options g = golden_options();
  g.steps = 4;
  g.strength = 0.5f;
  g.init_image = &in;
  bioesp_images* out = NULL;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_OK);
  bioesp_image img = image_at(out, 0);
  assert_int_equal(img.width, 64);
  assert_int_equal(img.height, 56);
  /* An older caller's bioesp_image (one without pixels) gets the fields it has. */
  bioesp_image old;
  memset(&old, 0x5a, sizeof old);
  old.struct_size = offsetof(bioesp_image, pixels);
  assert_int_equal(bioesp_images_get(out, 0, &old), BIOESP_OK);
  assert_int_equal(old.struct_size, offsetof(bioesp_image, pixels));
  assert_int_equal(old.width, 64);
  assert_int_equal(old.channels, 3);
  assert_int_equal(((unsigned char*)&old.pixels)[0], 0x5a);
  bioesp_images_free(out);
  bioesp_image in4 = {sizeof(bioesp_image), 64, 64, 4, rgba};
  g.init_image = &in4;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_OK);
  bioesp_images_free(out);
  bioesp_image bad = {sizeof(bioesp_image), 64, 64, 2, rgba};
  g.init_image = &bad;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  /* A file that is no image */
  bioesp_images* loaded = NULL;
  const char* junk = path_join(temp_dir(), "junk.png");
  write_file(junk, "\x89PNG\r\n\x1a\nnot really", 18);
  assert_int_equal(bioesp_images_load(junk, &loaded), BIOESP_ERR_FORMAT);
  write_file(junk, "GIF89a.....", 11);
  assert_int_equal(bioesp_images_load(junk, &loaded), BIOESP_ERR_UNSUPPORTED);
}

static void expect_colour(const char* path, int r, int g, int b) {
  bioesp_images* set = NULL;
  if (bioesp_images_load(path, &set) != BIOESP_OK) fail_msg("%s: %s", path, bioesp_last_error());
  bioesp_image img = image_at(set, 0);
  assert_int_equal(img.channels, 3);
  assert_int_equal(img.width, 16);
  const uint8_t* p = img.pixels + (8 * 16 + 8) * 3;
  if (abs(p[0] - r) > 3 || abs(p[1] - g) > 3 || abs(p[2] - b) > 3)
    fail_msg("%s: pixel (%d, %d, %d), want (%d, %d, %d)", path, p[0], p[1], p[2], r, g, b);
  bioesp_images_free(set);
}

static void test_jpeg_decoding(void** state) {
  (void)state;
  /* Adobe CMYK is stored inverted: 255 is no ink. Full magenta ink on white paper. */
  const uint8_t magenta[4] = {255, 0, 255, 255};
  const char* cmyk = path_join(temp_dir(), "cmyk.jpg");
  write_test_jpeg(cmyk, JCS_CMYK, 4, magenta, 0);
  expect_colour(cmyk, 255, 0, 255);
  const uint8_t grey[1] = {100};
  const char* gray = path_join(temp_dir(), "gray.jpg");
  write_test_jpeg(gray, JCS_GRAYSCALE, 1, grey, 1);
  expect_colour(gray, 100, 100, 100);
  const uint8_t green[3] = {20, 200, 60};
  const char* rgb = path_join(temp_dir(), "progressive.jpg");
  write_test_jpeg(rgb, JCS_RGB, 3, green, 1);
  expect_colour(rgb, 20, 200, 60);
  /* a truncated JPEG is refused, not decoded into garbage or a crash */
  FILE* f = fopen(rgb, "rb");
  uint8_t buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  const char* cut = path_join(temp_dir(), "cut.jpg");
  write_file(cut, buf, n / 3);
  bioesp_images* set = NULL;
  bioesp_status s = bioesp_images_load(cut, &set);
  if (s == BIOESP_OK) bioesp_images_free(set);
  assert_int_equal(s, BIOESP_ERR_FORMAT);
}

/* Largest per-channel difference between two images of one size, in 8-bit steps. */
static int max_pixel_difference(const bioesp_image* a, const bioesp_image* b) {
  assert_int_equal(a->width, b->width);
  assert_int_equal(a->height, b->height);
  int worst = 0;
  for (size_t i = 0; i < (size_t)a->width * a->height * a->channels; ++i) {
    int d = abs((int)a->pixels[i] - (int)b->pixels[i]);
    if (d > worst) worst = d;
  }
  return worst;
}

/* Generates `g` whole and in 64-pixel VAE tiles: the images differ by one 8-bit step at most. */
static void assert_tiles_match(bioesp_generate_options g, const char* what) {
  bioesp_images *whole = NULL, *tiled = NULL;
  g.vae_tile_size = 0;
  assert_int_equal(bioesp_generate(model, &g, &whole), BIOESP_OK);
  g.vae_tile_size = 64;
  assert_int_equal(bioesp_generate(model, &g, &tiled), BIOESP_OK);
  bioesp_image a = image_at(whole, 0), b = image_at(tiled, 0);
  int d = max_pixel_difference(&a, &b);
  print_message("%s, tiled vs whole: largest difference %d / 255\n", what, d);
  assert_true(d <= 1);
  bioesp_images_free(whole);
  bioesp_images_free(tiled);
}

/* VAE tiles (a 3×2 grid; img2img also encodes in tiles) draw the untiled image. */
static void test_vae_tiles(void** state) {
  (void)state;
  bioesp_generate_options g = golden_options();
  g.steps = 4;
  g.width = 192;
  g.height = 128;
  assert_tiles_match(g, "txt2img");
  bioesp_images* init = NULL;
  assert_int_equal(bioesp_generate(model, &g, &init), BIOESP_OK);
  bioesp_image init_view = image_at(init, 0);
  g.init_image = &init_view;
  g.strength = 0.5f;
  assert_tiles_match(g, "img2img");
  g.vae_tile_size = -1;
  bioesp_images* out = NULL;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "tile"));
  bioesp_images_free(init);
}

static void test_bad_requests(void** state) {
  (void)state;
  bioesp_images* out = NULL;
  bioesp_generate_options g = golden_options();
  g.steps = 2;
  g.width = 100;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "multiple"));
  g = golden_options();
  g.guidance = NAN;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "guidance: must be a finite number, not nan");
  g = golden_options();
  g.steps = 0;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "steps: must be between 1 and 1000, not 0");
  g = golden_options();
  g.images_per_prompt = 0;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "images_per_prompt: must be between 1 and 1024, not 0");
  g = golden_options();
  g.strength = 1.5f;
  assert_int_equal(bioesp_generate_async(model, &g, &(bioesp_job*){NULL}), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "strength: must be above 0 and at most 1, not 1.5");
  g = golden_options();
  g.prompts = NULL;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_string_equal(bioesp_last_error(), "prompts: NULL with num_prompts 1");
  g = golden_options();
  g.scheduler = "heun";
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "heun"));
  g = golden_options();
  g.num_prompts = 0;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  /* LoRA calls */
  assert_int_equal(bioesp_model_add_lora(model, path_join(ref_dir(), "workshop/model_lora.ckpt"), 1.0f, "w"),
                   BIOESP_ERR_MISMATCH);
  assert_int_equal(bioesp_model_add_lora(model, path_join(ref_dir(), "golden/tiny-sd1/lora/kohya_lora.safetensors"), 1.0f, "k"),
                   BIOESP_OK);
  assert_int_equal(bioesp_model_set_lora_scale(model, "k", 0.25f), BIOESP_OK);
  assert_int_equal(bioesp_model_set_lora_scale(model, "nope", 0.25f), BIOESP_ERR_NOT_FOUND);
  /* the images record the LoRAs they were drawn with, as given, with their scales */
  char expected[4200];
  snprintf(expected, sizeof expected, "%s:0.25", path_join(ref_dir(), "golden/tiny-sd1/lora/kohya_lora.safetensors"));
  g = golden_options();
  g.steps = 1;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_OK);
  assert_string_equal(bioesp_images_setting(out, 0, "loras"), expected);
  bioesp_images_free(out);
  assert_int_equal(bioesp_model_remove_lora(model, "k"), BIOESP_OK);
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_OK);
  assert_null(bioesp_images_setting(out, 0, "loras"));
  bioesp_images_free(out);
  /* Models that are missing or half there */
  bioesp_model* m = NULL;
  assert_int_equal(bioesp_model_load(path_join(temp_dir(), "nowhere"), NULL, &m), BIOESP_ERR_NOT_FOUND);
  assert_non_null(strstr(bioesp_last_error(), "no such model folder or file"));
  assert_null(m);
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.dtype = BIOESP_DTYPE_I64;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &m), BIOESP_ERR_INVALID_ARGUMENT);
}

static void count_truncations(void* user, bioesp_log_level level, const char* message) {
  if (level == BIOESP_LOG_WARNING && strstr(message, "truncated")) ++*(int*)user;
}

static int same_pixels(const bioesp_images* a, const bioesp_images* b) {
  bioesp_image x = image_at(a, 0), y = image_at(b, 0);
  return x.width == y.width && x.height == y.height && memcmp(x.pixels, y.pixels, (size_t)x.width * x.height * 3) == 0;
}

/* "text " `times` times, in a buffer the caller frees. */
static char* repeated(const char* text, size_t times) {
  size_t n = strlen(text);
  char* out = malloc(n * times + 1);
  for (size_t i = 0; i < times; ++i) memcpy(out + i * n, text, n);
  out[n * times] = 0;
  return out;
}

/* Both syntaxes through the C API: a long prompt drawn whole (weighted) or cut with a warning
 * (plain), the syntax recorded, a short prompt without syntax the same image either way, and
 * bad values and hostile prompts refused. */
static void test_prompt_syntax(void** state) {
  (void)state;
  char* long_prompt = repeated("cat ", 150);
  const char* prompts[] = {long_prompt};
  int truncations = 0;
  bioesp_generate_options g = golden_options();
  g.steps = 2;
  g.prompts = prompts;
  g.log = count_truncations;
  g.log_user = &truncations;
  bioesp_images *plain = NULL, *weighted = NULL;
  assert_int_equal(bioesp_generate(model, &g, &plain), BIOESP_OK);
  assert_int_equal(truncations, 1);
  assert_null(bioesp_images_setting(plain, 0, "prompt_syntax"));  /* recorded only when weighted */
  g.prompt_syntax = BIOESP_PROMPT_WEIGHTED;
  assert_int_equal(bioesp_generate(model, &g, &weighted), BIOESP_OK);
  assert_int_equal(truncations, 1);
  assert_string_equal(bioesp_images_setting(weighted, 0, "prompt_syntax"), "weighted");
  assert_false(same_pixels(plain, weighted));
  bioesp_images_free(plain);
  bioesp_images_free(weighted);
  g.prompts = kGoldenPrompt;
  assert_int_equal(bioesp_generate(model, &g, &weighted), BIOESP_OK);
  g.prompt_syntax = BIOESP_PROMPT_PLAIN;
  assert_int_equal(bioesp_generate(model, &g, &plain), BIOESP_OK);
  assert_true(same_pixels(plain, weighted));
  bioesp_images_free(plain);
  bioesp_images_free(weighted);

  /* an animation between keyframes of one and two windows */
  bioesp_animate_options a;
  bioesp_animate_options_init(&a);
  const char* keys[] = {"cat", long_prompt};
  const uint64_t seed = 3;
  a.prompts = keys;
  a.num_prompts = 2;
  a.seeds = &seed;
  a.num_seeds = 1;
  a.frames = 3;
  a.steps = 1;
  a.width = a.height = 64;
  a.prompt_syntax = BIOESP_PROMPT_WEIGHTED;
  bioesp_images* frames = NULL;
  assert_int_equal(bioesp_animate(model, &a, &frames), BIOESP_OK);
  bioesp_images_free(frames);

  bioesp_images* out = NULL;
  g.prompt_syntax = (bioesp_prompt_syntax)7;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "prompt_syntax"));
  g.prompt_syntax = BIOESP_PROMPT_WEIGHTED;
  const char* hostile[] = {"(x:1.2.3)"};
  g.prompts = hostile;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "is not a number"));
  char* nested = repeated("(", 300); /* 100,000 are refused by size first; test_prompts parses them */
  hostile[0] = nested;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "nested more than 256 deep"));
  char* megabyte = repeated("colibr\xc3\xad (helecho:1.1), ", 45000); /* 1 MB */
  hostile[0] = megabyte;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "bytes; at most 65536"));
  char* windows = repeated("cat ", 2500); /* 34 windows of 75 tokens */
  hostile[0] = windows;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "a prompt of 34 windows of 75 tokens; at most 32"));
  free(windows);
  g.negative_prompt = nested;  /* the negative prompt is read alike */
  g.prompts = kGoldenPrompt;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_ERR_INVALID_ARGUMENT);
  assert_null(out);
  free(megabyte);
  free(nested);
  free(long_prompt);
}

/* A safetensors embedding {key: [n, width]} with small finite values. */
static const char* embedding_file(const char* name, const char* key, int n, int width) {
  char header[256];
  snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}", key, n, width,
           n * width * 4);
  size_t size = 0;
  unsigned char* buf = make_safetensors(header, (size_t)n * width * 4, &size);
  float* values = (float*)(buf + 8 + strlen(header));
  for (int i = 0; i < n * width; ++i) values[i] = (float)(i % 13) / 13.0f - 0.5f;
  const char* path = path_join(temp_dir(), name);
  write_file(path, buf, size);
  free(buf);
  return path;
}

static void test_embeddings(void** state) {
  (void)state;
  const char* file = embedding_file("learned_embeds.safetensors", "<bichito>", 2, 32);
  const char* prompts[] = {"a <bichito> in the fern"};
  bioesp_generate_options g = golden_options();
  g.steps = 2;
  g.prompts = prompts;
  bioesp_images *without = NULL, *with = NULL;
  assert_int_equal(bioesp_generate(model, &g, &without), BIOESP_OK);
  assert_int_equal(bioesp_model_add_embedding(model, file, NULL), BIOESP_OK);
  assert_int_equal(bioesp_model_add_embedding(model, file, "bicho"), BIOESP_OK);
  char* tokens = NULL;
  assert_int_equal(bioesp_model_embeddings(model, &tokens), BIOESP_OK);
  assert_string_equal(tokens, "<bichito>\nbicho\n");
  bioesp_string_free(tokens);
  g.prompt_syntax = BIOESP_PROMPT_WEIGHTED;
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_OK);
  assert_false(same_pixels(without, with));
  char expected[4200];
  snprintf(expected, sizeof expected, "%s:<bichito>; %s:bicho", file, file);
  assert_string_equal(bioesp_images_setting(with, 0, "embeddings"), expected);
  bioesp_images_free(with);
  assert_int_equal(bioesp_model_remove_embedding(model, "<bichito>"), BIOESP_OK);
  assert_int_equal(bioesp_model_remove_embedding(model, "bicho"), BIOESP_OK);
  assert_int_equal(bioesp_model_remove_embedding(model, "bicho"), BIOESP_ERR_NOT_FOUND);
  assert_int_equal(bioesp_generate(model, &g, &with), BIOESP_OK);
  assert_true(same_pixels(without, with));
  assert_null(bioesp_images_setting(with, 0, "embeddings"));
  bioesp_images_free(with);
  bioesp_images_free(without);

  /* refused, by name: another width; a pickle that names code; no file */
  assert_int_equal(bioesp_model_add_embedding(model, embedding_file("sd2.safetensors", "emb_params", 1, 1024), NULL),
                   BIOESP_ERR_MISMATCH);
  assert_non_null(strstr(bioesp_last_error(), "width 1024, but this model's text encoder takes 32"));
  static const char pkl[] = "\x80\x02}(X\x0f\x00\x00\x00string_to_paramcos\nsystem\nX\x05\x00\x00\x00touch\x85Ru.";
  zip_entry e[2] = {{"code/data.pkl", pkl, sizeof pkl - 1}, {"code/version", "3\n", 2}};
  const char* code = path_join(temp_dir(), "code.pt");
  write_zip(code, e, 2);
  assert_int_equal(bioesp_model_add_embedding(model, code, NULL), BIOESP_ERR_FORMAT);
  assert_non_null(strstr(bioesp_last_error(), "'os.system'"));
  assert_int_equal(bioesp_model_add_embedding(model, path_join(temp_dir(), "none.pt"), NULL), BIOESP_ERR_NOT_FOUND);
  assert_int_equal(bioesp_model_add_embedding(model, NULL, NULL), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_model_embeddings(model, &tokens), BIOESP_OK);
  assert_string_equal(tokens, "");
  bioesp_string_free(tokens);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_png_matches_diffusers), cmocka_unit_test(test_jobs_in_order),
      cmocka_unit_test(test_models_run_concurrently), cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_img2img_inputs), cmocka_unit_test(test_jpeg_decoding),
      cmocka_unit_test(test_vae_tiles), cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_prompt_syntax), cmocka_unit_test(test_embeddings), cmocka_unit_test(test_sdxl)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
