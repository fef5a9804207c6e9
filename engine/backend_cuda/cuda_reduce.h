/* The compute part of the reductions (engine/ops/reduce.c) on the GPU: the
 * public ops plan the reduction, allocate the output and record autograd;
 * these run kernels/reduce.cu directly over the input's strided view (no
 * permuted copy). 0 or -1 with the sg error set. */
#ifndef SG_CUDA_REDUCE_H
#define SG_CUDA_REDUCE_H
#include "cuda_backend.h"

/* out (contiguous, numel = product of the kept sizes) = reduction `kind`
 * (reduce.c's rkind; the same order as SGK_R_* in kernels/k_reduce.h) of a
 * over the dims perm[nkeep..ndim), keeping perm[0..nkeep) in that order. */
int sg_cuda_reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out);
/* prod backward: d = product of the other elements of each row of `rows`
 * (contiguous f64 [outer, row]); d is a contiguous f64 tensor of the same shape. */
int sg_cuda_prod_grad_rows(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row);

#endif
