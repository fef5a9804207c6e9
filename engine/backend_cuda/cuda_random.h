/* Random numbers on the GPU (engine/ops/random.c dispatches here). */
#ifndef SG_CUDA_RANDOM_H
#define SG_CUDA_RANDOM_H
#include "../core/tensor.h"

/* Fills the fresh contiguous CUDA tensor t: kind 0 uniform, 1 normal, 2
 * integers in [lo, lo + range); the counter blocks from `base` were reserved
 * by the caller. 0, or -1 with the error set. */
int sg_cuda_random(sg_tensor *t, int kind, uint64_t base, uint64_t key, int64_t lo, uint64_t range);

#endif
