// lib/image: the alpha matte of transparent sprites (image::matte) on drawn pictures whose
// answer is known: backdrop, soft rim, enclosed holes, creatures touching the border, gradients.
#include <cstring>

#include "core/error.h"
#include "image/matte.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

using namespace bioesp;

namespace {

image::Image filled(uint32_t w, uint32_t h, uint8_t r, uint8_t g, uint8_t b) {
  image::Image img;
  img.width = w, img.height = h, img.channels = 3;
  img.pixels.resize(size_t{w} * h * 3);
  for (size_t p = 0; p < size_t{w} * h; ++p) img.pixels[p * 3] = r, img.pixels[p * 3 + 1] = g, img.pixels[p * 3 + 2] = b;
  return img;
}

void paint(image::Image& img, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1, uint8_t r, uint8_t g, uint8_t b) {
  for (uint32_t y = y0; y < y1; ++y)
    for (uint32_t x = x0; x < x1; ++x) {
      uint8_t* px = &img.pixels[(size_t{y} * img.width + x) * img.channels];
      px[0] = r, px[1] = g, px[2] = b;
    }
}

const uint8_t* at(const image::Image& img, uint32_t x, uint32_t y) {
  return &img.pixels[(size_t{y} * img.width + x) * img.channels];
}

}  // namespace

// A red square with a white hole, on a white backdrop with a little noise: the backdrop goes,
// the square and its hole stay with their colours.
static void test_backdrop_and_holes(void** state) {
  (void)state;
  auto img = filled(32, 32, 250, 250, 250);
  for (uint32_t i = 0; i < 32; ++i) paint(img, i, (i * 7) % 32, i + 1, (i * 7) % 32 + 1, 240, 255, 244);  // noise
  paint(img, 8, 8, 24, 24, 200, 30, 20);
  paint(img, 14, 14, 18, 18, 250, 250, 250);
  paint(img, 0, 3, 1, 6, 250, 230, 215);  // a tinted stretch of the border: still backdrop
  auto m = image::matte(img);
  assert_int_equal(m.channels, 4);
  assert_int_equal(m.width, 32);
  for (uint32_t i = 0; i < 32; ++i) {
    assert_int_equal(at(m, i, 0)[3], 0);
    assert_int_equal(at(m, 0, i)[3], 0);
    assert_int_equal(at(m, i, 31)[3], 0);
    assert_int_equal(at(m, 31, i)[3], 0);
  }
  assert_int_equal(at(m, 4, 20)[3], 0);
  assert_int_equal(at(m, 10, 10)[3], 255);
  assert_int_equal(at(m, 15, 15)[3], 255);  // the enclosed hole is kept
  for (uint32_t y = 0; y < 32; ++y)
    for (uint32_t x = 0; x < 32; ++x)
      if (at(m, x, y)[3] == 255) assert_memory_equal(at(m, x, y), at(img, x, y), 3);
}

// An anti-aliased edge: a ramp of blends between the backdrop and the creature gets rising
// alpha within the rim's width, and the backdrop's share is taken out of the rim's colour.
static void test_soft_rim(void** state) {
  (void)state;
  auto img = filled(40, 20, 255, 255, 255);
  paint(img, 20, 4, 36, 16, 0, 0, 200);
  const double blends[3] = {0.1, 0.15, 0.2};  // columns 17, 18, 19: a little creature
  for (int i = 0; i < 3; ++i) {
    const double a = blends[i];
    paint(img, 17 + i, 4, 18 + i, 16, static_cast<uint8_t>(255 * (1 - a)), static_cast<uint8_t>(255 * (1 - a)),
          static_cast<uint8_t>(200 * a + 255 * (1 - a)));
  }
  image::MatteOptions o;
  o.rim_width = 3;
  auto m = image::matte(img, o);
  const uint8_t a17 = at(m, 17, 10)[3], a18 = at(m, 18, 10)[3], a19 = at(m, 19, 10)[3];
  assert_true(a17 > 0 && a17 < a18 && a18 < a19 && a19 < 255);
  assert_int_equal(at(m, 16, 10)[3], 0);
  assert_int_equal(at(m, 20, 10)[3], 255);
  assert_true(at(m, 19, 10)[0] < at(img, 19, 10)[0]);  // less of the white
  // The default width (1 pixel at this size) keeps only the outermost blend in the rim.
  auto thin = image::matte(img);
  assert_true(at(thin, 17, 10)[3] < 255);
  assert_int_equal(at(thin, 18, 10)[3], 255);
}

// The rim fill goes only outwards in difference: a pale ring at the creature's edge does not
// lead into a paler middle, which stays opaque though it is near the backdrop.
static void test_rim_stops_at_gradients_back(void** state) {
  (void)state;
  auto img = filled(30, 30, 255, 255, 255);
  paint(img, 5, 5, 25, 25, 195, 195, 195);   // 60 from the backdrop: rim
  paint(img, 7, 7, 23, 23, 215, 215, 215);   // 40: within the rim's range, but paler
  image::MatteOptions o;
  o.rim_width = 5;
  auto m = image::matte(img, o);
  assert_true(at(m, 5, 12)[3] > 0 && at(m, 5, 12)[3] < 255);
  assert_int_equal(at(m, 6, 12)[3], at(m, 5, 12)[3]);
  assert_int_equal(at(m, 8, 12)[3], 255);
  assert_memory_equal(at(m, 8, 12), at(img, 8, 12), 3);
}

// A creature touching the border keeps its opaque pixels there; a dark backdrop works alike;
// the result does not depend on anything but the pixels.
static void test_border_contact_and_dark_backdrop(void** state) {
  (void)state;
  auto img = filled(24, 24, 10, 10, 10);
  paint(img, 0, 8, 12, 16, 240, 200, 0);
  auto m = image::matte(img);
  assert_int_equal(at(m, 0, 10)[3], 255);
  assert_int_equal(at(m, 23, 23)[3], 0);
  auto again = image::matte(img);
  assert_memory_equal(m.pixels.data(), again.pixels.data(), m.pixels.size());
}

static void test_refusals(void** state) {
  (void)state;
  image::Image empty;
  empty.channels = 3;
  try {
    image::matte(empty);
    fail();
  } catch (const Error& e) {
    assert_int_equal(e.status(), BIOESP_ERR_INVALID_ARGUMENT);
  }
  auto gray = filled(4, 4, 0, 0, 0);
  gray.channels = 1;
  gray.pixels.resize(16);
  try {
    image::matte(gray);
    fail();
  } catch (const Error& e) {
    assert_non_null(std::strstr(e.what(), "RGB"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_backdrop_and_holes), cmocka_unit_test(test_soft_rim),
                                     cmocka_unit_test(test_rim_stops_at_gradients_back),
                                     cmocka_unit_test(test_border_contact_and_dark_backdrop),
                                     cmocka_unit_test(test_refusals)};
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
