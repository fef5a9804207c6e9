/* Fused losses: binary cross-entropy with logits, mean or sum over all
 * elements, in one pass (the Lua composite of lua/semseg/losses.lua runs ten
 * elementwise ops and their backward passes on the full image). Per element
 * loss = max(x, 0) - x t + log1p(exp(-|x|)) in double; the sum is taken in
 * fixed chunks added in order, so it does not depend on the thread count.
 * The backward is g * (sigmoid(x) - t) (/ n for the mean). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include <math.h>
#include <stdlib.h>

#define CHUNK 16384

static inline double bce(double x, double t) { return (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x))); }

static int bce_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  sg_tensor *x = sg_node_saved(n, 0), *t = sg_node_saved(n, 1);
  if (!x || !t) return -1;
  sg_dtype dt = x->dtype;
  bool f64 = dt == SG_F64;
  sg_tensor *gx = sg_empty(x->ndim, x->size, dt, SG_CPU);
  if (!gx) return -1;
  int64_t N = sg_numel(x);
  double scale = sg_get_flat(g, 0) / (n->i[0] && N ? (double)N : 1.0);
  const void *xp = sg_data_ptr(x), *tp = sg_data_ptr(t);
  void *op = sg_data_ptr(gx);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (N >= 4 * CHUNK)
#endif
  for (int64_t i = 0; i < N; i++) {
    double v = SG_NN_LD(xp, f64, i), s = v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v));
    SG_NN_ST(op, f64, i, scale * (s - SG_NN_LD(tp, f64, i)));
  }
  gin[0] = gx;
  return 0;
}

sg_tensor *sg_bce_with_logits(sg_tensor *x, sg_tensor *t, bool mean) {
  const char *op = "bce_with_logits";
  if (!sg_nn_check_float(op, "logits", x) || !sg_nn_check_float(op, "target", t)) return NULL;
  if (!sg_same_shape(x, t)) {
    sg_error_set("%s: logits of shape %s and target of shape %s differ", op, SG_SHAPE_STR(x), SG_SHAPE_STR(t));
    return NULL;
  }
  if (x->storage->device != SG_CPU || t->storage->device != SG_CPU) {
    sg_error_set("%s: the fused op runs on the cpu; got logits on %s and target on %s (use the composite loss)", op,
                 sg_device_name(x->storage->device), sg_device_name(t->storage->device));
    return NULL;
  }
  if (t->requires_grad && sg_grad_enabled()) {
    sg_error_set("%s: the fused op does not differentiate the target", op);
    return NULL;
  }
  sg_dtype dt = x->dtype;
  bool f64 = dt == SG_F64;
  sg_tensor *xc = sg_nn_contig(x, dt), *tc = xc ? sg_nn_contig(t, dt) : NULL;
  int64_t N = sg_numel(x), nchunks = (N + CHUNK - 1) / CHUNK;
  double *part = tc ? malloc(sizeof(double) * (size_t)(nchunks + 1)) : NULL;
  sg_tensor *out = NULL;
  if (!part) {
    if (tc) sg_error_set("%s: out of memory", op);
    goto done;
  }
  const void *xp = sg_data_ptr(xc), *tp = sg_data_ptr(tc);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nchunks >= 4)
#endif
  for (int64_t c = 0; c < nchunks; c++) {
    double s = 0;
    for (int64_t i = c * CHUNK, e = i + CHUNK < N ? i + CHUNK : N; i < e; i++)
      s += bce(SG_NN_LD(xp, f64, i), SG_NN_LD(tp, f64, i));
    part[c] = s;
  }
  double total = 0;
  for (int64_t c = 0; c < nchunks; c++) total += part[c];
  if (mean) total = N ? total / (double)N : NAN;
  out = sg_scalar(total, dt, SG_CPU);
  if (out) {
    sg_tensor *ins[2] = {x, t};
    sg_node *nd = sg_record(op, bce_bw, out, 2, ins);
    if (nd) {
      nd->i[0] = mean;
      sg_node_save(nd, xc);
      sg_node_save(nd, tc);
    }
  }
done:
  free(part);
  sg_tensor_decref(xc);
  sg_tensor_decref(tc);
  return out;
}
