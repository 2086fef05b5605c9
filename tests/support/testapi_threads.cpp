// testapi.h's view of LibTorch's intra-op threads, for the C tests.
#include <ATen/Parallel.h>

extern "C" {
#include "testapi.h"
}

int intra_op_threads(void) { return at::get_num_threads(); }
void set_intra_op_threads(int n) { at::set_num_threads(n); }
