/* Strided N-d iteration shared by all CPU kernels (a small TensorIterator).
 * Operands share one logical shape (broadcast operands carry zero strides).
 * Dimensions that are contiguous across all operands are merged, and the
 * callback receives whole inner rows, so kernels can vectorise them. */
#ifndef SG_ITER_H
#define SG_ITER_H
#include "tensor.h"

#define SG_ITER_MAX_OPS 4

/* ptrs[k]: first element of operand k in this row; strides[k]: byte step. */
typedef void (*sg_row_fn)(char **ptrs, const int64_t *strides, int64_t n, void *ctx);

typedef struct {
  int nops, ndim;
  int64_t size[SG_MAX_DIMS];
  int64_t stride[SG_ITER_MAX_OPS][SG_MAX_DIMS]; /* bytes */
  char *base[SG_ITER_MAX_OPS];
} sg_iter;

/* Sets up operands t[k] viewed with shape (ndim,size); a tensor of fewer
 * dims or with size-1 dims is broadcast. */
void sg_iter_init(sg_iter *it, int nops, sg_tensor **t, int ndim, const int64_t *size);
void sg_iter_run(sg_iter *it, sg_row_fn fn, void *ctx);
/* The rows of `it` restricted to the flat element positions [lo, hi): ranges
 * that split the iteration may run on different threads. */
void sg_iter_run_range(const sg_iter *it, sg_row_fn fn, void *ctx, int64_t lo, int64_t hi);

#endif
