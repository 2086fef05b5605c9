/* Helpers shared by the C tests of the public API (bioesp.h); testutil.h's need no bioesp. */
#ifndef BIOESP_TESTAPI_H
#define BIOESP_TESTAPI_H

#include <bioesp.h>

/* The prompt of diffusers' golden pictures (golden/tiny-sd1, golden/control). */
extern const char* const kGoldenPrompt[1];
/* Their settings: that prompt, negative "blurry, low quality", 10 DDIM steps, guidance 7.5,
 * seed 1234 (the model's size). */
bioesp_generate_options golden_options(void);
/* Image i of a set; the test fails when the set has none. */
bioesp_image image_at(const bioesp_images* set, size_t i);
/* LibTorch's intra-op thread count on the calling thread (at::get_num_threads: under OpenMP
 * each thread has its own), and setting it: what a job's callbacks see it run with. */
int intra_op_threads(void);
void set_intra_op_threads(int n);

#endif
