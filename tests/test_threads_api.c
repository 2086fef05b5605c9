/* Intra-op threads through the public API: a model's `threads` is what its generations run with,
 * 0 gives a share of the cores, and two generations at once on two models split the cores
 * instead of each taking all of them. The count is read in the progress callback, on the job's
 * thread (LibTorch's count is per thread under OpenMP). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <bioesp.h>

#include "support/testapi.h"
#include "support/testutil.h"

enum { kSteps = 6 };

static bioesp_model* load(int threads) {
  bioesp_model_options mo;
  bioesp_model_options_init(&mo);
  mo.threads = threads;
  bioesp_model* model = NULL;
  assert_int_equal(bioesp_model_load(path_join(ref_dir(), "models/tiny-sd1"), &mo, &model), BIOESP_OK);
  return model;
}

static bioesp_generate_options small(void) {
  static const char* prompt = "colibrí";
  bioesp_generate_options g;
  bioesp_generate_options_init(&g);
  g.prompts = &prompt;
  g.num_prompts = 1;
  g.steps = kSteps;
  g.scheduler = "ddim";  /* one progress call per step (PNDM makes one more) */
  g.width = g.height = 64;
  return g;
}

/* The counts one generation ran its steps with. */
typedef struct counts {
  int seen[kSteps + 1];
} counts;

static int record(void* user, const bioesp_progress* p) {
  counts* c = (counts*)user;
  if (p->current <= kSteps) c->seen[p->current] = intra_op_threads();
  return 0;
}

/* The count a model's generations run with on this thread (the same at every step). */
static int count_of(bioesp_model* model) {
  counts c;
  memset(&c, 0, sizeof c);
  bioesp_generate_options g = small();
  g.progress = record;
  g.progress_user = &c;
  bioesp_images* images = NULL;
  assert_int_equal(bioesp_generate(model, &g, &images), BIOESP_OK);
  bioesp_images_free(images);
  for (int s = 2; s <= kSteps; ++s) assert_int_equal(c.seen[s], c.seen[1]);
  return c.seen[1];
}

static int allowed_cpus(void) {
  cpu_set_t set;
  assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
  return CPU_COUNT(&set);
}

static void test_threads_honoured(void** state) {
  (void)state;
  set_intra_op_threads(5);  /* the caller's own count: given back after each call */
  for (int asked = 1; asked <= 3; ++asked) {  /* 3: more than this machine may have, as given */
    bioesp_model* model = load(asked);
    assert_int_equal(count_of(model), asked);
    assert_int_equal(intra_op_threads(), 5);
    bioesp_model_free(model);
  }
  bioesp_model* model = load(0);
  const int cores = count_of(model);
  assert_true(cores >= 1 && cores <= allowed_cpus());
  assert_int_equal(intra_op_threads(), 5);
  bioesp_model_free(model);
}

/* Two jobs that wait for each other at every step, so that both are running whenever one of them
 * reads its count. */
static struct {
  pthread_mutex_t m;
  pthread_cond_t changed;
  int at[2];          /* the step each job has reached */
  int seen[2][kSteps + 1];
  int timed_out;
} pair = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0, 0}, {{0}}, 0};

static int in_step(void* user, const bioesp_progress* p) {
  const int me = (int)(intptr_t)user;
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 120;
  pthread_mutex_lock(&pair.m);
  if (p->current <= kSteps) pair.seen[me][p->current] = intra_op_threads();
  pair.at[me] = (int)p->current;
  pthread_cond_broadcast(&pair.changed);
  while (pair.at[1 - me] < (int)p->current && !pair.timed_out)
    if (pthread_cond_timedwait(&pair.changed, &pair.m, &deadline) != 0) pair.timed_out = 1;
  pthread_mutex_unlock(&pair.m);
  return 0;
}

static void test_two_jobs_share_the_cores(void** state) {
  (void)state;
  bioesp_model* alone = load(0);
  const int cores = count_of(alone);
  bioesp_model_free(alone);
  bioesp_model* models[2] = {load(0), load(0)};
  bioesp_job* jobs[2] = {NULL, NULL};
  for (int j = 0; j < 2; ++j) {
    bioesp_generate_options g = small();
    g.progress = in_step;
    g.progress_user = (void*)(intptr_t)j;
    assert_int_equal(bioesp_generate_async(models[j], &g, &jobs[j]), BIOESP_OK);
  }
  for (int j = 0; j < 2; ++j) {
    int finished = 0;
    assert_int_equal(bioesp_job_wait(jobs[j], 300000, &finished), BIOESP_OK);
    assert_true(finished);
    bioesp_images* images = NULL;
    assert_int_equal(bioesp_job_take(jobs[j], &images), BIOESP_OK);
    bioesp_images_free(images);
    bioesp_job_free(jobs[j]);
    bioesp_model_free(models[j]);
  }
  assert_false(pair.timed_out);
  /* Step 1's count may come from before the other job started; from step 2 both know of each
   * other: together within the cores (one each where there are fewer cores than jobs). */
  const int most = cores > 2 ? cores : 2;
  for (int s = 2; s <= kSteps; ++s) {
    assert_true(pair.seen[0][s] >= 1 && pair.seen[1][s] >= 1);
    assert_true(pair.seen[0][s] + pair.seen[1][s] <= most);
  }
}

int main(void) {
  /* The library's own choice, not the test environment's OMP_NUM_THREADS (read per job). */
  unsetenv("OMP_NUM_THREADS");
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_threads_honoured),
                                     cmocka_unit_test(test_two_jobs_share_the_cores)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
