#include "iter.h"
#include <string.h>

void sg_iter_init(sg_iter *it, int nops, sg_tensor **t, int ndim, const int64_t *size) {
  memset(it, 0, sizeof *it);
  it->nops = nops;
  int64_t sz[SG_MAX_DIMS], st[SG_ITER_MAX_OPS][SG_MAX_DIMS];
  for (int d = 0; d < ndim; d++) sz[d] = size[d];
  for (int k = 0; k < nops; k++) {
    size_t es = sg_dtype_size(t[k]->dtype);
    it->base[k] = (char *)t[k]->storage->data + t[k]->offset * (int64_t)es;
    int off = ndim - t[k]->ndim; /* right-aligned broadcasting */
    for (int d = 0; d < ndim; d++) {
      int td = d - off;
      st[k][d] = (td < 0 || t[k]->size[td] == 1) ? 0 : t[k]->stride[td] * (int64_t)es;
    }
  }
  /* Drop size-1 dims, then merge dim d into d+1 when every operand allows it. */
  int n = 0;
  for (int d = 0; d < ndim; d++) {
    if (sz[d] == 1) continue;
    if (n > 0) {
      bool merge = true;
      for (int k = 0; k < nops; k++)
        if (it->stride[k][n - 1] != st[k][d] * sz[d]) { merge = false; break; }
      if (merge) {
        it->size[n - 1] *= sz[d];
        for (int k = 0; k < nops; k++) it->stride[k][n - 1] = st[k][d];
        continue;
      }
    }
    it->size[n] = sz[d];
    for (int k = 0; k < nops; k++) it->stride[k][n] = st[k][d];
    n++;
  }
  if (n == 0) { it->size[0] = 1; n = 1; }
  it->ndim = n;
  for (int d = 0; d < n; d++) if (it->size[d] == 0) { it->size[0] = 0; }
}

void sg_iter_run(sg_iter *it, sg_row_fn fn, void *ctx) {
  int nd = it->ndim, nops = it->nops;
  for (int d = 0; d < nd; d++) if (it->size[d] == 0) return;
  int64_t inner = it->size[nd - 1];
  int64_t istride[SG_ITER_MAX_OPS];
  for (int k = 0; k < nops; k++) istride[k] = it->stride[k][nd - 1];
  int64_t idx[SG_MAX_DIMS] = {0};
  char *p[SG_ITER_MAX_OPS];
  for (;;) {
    for (int k = 0; k < nops; k++) {
      char *q = it->base[k];
      for (int d = 0; d < nd - 1; d++) q += idx[d] * it->stride[k][d];
      p[k] = q;
    }
    fn(p, istride, inner, ctx);
    int d = nd - 2;
    for (; d >= 0; d--) {
      if (++idx[d] < it->size[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

void sg_iter_run_range(const sg_iter *it, sg_row_fn fn, void *ctx, int64_t lo, int64_t hi) {
  int nd = it->ndim, nops = it->nops;
  if (nd == 0) { /* a single element */
    if (lo < hi) {
      char *p[SG_ITER_MAX_OPS];
      int64_t st[SG_ITER_MAX_OPS] = {0};
      for (int k = 0; k < nops; k++) p[k] = it->base[k];
      fn(p, st, 1, ctx);
    }
    return;
  }
  int64_t inner = it->size[nd - 1], idx[SG_MAX_DIMS] = {0}, istride[SG_ITER_MAX_OPS];
  int64_t row = lo / inner, col = lo % inner;
  for (int d = nd - 2; d >= 0; d--) {
    idx[d] = row % it->size[d];
    row /= it->size[d];
  }
  for (int k = 0; k < nops; k++) istride[k] = it->stride[k][nd - 1];
  char *p[SG_ITER_MAX_OPS];
  for (int64_t pos = lo; pos < hi;) {
    int64_t len = inner - col < hi - pos ? inner - col : hi - pos;
    for (int k = 0; k < nops; k++) {
      char *q = it->base[k] + col * istride[k];
      for (int d = 0; d < nd - 1; d++) q += idx[d] * it->stride[k][d];
      p[k] = q;
    }
    fn(p, istride, len, ctx);
    pos += len;
    col = 0;
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < it->size[d]) break;
      idx[d] = 0;
    }
  }
}
