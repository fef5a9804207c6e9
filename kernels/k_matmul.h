/* Launchers of kernels/matmul.cu: the plain matrix-product kernel behind
 * integer matmul on the GPU and sg_matmul_reference (cuBLAS does the
 * floating-point products, engine/backend_cuda/matmul.c). */
#ifndef SG_K_MATMUL_H
#define SG_K_MATMUL_H
#include "k_common.h"

/* C [batch.., n, m] (contiguous, dtype) = A [.., n, k] * B [.., k, m]: element
 * (i, l) of A's matrix sits at A + i*ars + l*acs elements, batch t's matrix at
 * offset_of(abat, t) (abat: the batch sizes and A's batch strides, 0 where A
 * is broadcast); the same for B. Floats accumulate in double with the CPU
 * reference loop's order and roundings (no fused multiply-add), integers in
 * uint64 (wrapping). */
SGK_API int sgk_matmul_naive(int dtype, int64_t n, int64_t m, int64_t k, const void *A, int64_t ars, int64_t acs,
                             const sgk_layout *abat, const void *B, int64_t brs, int64_t bcs, const sgk_layout *bbat,
                             void *C, int64_t nbatch, sgk_stream s);

#endif
