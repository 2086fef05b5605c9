/* ControlNets, inpainting and outpainting through the public C API: diffusers' images for a
 * ControlNet (one, two at once, img2img) and for inpainting (9-channel model, padding_mask_crop);
 * masks all black (the original back), all white (nothing of it kept), of another size;
 * outpainting; control images in every PNG and JPEG flavour the loaders read; ControlNets with
 * step caching and with an LCM UNet; inpainting with TAESD; a ControlNet made for another base
 * refused by name; bad requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jpeglib.h>
#include <math.h>
#include <png.h>

#include <bioesp.h>

#include "support/testapi.h"
#include "support/testutil.h"

static bioesp_model *model, *inpainter;
static bioesp_controlnet *edges_net, *depth_net;
static bioesp_weights *cn_golden, *inpaint_golden;

#define W 128
#define H 128

static void check(bioesp_status s) {
  if (s != BIOESP_OK) fail_msg("%s: %s", bioesp_status_string(s), bioesp_last_error());
}

static const char* control_path(const char* name) {
  return path_join(path_join(ref_dir(), "golden/control"), name);
}

static int setup(void** state) {
  (void)state;
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.threads = 2;
  check(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &model));
  check(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1-inpaint"), &o, &inpainter));
  check(bioesp_controlnet_load(model, control_path("controlnet"), &edges_net));
  check(bioesp_controlnet_load(model, control_path("controlnet_2"), &depth_net));
  check(bioesp_weights_open(control_path("pipeline_controlnet.safetensors"), NULL, &cn_golden));
  check(bioesp_weights_open(control_path("pipeline_inpaint.safetensors"), NULL, &inpaint_golden));
  return 0;
}

static int teardown(void** state) {
  (void)state;
  bioesp_controlnet_free(edges_net);
  bioesp_controlnet_free(depth_net);
  bioesp_model_free(model);
  bioesp_model_free(inpainter);
  bioesp_weights_close(cn_golden);
  bioesp_weights_close(inpaint_golden);
  return 0;
}

/* A golden tensor of n values, as floats or bytes. */
static void* read_golden(bioesp_weights* w, const char* key, bioesp_dtype dtype, size_t n) {
  size_t index;
  check(bioesp_weights_find(w, NULL, key, &index));
  size_t bytes = n * (dtype == BIOESP_DTYPE_F32 ? 4 : 1);
  void* out = malloc(bytes);
  check(bioesp_weights_read(w, index, dtype, out, bytes));
  return out;
}

typedef struct owned_image {
  bioesp_image view;
  uint8_t* pixels;
} owned_image;

static owned_image golden_image(bioesp_weights* w, const char* key, uint32_t channels) {
  owned_image o;
  o.pixels = read_golden(w, key, BIOESP_DTYPE_U8, (size_t)W * H * channels);
  memset(&o.view, 0, sizeof o.view);
  o.view.struct_size = sizeof o.view;
  o.view.width = W, o.view.height = H, o.view.channels = channels, o.view.pixels = o.pixels;
  return o;
}

static owned_image filled(uint32_t w, uint32_t h, uint32_t channels, uint8_t v) {
  owned_image o;
  o.pixels = malloc((size_t)w * h * channels);
  memset(o.pixels, v, (size_t)w * h * channels);
  memset(&o.view, 0, sizeof o.view);
  o.view.struct_size = sizeof o.view;
  o.view.width = w, o.view.height = h, o.view.channels = channels, o.view.pixels = o.pixels;
  return o;
}

/* Mean absolute difference, in 8-bit steps, of the picture from diffusers' float image where
 * `where` (W × H, NULL: everywhere) is nonzero. */
static double difference(const bioesp_image* img, const float* ref, const uint8_t* where) {
  double total = 0;
  size_t n = 0;
  for (size_t i = 0; i < (size_t)W * H * 3; ++i) {
    if (where && !where[i / 3]) continue;
    total += fabs((double)img->pixels[i] - round(ref[i] * 255.0));
    ++n;
  }
  return total / (double)n;
}

/* One ControlNet with its control image, the rest as bioesp_control_init leaves it. */
static bioesp_control control_of(bioesp_controlnet* net, const bioesp_image* image) {
  bioesp_control c;
  bioesp_control_init(&c);
  c.controlnet = net;
  c.image = image;
  return c;
}

static bioesp_images* generate(bioesp_model* m, const bioesp_generate_options* g) {
  bioesp_images* out = NULL;
  check(bioesp_generate(m, g, &out));
  return out;
}

static void test_controlnets_match_diffusers(void** state) {
  (void)state;
  owned_image edges = golden_image(cn_golden, "control_edges_uint8", 3), depth = golden_image(cn_golden, "control_depth_uint8", 3);
  bioesp_control c[2] = {control_of(edges_net, &edges.view), control_of(NULL, NULL)};
  bioesp_generate_options g = golden_options();
  g.controls = c;
  g.num_controls = 1;
  bioesp_images* out = generate(model, &g);
  bioesp_image img = image_at(out, 0);
  assert_int_equal(img.width, W);  /* the control image's size */
  float* ref = read_golden(cn_golden, "cn.ddim.steps10", BIOESP_DTYPE_F32, (size_t)W * H * 3);
  double d = difference(&img, ref, NULL);
  print_message("ControlNet txt2img: %.4f / 255 from diffusers\n", d);
  assert_true(d <= 1.0);
  assert_non_null(strstr(bioesp_images_setting(out, 0, "controlnets"), "controlnet:1"));
  bioesp_images_free(out);
  free(ref);

  /* Two at once, the second by path (loaded for this call only), scales 1 and 0.5. */
  c[1].path = control_path("controlnet_2");
  c[1].image = &depth.view;
  c[1].scale = 0.5f;
  g.num_controls = 2;
  out = generate(model, &g);
  img = image_at(out, 0);
  ref = read_golden(cn_golden, "multicn.ddim.steps10", BIOESP_DTYPE_F32, (size_t)W * H * 3);
  d = difference(&img, ref, NULL);
  print_message("MultiControlNet: %.4f / 255 from diffusers\n", d);
  assert_true(d <= 1.0);
  bioesp_images_free(out);
  free(ref);

  /* img2img with a ControlNet, as a job whose ControlNet handle is freed before it runs. */
  owned_image init = golden_image(cn_golden, "img2img.init_uint8", 3);
  bioesp_controlnet* own = NULL;
  check(bioesp_controlnet_load(model, control_path("controlnet"), &own));
  c[0].controlnet = own;
  c[0].scale = 0.8f; /* StableDiffusionControlNetImg2ImgPipeline's default conditioning scale */
  g.num_controls = 1;
  g.init_image = &init.view;
  g.strength = 0.6f;
  bioesp_job* job = NULL;
  check(bioesp_generate_async(model, &g, &job));
  bioesp_controlnet_free(own);
  int finished = 0;
  check(bioesp_job_wait(job, -1, &finished));
  check(bioesp_job_take(job, &out));
  img = image_at(out, 0);
  ref = read_golden(cn_golden, "cn_img2img.ddim.strength0.6", BIOESP_DTYPE_F32, (size_t)W * H * 3);
  d = difference(&img, ref, NULL);
  print_message("ControlNet img2img: %.4f / 255 from diffusers\n", d);
  assert_true(d <= 1.0);
  bioesp_images_free(out);
  bioesp_job_free(job);
  free(ref);
  free(edges.pixels), free(depth.pixels), free(init.pixels);
}

/* Inpainting keeps the init image outside the mask: diffusers' picture is compared where the
 * mask repaints, the init image's pixels everywhere else. */
static void test_inpainting_matches_diffusers(void** state) {
  (void)state;
  owned_image init = golden_image(inpaint_golden, "inpaint.init_uint8", 3);
  owned_image mask = golden_image(inpaint_golden, "inpaint.mask_right_half_uint8", 1);
  bioesp_generate_options g = golden_options();
  g.init_image = &init.view;
  g.mask = &mask.view;
  g.strength = 1.0f;
  bioesp_images* out = generate(inpainter, &g);
  bioesp_image img = image_at(out, 0);
  float* ref = read_golden(inpaint_golden, "inpaint9.ddim.strength1.0", BIOESP_DTYPE_F32, (size_t)W * H * 3);
  double d = difference(&img, ref, mask.pixels);
  print_message("9-channel inpainting: %.4f / 255 from diffusers inside the mask\n", d);
  assert_true(d <= 1.0);
  for (size_t i = 0; i < (size_t)W * H * 3; ++i)
    if (!mask.pixels[i / 3] && img.pixels[i] != init.pixels[i]) fail_msg("pixel %zu outside the mask changed", i / 3);
  bioesp_images_free(out);
  free(ref);

  /* padding_mask_crop on the ordinary model: the returned picture within ±1 of diffusers'. */
  owned_image rect = golden_image(inpaint_golden, "inpaint.mask_rect_uint8", 1);
  g.mask = &rect.view;
  g.padding_mask_crop = 16;
  out = generate(model, &g);
  img = image_at(out, 0);
  uint8_t* want = read_golden(inpaint_golden, "inpaint4.ddim.padding_mask_crop16.uint8", BIOESP_DTYPE_U8, (size_t)W * H * 3);
  int worst = 0;
  for (size_t i = 0; i < (size_t)W * H * 3; ++i) worst = abs(img.pixels[i] - want[i]) > worst ? abs(img.pixels[i] - want[i]) : worst;
  print_message("padding_mask_crop: largest difference %d / 255\n", worst);
  assert_true(worst <= 1);
  assert_string_equal(bioesp_images_setting(out, 0, "padding_mask_crop"), "16");
  bioesp_images_free(out);
  free(want), free(init.pixels), free(mask.pixels), free(rect.pixels);
}

/* All black: the original comes back. All white: nothing of it is kept. A mask of another size
 * (64 × 64) gives the picture its 128 × 128 twin gives, away from the soft edge resizing makes. */
static void test_masks(void** state) {
  (void)state;
  owned_image init = golden_image(inpaint_golden, "inpaint.init_uint8", 3);
  bioesp_generate_options g = golden_options();
  g.steps = 3;
  g.init_image = &init.view;
  g.strength = 1.0f;
  owned_image black = filled(W, H, 1, 0), white = filled(W / 2, H / 2, 3, 255);
  g.mask = &black.view;
  g.mask_blur = 4;
  bioesp_images* out = generate(model, &g);
  assert_memory_equal(image_at(out, 0).pixels, init.pixels, (size_t)W * H * 3);
  bioesp_images_free(out);

  g.mask = &white.view;
  out = generate(model, &g);
  bioesp_image img = image_at(out, 0);
  size_t kept = 0;
  for (size_t i = 0; i < (size_t)W * H * 3; ++i) kept += img.pixels[i] == init.pixels[i];
  print_message("all-white mask: %zu of %d values equal the original's\n", kept, W * H * 3);
  assert_true(kept < (size_t)W * H * 3 / 20);
  bioesp_images_free(out);

  owned_image half = golden_image(inpaint_golden, "inpaint.mask_right_half_uint8", 1), small = filled(W / 2, H / 2, 1, 0);
  for (int y = 0; y < H / 2; ++y) memset(small.pixels + y * (W / 2) + W / 4, 255, W / 4);
  g.mask_blur = 0;
  g.mask = &half.view;
  bioesp_images* a = generate(inpainter, &g);
  g.mask = &small.view;
  bioesp_images* b = generate(inpainter, &g);
  bioesp_image ia = image_at(a, 0), ib = image_at(b, 0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      if ((x < 56 || x > 72) && memcmp(ia.pixels + (y * W + x) * 3, ib.pixels + (y * W + x) * 3, 3))
        fail_msg("the 64 × 64 mask gave another pixel at (%d, %d)", x, y);
  bioesp_images_free(a), bioesp_images_free(b);
  free(init.pixels), free(black.pixels), free(white.pixels), free(half.pixels), free(small.pixels);
}

/* The canvas grows to the right; the picture stays as it was, the new strip is painted. */
static void test_outpainting(void** state) {
  (void)state;
  owned_image init = golden_image(inpaint_golden, "inpaint.init_uint8", 3);
  bioesp_generate_options g = golden_options();
  g.steps = 3;
  g.init_image = &init.view;
  g.strength = 1.0f;
  g.outpaint_right = 64;
  g.outpaint_top = 4;  /* 132 rows: cut to 128, the last 4 of the picture's */
  bioesp_images* out = generate(model, &g);
  bioesp_image img = image_at(out, 0);
  assert_int_equal(img.width, 192);
  assert_int_equal(img.height, 128);
  for (int y = 4; y < 128; ++y)
    assert_memory_equal(img.pixels + (size_t)y * 192 * 3, init.pixels + (size_t)(y - 4) * W * 3, W * 3);
  assert_string_equal(bioesp_images_setting(out, 0, "outpaint"), "0,4,64,0");
  bioesp_images_free(out);
  free(init.pixels);
}

/* The same pixels in every PNG flavour (gray of 1, 4, 8 and 16 bits, RGB of 8 and 16, palette with
 * and without tRNS, alpha, interlaced) give the same picture; JPEG flavours (baseline,
 * progressive, gray, CMYK) load and steer too. */
static void write_png_flavour(const char* path, const uint8_t* rgb, int color, int depth, int interlace) {
  FILE* f = fopen(path, "wb");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
  png_init_io(png, f);
  png_set_IHDR(png, info, W, H, depth, color, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_color palette[2] = {{0, 0, 0}, {255, 255, 255}};
  png_byte opaque[2] = {255, 255};  /* a tRNS chunk: the loader expands it to alpha */
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 2);
  if (color == PNG_COLOR_TYPE_PALETTE && depth == 8) png_set_tRNS(png, info, opaque, 2, NULL);
  png_write_info(png, info);
  const int channels = color == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : color == PNG_COLOR_TYPE_RGB ? 3 : 1;
  const int bytes = depth == 16 ? 2 : 1;
  uint8_t* rows = calloc((size_t)W * H * channels * bytes, 1);
  png_bytep pointers[H];
  for (int y = 0; y < H; ++y) {
    pointers[y] = rows + (size_t)y * W * channels * bytes;
    for (int x = 0; x < W; ++x) {
      const uint8_t* p = rgb + ((size_t)y * W + x) * 3;
      for (int c = 0; c < channels; ++c) {
        uint8_t v = color == PNG_COLOR_TYPE_PALETTE ? (p[0] ? 1 : 0) : (c == channels - 1 && (channels == 2 || channels == 4)) ? 255 : p[c % 3];
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8) v >>= 8 - depth;  /* the edges are 0 and 255 */
        for (int b = 0; b < bytes; ++b) pointers[y][(x * channels + c) * bytes + b] = v;
      }
    }
  }
  if (depth < 8) png_set_packing(png);
  png_write_image(png, pointers);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  fclose(f);
  free(rows);
}

static void test_control_image_flavours(void** state) {
  (void)state;
  owned_image edges = golden_image(cn_golden, "control_edges_uint8", 3);
  bioesp_control c = control_of(edges_net, &edges.view);
  bioesp_generate_options g = golden_options();
  g.steps = 2;
  g.controls = &c;
  g.num_controls = 1;
  bioesp_images* want = generate(model, &g);
  const struct { const char* name; int color, depth, interlace; } pngs[] = {
      {"rgb8.png", PNG_COLOR_TYPE_RGB, 8, 0},         {"gray8.png", PNG_COLOR_TYPE_GRAY, 8, 0},
      {"gray16.png", PNG_COLOR_TYPE_GRAY, 16, 0},      {"palette1.png", PNG_COLOR_TYPE_PALETTE, 1, 0},
      {"palette8.png", PNG_COLOR_TYPE_PALETTE, 8, 1}, {"rgba8.png", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},
      {"rgba16i.png", PNG_COLOR_TYPE_RGB_ALPHA, 16, 1}, {"graya8i.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 1},
      {"gray1.png", PNG_COLOR_TYPE_GRAY, 1, 0},        {"gray4i.png", PNG_COLOR_TYPE_GRAY, 4, 1},
      {"rgb16.png", PNG_COLOR_TYPE_RGB, 16, 0},        {"graya16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0}};
  for (size_t k = 0; k < sizeof pngs / sizeof pngs[0]; ++k) {
    const char* file = path_join(temp_dir(), pngs[k].name);
    write_png_flavour(file, edges.pixels, pngs[k].color, pngs[k].depth, pngs[k].interlace);
    bioesp_images* loaded = NULL;
    check(bioesp_images_load(file, &loaded));
    bioesp_image view = image_at(loaded, 0);
    c.image = &view;
    bioesp_images* out = generate(model, &g);
    if (memcmp(image_at(out, 0).pixels, image_at(want, 0).pixels, (size_t)W * H * 3))
      fail_msg("a control image read from %s steers otherwise", pngs[k].name);
    bioesp_images_free(out), bioesp_images_free(loaded);
  }
  const uint8_t colour[4] = {200, 40, 90, 0}, cmyk[4] = {55, 215, 165, 0}, gray[1] = {120};
  const struct { const char* name; int space, components, progressive; const uint8_t* colour; } jpegs[] = {
      {"baseline.jpg", JCS_RGB, 3, 0, colour}, {"progressive.jpg", JCS_RGB, 3, 1, colour},
      {"gray.jpg", JCS_GRAYSCALE, 1, 0, gray}, {"cmyk.jpg", JCS_CMYK, 4, 0, cmyk}};
  for (size_t k = 0; k < sizeof jpegs / sizeof jpegs[0]; ++k) {
    const char* file = path_join(temp_dir(), jpegs[k].name);
    write_test_jpeg(file, jpegs[k].space, jpegs[k].components, jpegs[k].colour, jpegs[k].progressive);
    bioesp_images* loaded = NULL;
    check(bioesp_images_load(file, &loaded));
    bioesp_image view = image_at(loaded, 0);
    c.image = &view;
    g.width = g.height = 64;  /* the 16 × 16 picture resized up */
    bioesp_images* out = generate(model, &g);
    assert_int_equal(image_at(out, 0).width, 64);
    bioesp_images_free(out), bioesp_images_free(loaded);
  }
  bioesp_images_free(want);
  free(edges.pixels);
}

/* Mean absolute difference of two W × H RGB pictures, in 8-bit steps. */
static double apart(const bioesp_images* a, const bioesp_images* b) {
  const bioesp_image x = image_at(a, 0), y = image_at(b, 0);
  double total = 0;
  for (size_t i = 0; i < (size_t)W * H * 3; ++i) total += fabs((double)x.pixels[i] - y.pixels[i]);
  return total / ((double)W * H * 3);
}

/* Step caching with a ControlNet: an interval of 1 is the uncached picture. With reuse the net
 * still steers — a reusing step adds its residuals to the shallow skips it recomputes, the deep
 * features (and the mid residual in them) come from the last full step — so the picture is the
 * same every time and nearer the uncached one than a cached picture without the net. */
static void test_controlnet_with_step_cache(void** state) {
  (void)state;
  owned_image edges = golden_image(cn_golden, "control_edges_uint8", 3);
  bioesp_control c = control_of(edges_net, &edges.view);
  bioesp_generate_options g = golden_options();
  g.width = W, g.height = H;
  g.controls = &c;
  g.num_controls = 1;
  bioesp_images* plain = generate(model, &g);
  g.cache_interval = 1;
  bioesp_images* every = generate(model, &g);
  assert_memory_equal(image_at(every, 0).pixels, image_at(plain, 0).pixels, (size_t)W * H * 3);
  g.cache_interval = 3;
  g.cache_branch = 2;
  bioesp_images *cached = generate(model, &g), *again = generate(model, &g);
  assert_memory_equal(image_at(cached, 0).pixels, image_at(again, 0).pixels, (size_t)W * H * 3);
  assert_string_equal(bioesp_images_setting(cached, 0, "cache_interval"), "3");
  assert_non_null(strstr(bioesp_images_setting(cached, 0, "controlnets"), "controlnet:1"));
  g.num_controls = 0;
  bioesp_images* unsteered = generate(model, &g);
  const double steered_off = apart(cached, plain), unsteered_off = apart(unsteered, plain);
  print_message("cached: %.3f / 255 from the uncached ControlNet picture; without the net %.3f\n", steered_off, unsteered_off);
  assert_true(steered_off > 0 && steered_off < unsteered_off);
  bioesp_images_free(plain), bioesp_images_free(every), bioesp_images_free(cached), bioesp_images_free(again);
  bioesp_images_free(unsteered);
  free(edges.pixels);
}

/* A ControlNet steering an LCM UNet: the net sees the one batch the UNet sees (with a CFG batch
 * of two halves it would fail on the shapes), and steers: another picture than without it, and
 * the same again. test_control compares the pictures with the loop written out by hand. */
static void test_controlnet_with_lcm(void** state) {
  (void)state;
  bioesp_model* lcm = NULL;
  check(bioesp_model_load(tiny_lcm_model(), NULL, &lcm));
  bioesp_controlnet* net = NULL;
  check(bioesp_controlnet_load(lcm, control_path("controlnet"), &net));
  owned_image edges = golden_image(cn_golden, "control_edges_uint8", 3);
  bioesp_control c = control_of(net, &edges.view);
  bioesp_generate_options g = golden_options();
  g.scheduler = "lcm";
  g.steps = 4;
  g.guidance = 8;
  g.width = W, g.height = H;
  bioesp_images* plain = generate(lcm, &g);
  g.controls = &c;
  g.num_controls = 1;
  bioesp_images *steered = generate(lcm, &g), *again = generate(lcm, &g);
  assert_memory_equal(image_at(steered, 0).pixels, image_at(again, 0).pixels, (size_t)W * H * 3);
  print_message("LCM: the ControlNet moves the picture %.3f / 255\n", apart(steered, plain));
  assert_true(apart(steered, plain) > 0.5);
  bioesp_images_free(plain), bioesp_images_free(steered), bioesp_images_free(again);
  bioesp_controlnet_free(net);
  bioesp_model_free(lcm);
  free(edges.pixels);
}

/* Inpainting with a tiny autoencoder (TAESD) for the VAE. It encodes without drawing from the
 * generator (diffusers takes AutoencoderTiny's latents as they are), so an all-white mask at
 * strength 1 gives the plain picture of the same seed; all black gives the original back; half a
 * mask keeps the other half's pixels, on the ordinary model and on the 9-channel one. */
static void test_inpainting_with_taesd(void** state) {
  (void)state;
  bioesp_model_options o;
  bioesp_model_options_init(&o);
  o.threads = 2;
  o.vae = path_join(ref_dir(), "golden/fast/taesd/diffusers");
  bioesp_model *tiny = NULL, *tiny9 = NULL;
  check(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &o, &tiny));
  check(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1-inpaint"), &o, &tiny9));
  owned_image init = golden_image(inpaint_golden, "inpaint.init_uint8", 3);
  owned_image half = golden_image(inpaint_golden, "inpaint.mask_right_half_uint8", 1);
  owned_image white = filled(W, H, 1, 255), black = filled(W, H, 1, 0);
  bioesp_generate_options g = golden_options();
  g.steps = 3;
  g.width = W, g.height = H;
  bioesp_images* plain = generate(tiny, &g);
  g.init_image = &init.view;
  g.strength = 1.0f;
  g.mask = &white.view;
  bioesp_images* out = generate(tiny, &g);
  assert_memory_equal(image_at(out, 0).pixels, image_at(plain, 0).pixels, (size_t)W * H * 3);
  assert_non_null(strstr(bioesp_images_setting(out, 0, "vae"), "taesd"));
  bioesp_images_free(out);
  g.mask = &black.view;
  out = generate(tiny, &g);
  assert_memory_equal(image_at(out, 0).pixels, init.pixels, (size_t)W * H * 3);
  bioesp_images_free(out);
  g.mask = &half.view;
  g.strength = 0.75f;
  bioesp_model* const models[] = {tiny, tiny9};
  for (size_t k = 0; k < 2; ++k) {
    out = generate(models[k], &g);
    const bioesp_image img = image_at(out, 0);
    size_t changed = 0;
    for (size_t i = 0; i < (size_t)W * H * 3; ++i) {
      if (!half.pixels[i / 3] && img.pixels[i] != init.pixels[i]) fail_msg("pixel %zu outside the mask changed", i / 3);
      changed += half.pixels[i / 3] && img.pixels[i] != init.pixels[i];
    }
    assert_true(changed > (size_t)W * H / 2);  /* the right half, painted again */
    bioesp_images_free(out);
  }
  bioesp_images_free(plain);
  bioesp_model_free(tiny), bioesp_model_free(tiny9);
  free(init.pixels), free(half.pixels), free(white.pixels), free(black.pixels);
}

static void expect_error(bioesp_model* m, const bioesp_generate_options* g, bioesp_status want, const char* fragment) {
  bioesp_images* out = NULL;
  bioesp_status s = bioesp_generate(m, g, &out);
  if (s != want || !strstr(bioesp_last_error(), fragment))
    fail_msg("wanted %s with '%s', got %s: %s", bioesp_status_string(want), fragment, bioesp_status_string(s), bioesp_last_error());
  assert_null(out);
}

static void test_bad_requests(void** state) {
  (void)state;
  /* A ControlNet made for another base: the embedded model's UNet is not tiny-sd1's. */
  bioesp_model* other = NULL;
  check(bioesp_model_load(bioesp_embedded_model(), NULL, &other));
  bioesp_controlnet* net = NULL;
  assert_int_equal(bioesp_controlnet_load(other, control_path("controlnet"), &net), BIOESP_ERR_MISMATCH);
  assert_non_null(strstr(bioesp_last_error(), "made for another base model"));
  assert_null(net);
  bioesp_model_free(other);
  assert_int_equal(bioesp_controlnet_load(model, path_join(temp_dir(), "none"), &net), BIOESP_ERR_NOT_FOUND);
  assert_int_equal(bioesp_controlnet_load(model, NULL, &net), BIOESP_ERR_INVALID_ARGUMENT);

  owned_image edges = golden_image(cn_golden, "control_edges_uint8", 3), init = golden_image(inpaint_golden, "inpaint.init_uint8", 3);
  bioesp_control c = control_of(edges_net, NULL);
  bioesp_generate_options g = golden_options();
  g.steps = 1;
  g.controls = &c;
  g.num_controls = 1;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "without an image");
  c.image = &edges.view;
  c.start = 0.6f, c.end = 0.4f;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "window");
  c.start = 0, c.end = 1;
  c.preprocess = "sobel";
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "none, canny or scribble");
  c.preprocess = "canny";
  c.controlnet = NULL;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "names no ControlNet");
  g.controls = NULL;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "controls: NULL");
  g.num_controls = 0;
  g.mask = &edges.view;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "need an init image");
  g.mask = NULL;
  g.outpaint_left = 8;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "need an init image");
  g.init_image = &init.view;
  g.outpaint_left = -8;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "outpaint_left");
  g.outpaint_left = 0;
  g.mask = &edges.view;
  g.padding_mask_crop = -1;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "padding_mask_crop");
  g.padding_mask_crop = 0;
  g.mask_blur = -2;
  expect_error(model, &g, BIOESP_ERR_INVALID_ARGUMENT, "blur");
  g.mask = NULL;
  g.mask_blur = 0;
  g.init_image = NULL;
  expect_error(inpainter, &g, BIOESP_ERR_INVALID_ARGUMENT, "inpainting model");
  free(edges.pixels), free(init.pixels);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_controlnets_match_diffusers),
      cmocka_unit_test(test_inpainting_matches_diffusers),
      cmocka_unit_test(test_masks),
      cmocka_unit_test(test_outpainting),
      cmocka_unit_test(test_control_image_flavours),
      cmocka_unit_test(test_controlnet_with_step_cache),
      cmocka_unit_test(test_controlnet_with_lcm),
      cmocka_unit_test(test_inpainting_with_taesd),
      cmocka_unit_test(test_bad_requests),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
