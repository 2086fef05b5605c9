/* Animations through the public C API: frame count and size, first and last frames equal to
 * single generations of the end keyframes, consecutive frames changing smoothly, ping-pong, GIF /
 * MP4 / WebM / PNG-folder files read back with giflib and FFmpeg, cancel, bad requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>
#include <gif_lib.h>
#include <libavformat/avformat.h>

#include "support/testutil.h"

static bioesp_model* model;

static int setup(void** state) {
  (void)state;
  if (bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), NULL, &model) != BIOESP_OK) {
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

static const char* kPrompts[] = {"colibrí", "lagarto", "frailejón"};
static const uint64_t kSeeds[] = {11, 22, 33};

static bioesp_animate_options options(size_t keys, int frames) {
  bioesp_animate_options o;
  bioesp_animate_options_init(&o);
  o.prompts = kPrompts;
  o.num_prompts = keys;
  o.seeds = kSeeds;
  o.num_seeds = keys;
  o.frames = frames;
  o.steps = 3;
  o.width = 64;
  o.height = 64;
  return o;
}

static bioesp_image frame(const bioesp_images* set, size_t i) {
  bioesp_image im = {sizeof im};
  assert_int_equal(bioesp_images_get(set, i, &im), BIOESP_OK);
  return im;
}

static double mean_abs_diff(bioesp_image a, bioesp_image b) {
  size_t n = (size_t)a.width * a.height * a.channels;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += abs((int)a.pixels[i] - (int)b.pixels[i]);
  return sum / n;
}

/* A single generation with the same fixed settings. */
static bioesp_images* single(const char* prompt, uint64_t seed) {
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  const char* prompts[] = {prompt};
  g.prompts = prompts;
  g.num_prompts = 1;
  g.seed = seed;
  g.steps = 3;
  g.width = 64;
  g.height = 64;
  bioesp_images* out = NULL;
  assert_int_equal(bioesp_generate(model, &g, &out), BIOESP_OK);
  return out;
}

static void test_frames(void** state) {
  (void)state;
  bioesp_animate_options o = options(3, 9);
  bioesp_images* frames = NULL;
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_OK);
  size_t n = 0;
  assert_int_equal(bioesp_images_count(frames, &n), BIOESP_OK);
  assert_int_equal(n, 9);
  for (size_t i = 0; i < n; ++i) {
    bioesp_image f = frame(frames, i);
    assert_true(f.width == 64 && f.height == 64 && f.channels == 3);
  }
  /* Keyframes: the first, the middle (frame 4 of 9 with three keyframes) and the last. */
  for (int k = 0; k < 3; ++k) {
    bioesp_images* one = single(kPrompts[k], kSeeds[k]);
    bioesp_image f = frame(frames, (size_t)k * 4), s = frame(one, 0);
    assert_memory_equal(f.pixels, s.pixels, 64 * 64 * 3);
    bioesp_images_free(one);
  }
  /* Smooth: every step between neighbours is small next to the distance it spans. */
  double ends = mean_abs_diff(frame(frames, 0), frame(frames, 4));
  assert_true(ends > 1.0);
  for (size_t i = 0; i + 1 < n; ++i) {
    double step = mean_abs_diff(frame(frames, i), frame(frames, i + 1));
    assert_true(step > 0);
    assert_true(step < 0.75 * ends);
  }
  assert_string_equal(bioesp_images_setting(frames, 3, "frame"), "3");
  assert_string_equal(bioesp_images_setting(frames, 0, "keyframe_seeds"), "11,22,33");

  /* Files: GIF (one palette, looping), MP4, WebM, a folder of PNGs. */
  bioesp_animation_options save;
  bioesp_animation_options_init(&save);
  save.fps = 12;
  const char* gif = path_join(temp_dir(), "morph.gif");
  assert_int_equal(bioesp_images_save_animation(frames, gif, &save), BIOESP_OK);
  int err = 0;
  GifFileType* g = DGifOpenFileName(gif, &err);
  assert_non_null(g);
  assert_int_equal(DGifSlurp(g), GIF_OK);
  assert_int_equal(g->ImageCount, 9);
  assert_true(g->SWidth == 64 && g->SHeight == 64 && g->SColorMap && g->SColorMap->ColorCount == 256);
  GraphicsControlBlock gcb;
  assert_int_equal(DGifSavedExtensionToGCB(g, 0, &gcb), GIF_OK);
  assert_int_equal(gcb.DelayTime, 8); /* 100 / 12 fps, in hundredths */
  /* The palette fits the frames: the first frame decodes closer to the rendered one than with a
   * uniform 6×6×6 palette (these random-weight frames are colourful noise, the hardest case). */
  bioesp_image f0 = frame(frames, 0);
  double sum = 0, uniform = 0;
  for (int p = 0; p < 64 * 64; ++p) {
    GifColorType c = g->SColorMap->Colors[g->SavedImages[0].RasterBits[p]];
    const uint8_t* px = f0.pixels + 3 * p;
    sum += abs(c.Red - px[0]) + abs(c.Green - px[1]) + abs(c.Blue - px[2]);
    for (int ch = 0; ch < 3; ++ch) uniform += abs((px[ch] + 25) / 51 * 51 - px[ch]);
  }
  assert_true(sum < 0.8 * uniform);
  DGifCloseFile(g, &err);

  const char* videos[] = {path_join(temp_dir(), "morph.mp4"), path_join(temp_dir(), "morph.webm")};
  for (int v = 0; v < 2; ++v) {
    assert_int_equal(bioesp_images_save_animation(frames, videos[v], &save), BIOESP_OK);
    AVFormatContext* fmt = NULL;
    assert_int_equal(avformat_open_input(&fmt, videos[v], NULL, NULL), 0);
    assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
    int stream = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    assert_true(stream >= 0);
    assert_int_equal(fmt->streams[stream]->codecpar->width, 64);
    AVPacket* pkt = av_packet_alloc();
    int packets = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
      packets += pkt->stream_index == stream;
      av_packet_unref(pkt);
    }
    assert_int_equal(packets, 9);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
  }
  const char* folder = path_join(temp_dir(), "frames");
  assert_int_equal(bioesp_images_save_animation(frames, folder, NULL), BIOESP_OK);
  assert_true(file_exists(path_join(folder, "frame-0000.png")) && file_exists(path_join(folder, "frame-0008.png")));
  assert_int_equal(bioesp_images_save_animation(frames, path_join(temp_dir(), "x.avi"), NULL), BIOESP_ERR_INVALID_ARGUMENT);
  save.fps = 0;
  assert_int_equal(bioesp_images_save_animation(frames, gif, &save), BIOESP_ERR_INVALID_ARGUMENT);
  bioesp_images_free(frames);
}

static void test_pingpong_and_held_keys(void** state) {
  (void)state;
  /* One prompt held, two seeds: the noise morphs; ping-pong returns without repeating the ends. */
  bioesp_animate_options o = options(2, 4);
  o.num_prompts = 1;
  o.pingpong = 1;
  bioesp_images* frames = NULL;
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_OK);
  size_t n = 0;
  bioesp_images_count(frames, &n);
  assert_int_equal(n, 6);
  assert_memory_equal(frame(frames, 4).pixels, frame(frames, 2).pixels, 64 * 64 * 3);
  assert_memory_equal(frame(frames, 5).pixels, frame(frames, 1).pixels, 64 * 64 * 3);
  bioesp_images* last = single(kPrompts[0], kSeeds[1]);
  assert_memory_equal(frame(frames, 3).pixels, frame(last, 0).pixels, 64 * 64 * 3);
  bioesp_images_free(last);
  bioesp_images_free(frames);
}

static int stop_early(void* user, const bioesp_progress* p) {
  (void)user;
  return p->current >= 2;
}

static void test_bad_requests(void** state) {
  (void)state;
  bioesp_images* frames = NULL;
  bioesp_animate_options o = options(1, 4); /* one keyframe */
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "two keyframes"));
  o = options(3, 4);
  o.num_seeds = 2; /* three prompts, two seeds */
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_ERR_INVALID_ARGUMENT);
  o = options(2, 1);
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_ERR_INVALID_ARGUMENT);
  o = options(2, 4);
  o.progress = stop_early;
  assert_int_equal(bioesp_animate(model, &o, &frames), BIOESP_ERR_CANCELLED);
  assert_null(frames);
  assert_int_equal(bioesp_animate(NULL, &o, &frames), BIOESP_ERR_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_frames), cmocka_unit_test(test_pingpong_and_held_keys),
                                     cmocka_unit_test(test_bad_requests)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
