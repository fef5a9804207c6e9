/* Copy and fill (any dtypes, src broadcast); other devices through their table. The differentiable
 * copies built on them (contiguous, clone, to_dtype, to_device) are ops: engine/ops/copy.c. */
#include "iter.h"
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../backend.h"

typedef struct { sg_dtype dst, src; } cast_ctx;

static void copy_row(char **p, const int64_t *s, int64_t n, void *vctx) {
  const cast_ctx *c = vctx;
  size_t ds = sg_dtype_size(c->dst), ss = sg_dtype_size(c->src);
  if (c->dst == c->src) {
    if (s[0] == (int64_t)ds && s[1] == (int64_t)ss) { memcpy(p[0], p[1], (size_t)n * ds); return; }
    for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1] + i * s[1], ds);
  } else if (c->dst == SG_F32 && c->src == SG_U8) { /* the image-loading cast */
    for (int64_t i = 0; i < n; i++) *(float *)(p[0] + i * s[0]) = *(const uint8_t *)(p[1] + i * s[1]);
  } else if (!sg_dtype_is_float(c->dst) && !sg_dtype_is_float(c->src)) {
    for (int64_t i = 0; i < n; i++) sg_store_i64(p[0] + i * s[0], c->dst, sg_load_i64(p[1] + i * s[1], c->src));
  } else {
    for (int64_t i = 0; i < n; i++) sg_store_f64(p[0] + i * s[0], c->dst, sg_load_f64(p[1] + i * s[1], c->src));
  }
}

int sg_copy_(sg_tensor *dst, sg_tensor *src) {
  int n; int64_t out[SG_MAX_DIMS];
  if (!sg_broadcast_shapes("copy_", dst->ndim, dst->size, src->ndim, src->size, &n, out)) return -1;
  if (n != dst->ndim || sg_shape_numel(n, out) != sg_numel(dst)) {
    sg_error_set("copy_: source of shape %s cannot be broadcast to destination %s", SG_SHAPE_STR(src),
                 SG_SHAPE_STR(dst));
    return -1;
  }
  if (dst->storage->device != SG_CPU || src->storage->device != SG_CPU) {
    /* the device side's table moves the bytes (host<->device included) */
    sg_device dev = dst->storage->device != SG_CPU ? dst->storage->device : src->storage->device;
    int (*copy)(sg_tensor *, sg_tensor *) = SG_BACKEND_OP(dev, copy_, "copy_");
    return copy ? copy(dst, src) : -1;
  }
  sg_tensor *ops[2] = {dst, src};
  sg_iter it;
  sg_iter_init(&it, 2, ops, dst->ndim, dst->size);
  cast_ctx c = {dst->dtype, src->dtype};
  int64_t total = sg_numel(dst);
#ifdef _OPENMP
  /* large copies (cat, contiguous) in fixed chunks over threads: each element is copied once, so
   * this is safe unless dst overlaps src (or itself, broadcast) */
  bool overlap = dst->storage == src->storage;
  for (int d = 0; d < it.ndim && !overlap; d++) overlap = it.size[d] > 1 && it.stride[0][d] == 0;
  if (total >= (1 << 20) && !overlap && omp_get_max_threads() > 1 && !omp_in_parallel()) {
    const int64_t chunk = 1 << 18;
    int64_t nchunks = (total + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < nchunks; k++)
      sg_iter_run_range(&it, copy_row, &c, k * chunk, (k + 1) * chunk < total ? (k + 1) * chunk : total);
    atomic_fetch_add(&dst->storage->version, 1);
    return 0;
  }
#endif
  (void)total;
  sg_iter_run(&it, copy_row, &c);
  atomic_fetch_add(&dst->storage->version, 1);
  return 0;
}

static void fill_row(char **p, const int64_t *s, int64_t n, void *vctx) {
  const cast_ctx *c = vctx; /* c->src unused: the value sits in p[1] as dst type */
  size_t es = sg_dtype_size(c->dst);
  for (int64_t i = 0; i < n; i++) memcpy(p[0] + i * s[0], p[1], es);
}

int sg_fill_(sg_tensor *t, double v) {
  if (t->storage->device != SG_CPU) {
    int (*fill)(sg_tensor *, double) = SG_BACKEND_OP(t->storage->device, fill_, "fill_");
    return fill ? fill(t, v) : -1;
  }
  char val[8];
  sg_store_f64(val, t->dtype, v);
  if (sg_is_contiguous(t) && t->dtype == SG_F32) {
    float *d = sg_data_ptr(t), f = (float)v;
    for (int64_t i = 0, n = sg_numel(t); i < n; i++) d[i] = f;
  } else {
    sg_iter it;
    sg_iter_init(&it, 1, &t, t->ndim, t->size);
    it.nops = 2; /* second "operand" is the constant: base pointer with stride 0 */
    it.base[1] = val;
    for (int d = 0; d < SG_MAX_DIMS; d++) it.stride[1][d] = 0;
    cast_ctx c = {t->dtype, t->dtype};
    sg_iter_run(&it, fill_row, &c);
  }
  atomic_fetch_add(&t->storage->version, 1);
  return 0;
}

bool sg_same_device(const char *op, int n, sg_tensor *const *ts) {
  for (int k = 1; k < n; k++)
    if (ts[k] && ts[0] && ts[k]->storage->device != ts[0]->storage->device) {
      sg_error_set("%s: expected all tensors on one device, got %s (argument 1) and %s (argument %d)", op,
                   sg_device_name(ts[0]->storage->device), sg_device_name(ts[k]->storage->device), k + 1);
      return false;
    }
  return true;
}

