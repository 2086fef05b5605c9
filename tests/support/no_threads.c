/* Preloaded (LD_PRELOAD) into test_job_threads: pthread_create fails with EAGAIN, as when a
 * process has run out of threads, while $BIOESP_TEST_NO_THREADS is set; otherwise it is the real
 * one. (Default visibility: the project hides symbols otherwise.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef int (*create_fn)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);

__attribute__((visibility("default"))) int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                                          void* (*start)(void*), void* arg) {
  if (getenv("BIOESP_TEST_NO_THREADS")) return EAGAIN;
  create_fn real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
  return real(thread, attr, start, arg);
}
