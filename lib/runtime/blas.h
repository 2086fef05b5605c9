// The BLAS that LibTorch's matrix products call (Debian: OpenBLAS as libblas.so.3).
#pragma once

namespace bioesp::runtime {

// OpenBLAS built with pthreads keeps a pool of its own beside LibTorch's OpenMP pool, and its
// threads spin (sched_yield) while the convolutions run: on 2 cores a full-size 256 px step took
// 3.5 s with both pools of 2 threads, 2.2 s with OpenBLAS on 1, 1.9 s with OpenBLAS built for
// OpenMP (which follows the calling thread's OpenMP thread count, so it needs nothing). Sets a
// pthreads OpenBLAS to one thread; leaves any other BLAS alone. Idempotent.
void settle_blas_threads();

// 0 sequential, 1 pthreads, 2 OpenMP, as openblas_get_parallel() says; -1 not OpenBLAS.
int blas_parallelism();

}  // namespace bioesp::runtime
