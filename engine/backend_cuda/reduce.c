/* Reductions on the GPU: host glue of kernels/reduce.cu. */
#include "common.h"
#include "../../kernels/k_reduce.h"
#include "../backend.h"
#include <string.h>

_Static_assert((int)R_SUM == SGK_R_SUM && (int)R_PROD == SGK_R_PROD && (int)R_MAX == SGK_R_MAX &&
               (int)R_MIN == SGK_R_MIN && (int)R_ALL == SGK_R_ALL && (int)R_ANY == SGK_R_ANY &&
               (int)R_NONZERO == SGK_R_NONZERO && (int)R_ARGMAX == SGK_R_ARGMAX && (int)R_ARGMIN == SGK_R_ARGMIN,
               "reduce kinds of backend.h and kernels/k_reduce.h agree");

/* dims perm[from..to) of t as a layout, size-1 dims dropped and neighbours
 * that are contiguous with each other merged (the index order is kept) */
static sgk_layout dims_layout(const sg_tensor *t, const int *perm, int from, int to) {
  sgk_layout l;
  memset(&l, 0, sizeof l);
  for (int k = from; k < to; k++) {
    int64_t sz = t->size[perm[k]], st = t->stride[perm[k]];
    if (sz == 1) continue;
    if (l.ndim > 0 && l.stride[l.ndim - 1] == st * sz) {
      l.size[l.ndim - 1] *= sz;
      l.stride[l.ndim - 1] = st;
      continue;
    }
    l.size[l.ndim] = sz;
    l.stride[l.ndim] = st;
    l.ndim++;
  }
  return l;
}

int sg_cuda_reduce(int kind, sg_tensor *a, const int *perm, int nkeep, sg_tensor *out) {
  if (!SG_ON_CUDA(a) || !SG_ON_CUDA(out) || !sg_is_contiguous(out)) {
    sg_error_set("reduce: expected a cuda input and a contiguous cuda output");
    return -1;
  }
  if (!sg_cuda_ensure()) return -1;
  if (sg_numel(out) == 0) return 0;
  sgk_layout outer = dims_layout(a, perm, 0, nkeep), row = dims_layout(a, perm, nkeep, a->ndim);
  size_t bytes = sgk_reduce_scratch(&outer, &row);
  void *scratch = NULL;
  if (bytes && !(scratch = sg_cuda_malloc(bytes))) return -1;
  bool ok = SG_LAUNCH_OK(sgk_reduce(kind, sg_data_ptr(out), out->dtype, sg_data_ptr(a), a->dtype, &outer, &row,
                                    scratch, sg_cuda_stream()));
  sg_cuda_free(scratch); /* one stream: the next user of the block queues behind this reduction */
  return ok ? 0 : -1;
}

int sg_cuda_prod_backward_rows(sg_tensor *d, sg_tensor *rows, int64_t outer, int64_t row) {
  if (!SG_ON_CUDA(d) || !SG_ON_CUDA(rows) || d->dtype != SG_F64 || rows->dtype != SG_F64 || !sg_is_contiguous(d) ||
      !sg_is_contiguous(rows)) {
    sg_error_set("prod backward: expected contiguous f64 cuda tensors");
    return -1;
  }
  if (!sg_cuda_ensure()) return -1;
  return SG_LAUNCH_OK(sgk_prod_backward_rows(sg_data_ptr(d), sg_data_ptr(rows), outer, row, sg_cuda_stream())) ? 0 : -1;
}
