/* A job whose worker thread cannot start (pthread_create fails, see support/no_threads.c): the
 * call says so and leaves nothing behind — the next job on the model runs in its turn, and
 * bioesp_model_free returns instead of waiting for a job that never was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testutil.h"

static void test_thread_that_cannot_start(void** state) {
  (void)state;
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), NULL, &model), BIOESP_OK);
  const char* prompt = "colibrí";
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = &prompt;
  g.num_prompts = 1;
  g.steps = 1;
  g.width = g.height = 64;
  bioesp_job* job = (bioesp_job*)&g; /* must be reset to NULL */
  setenv("BIOESP_TEST_NO_THREADS", "1", 1);
  const bioesp_status s = bioesp_generate_async(model, &g, &job);
  unsetenv("BIOESP_TEST_NO_THREADS");
  assert_int_equal(s, BIOESP_ERR_OUT_OF_MEMORY);
  assert_non_null(strstr(bioesp_last_error(), "could not start the job's thread"));
  assert_null(job);

  alarm(300); /* a turn or a count left behind would hang here: fail instead */
  assert_int_equal(bioesp_generate_async(model, &g, &job), BIOESP_OK);
  int finished = 0;
  assert_int_equal(bioesp_job_wait(job, 120000, &finished), BIOESP_OK);
  assert_true(finished);
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_job_take(job, &images), BIOESP_OK);
  bioesp_images_free(images);
  bioesp_job_free(job);
  bioesp_model_free(model);
  alarm(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_thread_that_cannot_start)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
