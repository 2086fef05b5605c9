/* Schedulers through the public C API: bioesp_scheduler_describe, and the eta option (DDIM's η
 * reaches the sampler; a caller compiled before eta existed gets the default). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static void test_describe(void** state) {
  (void)state;
  const char* model = path_join(ref_dir(), "models/tiny-sd1");
  char* json = NULL;
  assert_int_equal(bioesp_scheduler_describe(model, "lcm", 4, &json), BIOESP_OK);
  assert_non_null(strstr(json, "\"class\": \"LCMScheduler\""));
  assert_non_null(strstr(json, "\"_class_name\": \"LCMScheduler\""));
  assert_non_null(strstr(json, "\"original_inference_steps\": 50"));
  assert_non_null(strstr(json, "999,\n    759,\n    499,\n    259\n"));
  bioesp_string_free(json);
  /* the file's own class, and the embedded model's when no path is given */
  assert_int_equal(bioesp_scheduler_describe(path_join(model, "scheduler/scheduler_config.json"), NULL, 10, &json), BIOESP_OK);
  assert_non_null(strstr(json, "\"scheduler\": \"pndm\""));
  bioesp_string_free(json);
  assert_int_equal(bioesp_scheduler_describe(NULL, "euler:timestep_spacing=trailing", 2, &json), BIOESP_OK);
  assert_non_null(strstr(json, "\"timestep_spacing\": \"trailing\""));
  assert_non_null(strstr(json, "\"sigmas\""));
  bioesp_string_free(json);

  json = (char*)1;
  assert_int_equal(bioesp_scheduler_describe(model, "heun", 10, &json), BIOESP_ERR_INVALID_ARGUMENT);
  assert_null(json);
  assert_non_null(strstr(bioesp_last_error(), "unknown scheduler 'heun'"));
  assert_int_equal(bioesp_scheduler_describe(model, "ddim", 0, &json), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_scheduler_describe(model, "ddim:eta=1", 10, &json), BIOESP_ERR_INVALID_ARGUMENT);
  assert_int_equal(bioesp_scheduler_describe("/nonexistent", "ddim", 10, &json), BIOESP_ERR_NOT_FOUND);
  assert_int_equal(bioesp_scheduler_describe(model, "ddim", 10, NULL), BIOESP_ERR_INVALID_ARGUMENT);
}

static bioesp_images* draw(bioesp_model* m, const bioesp_generate_options* o) {
  bioesp_images* out = NULL;
  if (bioesp_generate(m, o, &out) != BIOESP_OK) fail_msg("%s", bioesp_last_error());
  return out;
}

static int same_pixels(const bioesp_images* a, const bioesp_images* b) {
  bioesp_image x = {sizeof x, 0, 0, 0, NULL}, y = {sizeof y, 0, 0, 0, NULL};
  bioesp_images_get(a, 0, &x);
  bioesp_images_get(b, 0, &y);
  return x.width == y.width && x.height == y.height && memcmp(x.pixels, y.pixels, (size_t)x.width * x.height * 3) == 0;
}

static void test_eta(void** state) {
  (void)state;
  bioesp_model* m = NULL;
  assert_int_equal(bioesp_model_load(bioesp_embedded_model(), NULL, &m), BIOESP_OK);
  static const char* prompt[] = {"lagarto"};
  bioesp_generate_options o;
  bioesp_generate_options_init(&o);
  assert_true(o.eta < 0);
  o.prompts = prompt;
  o.num_prompts = 1;
  o.steps = 3;
  o.seed = 9;
  o.scheduler = "ddim";
  bioesp_images* plain = draw(m, &o);
  assert_null(bioesp_images_setting(plain, 0, "eta"));
  o.eta = 0;
  bioesp_images* zero = draw(m, &o);
  assert_true(same_pixels(plain, zero));
  o.eta = 1;
  bioesp_images* noisy = draw(m, &o);
  assert_false(same_pixels(plain, noisy));
  assert_string_equal(bioesp_images_setting(noisy, 0, "eta"), "1");
  /* a caller compiled before eta existed: the field is not read */
  bioesp_generate_options old = o;
  old.struct_size = offsetof(bioesp_generate_options, eta);
  old.eta = 5;
  bioesp_images* older = draw(m, &old);
  assert_true(same_pixels(plain, older));
  /* a scheduler without eta refuses one */
  o.scheduler = "euler";
  o.eta = 0.5f;
  bioesp_images* none = NULL;
  assert_int_equal(bioesp_generate(m, &o, &none), BIOESP_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(bioesp_last_error(), "eta"));
  bioesp_images_free(plain);
  bioesp_images_free(zero);
  bioesp_images_free(noisy);
  bioesp_images_free(older);
  bioesp_model_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_describe), cmocka_unit_test(test_eta)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
