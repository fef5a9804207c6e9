/* Launchers of kernels/random.cu (counter-based random numbers, see
 * engine/ops/philox.h). */
#ifndef SG_K_RANDOM_H
#define SG_K_RANDOM_H
#include "k_common.h"

/* Fills the contiguous tensor `dst` of n elements of `dtype`: kind 0 uniform
 * [0,1), 1 normal, 2 integers in [lo, lo + range). Element i comes from
 * Philox block (base + i / 4, 0) keyed by `key`, lane i % 4, exactly as on
 * the CPU (engine/ops/random.c). */
SGK_API int sgk_random(void *dst, int dtype, int64_t n, int kind, uint64_t base, uint64_t key, int64_t lo,
                       uint64_t range, sgk_stream s);

#endif
