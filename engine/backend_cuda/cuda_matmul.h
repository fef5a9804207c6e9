/* Matrix products on the GPU (engine/ops/matmul.c dispatches here). */
#ifndef SG_CUDA_MATMUL_H
#define SG_CUDA_MATMUL_H
#include "../backend.h"

/* One operand's matrices: element (i, j) at data + i*rs + j*cs elements. For
 * the cuBLAS path also how BLAS reads it: row-major (trans false, leading
 * dimension ld = rs) or column-major (trans true, ld = cs). */

/* C [bat.., n, m] (contiguous, dtype dt) = A [.., n, k] * B [.., k, m] with
 * batch dims bat[nbat] and per-batch strides sa/sb (0 where broadcast).
 * blas: f16/bf16/f32/f64 through cublasGemmStridedBatchedEx (f32 and 16-bit
 * types accumulate in f32, f64 in f64; batch dims merged into as few strided
 * calls as their strides allow); otherwise the plain kernel (integers, and
 * sg_matmul_reference). n, m, k and the batch are nonzero. 0, or -1 with the
 * error set. */
int sg_cuda_matmul(sg_dtype dt, bool blas, int64_t n, int64_t m, int64_t k, sg_mat A, sg_mat B, void *C,
                   int nbat, const int64_t *bat, const int64_t *sa, const int64_t *sb);

/* f32 products on TF32 tensor cores (faster, about 10 mantissa bits); off by
 * default so f32 results match the CPU closely. */
void sg_cuda_set_allow_tf32(bool on);
bool sg_cuda_allow_tf32(void);

#endif
