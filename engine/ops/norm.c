/* Batch normalisation over dim 1 of [N,C,...] tensors, optionally fused with
 * a ReLU on its output (sg_batch_norm_relu). f32 CPU inputs run the threaded
 * kernels of backend_cpu/cpu_kernels.c; f64 runs plain loops. Per-channel
 * statistics are computed in double (two passes); the backward is the standard
 * closed form, using the statistics kept from the forward pass. The running
 * statistics are updated here in double either way. GPU tensors (any float
 * dtype; the per-channel vectors may have other float dtypes) go to
 * backend_cuda/norm.c (the fused ReLU runs there as the two ops). */
#include "nn_ops.h"
#include "ops.h"
#include "../autograd/autograd.h"
#include "../backend_cpu/cpu_kernels.h"
#include "../backend_cpu/dnnl_pool_norm.h" /* sg_bn_note_path */
#include "../backend.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int64_t C;
  bool training;
  bool cuda;   /* GPU: x, weight and the device statistics [4C] are saved tensors 0, 1, 2 */
  bool kernel; /* f32 CPU: computed by the cpu kernels, which also do the backward */
  bool relu;   /* fused ReLU (kernel only): the output is saved as well */
  double eps;
  double *mean, *invstd, *var; /* [C] each, one allocation after the struct (CPU only) */
} bn_ctx;

/* [N, C, L] view sizes of x */
static void bn_dims(const sg_shape *s, int64_t *N, int64_t *C, int64_t *L) {
  *N = s->size[0]; *C = s->size[1]; *L = 1;
  for (int d = 2; d < s->ndim; d++) *L *= s->size[d];
}

/* The f32 backward through the cpu kernels. */
static int bn_bw_kernel(sg_node *n, const bn_ctx *c, sg_tensor *x, sg_tensor *w, sg_tensor *y, sg_tensor *g,
                        sg_tensor **gin) {
  int64_t N, C, L;
  bn_dims(&n->in_shape[0], &N, &C, &L);
  sg_tensor *xc = sg_nn_contig(x, SG_F32), *gc = xc ? sg_nn_contig(g, SG_F32) : NULL;
  sg_tensor *wc = gc && w ? sg_nn_contig(w, SG_F32) : NULL, *yc = gc && y ? sg_nn_contig(y, SG_F32) : NULL;
  bool ok = gc && (!w || wc) && (!y || yc);
  sg_tensor *gx = ok && n->needs[0] ? sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, SG_F32, SG_CPU) : NULL;
  double *sums = ok && (gx || !n->needs[0]) ? malloc(sizeof(double) * (size_t)(2 * C + 1)) : NULL;
  int rc = -1;
  if (!sums) {
    if (ok && (gx || !n->needs[0])) sg_error_set("batch_norm: out of memory");
    goto out;
  }
  sg_cpu_bn_bwd(c->training, N, C, L, c->eps, sg_data_ptr(xc), yc ? sg_data_ptr(yc) : NULL, sg_data_ptr(gc), c->mean,
                c->var, wc ? sg_data_ptr(wc) : NULL, gx ? sg_data_ptr(gx) : NULL, sums + C, sums);
  for (int k = 1; k <= 2; k++) {
    if (!n->needs[k]) continue;
    sg_tensor *t = sg_empty(1, &C, n->in_dtype[k], SG_CPU);
    if (!t) goto out;
    bool t64 = n->in_dtype[k] == SG_F64;
    for (int64_t ch = 0; ch < C; ch++) SG_NN_ST(sg_data_ptr(t), t64, ch, sums[(k - 1) * C + ch]);
    gin[k] = t;
  }
  gin[0] = gx;
  gx = NULL;
  rc = 0;
out:
  free(sums);
  sg_tensor_decref(gx);
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc); sg_tensor_decref(yc);
  return rc;
}

static int bn_bw(sg_node *n, sg_tensor *g, sg_tensor **gin);

static int bn_bw_cuda(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  const bn_ctx *c = n->ctx;
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL, *st = sg_node_saved(n, 2);
  if (!x || (n->saved[1] && !w) || !st) return -1;
  sg_bn_note_path("cuda");
  int64_t C = c->C;
  sg_tensor *xc = sg_nn_contig(x, n->in_dtype[0]), *gc = xc ? sg_nn_contig(g, n->in_dtype[0]) : NULL;
  sg_tensor *out[3] = {NULL, NULL, NULL};
  bool ok = gc != NULL;
  if (ok && n->needs[0]) ok = (out[0] = sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, n->in_dtype[0], SG_CUDA));
  for (int k = 1; k <= 2 && ok; k++)
    if (n->needs[k]) ok = (out[k] = sg_empty(1, &C, n->in_dtype[k], SG_CUDA)) != NULL;
  ok = ok && SG_BACKEND_CALL(SG_DEVICE_OF(xc), norm.batch_norm_backward, "batch_norm", xc, gc, w, st, c->training, out[0], out[1], out[2]) == 0;
  sg_tensor_decref(xc);
  sg_tensor_decref(gc);
  for (int k = 0; k < 3; k++) {
    if (ok) gin[k] = out[k];
    else sg_tensor_decref(out[k]);
  }
  return ok ? 0 : -1;
}

static sg_tensor *bn_cuda(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                          bool training, double momentum, double eps, int64_t C) {
  bn_ctx *c = calloc(1, sizeof *c);
  if (!c) { sg_error_set("batch_norm: out of memory"); return NULL; }
  c->C = C; c->training = training; c->cuda = true; c->eps = eps;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(x->ndim, x->size, x->dtype, SG_CUDA) : NULL;
  sg_tensor *st = NULL;
  sg_bn_note_path("cuda");
  if (out && SG_BACKEND_CALL(SG_DEVICE_OF(xc), norm.batch_norm, "batch_norm", xc, rm, rv, weight, bias, training, momentum, eps, out, &st)) {
    sg_tensor_decref(out);
    out = NULL;
  }
  sg_tensor_decref(xc);
  if (!out) { free(c); return NULL; }
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record("batch_norm", bn_bw, out, 3, ins);
  if (n) {
    n->ctx = c;
    n->free_ctx = free;
    sg_node_save(n, x);
    sg_node_save(n, weight);
    sg_node_save(n, st);
  } else {
    free(c);
  }
  sg_tensor_decref(st);
  return out;
}

static int bn_bw(sg_node *n, sg_tensor *g, sg_tensor **gin) {
  const bn_ctx *c = n->ctx;
  if (c->cuda) return bn_bw_cuda(n, g, gin);
  sg_dtype dt = n->in_dtype[0];
  bool f64 = dt == SG_F64;
  sg_tensor *x = sg_node_saved(n, 0), *w = n->saved[1] ? sg_node_saved(n, 1) : NULL;
  if (!x || (n->saved[1] && !w)) return -1;
  sg_bn_note_path(c->kernel ? "kernel" : "loops");
  if (c->kernel) {
    sg_tensor *y = c->relu ? sg_node_saved(n, 2) : NULL;
    if (c->relu && !y) return -1;
    return bn_bw_kernel(n, c, x, w, y, g, gin);
  }
  int64_t N, C, L;
  bn_dims(&n->in_shape[0], &N, &C, &L);
  sg_tensor *xc = sg_nn_contig(x, dt), *gc = xc ? sg_nn_contig(g, dt) : NULL;
  sg_tensor *wc = gc && w ? sg_nn_contig(w, SG_F64) : NULL;
  double *sums = gc && (!w || wc) ? calloc((size_t)(2 * C + 1), sizeof *sums) : NULL;
  int rc = -1;
  if (!sums) { if (gc && (!w || wc)) sg_error_set("batch_norm: out of memory"); goto out; }
  const void *xp = sg_data_ptr(xc), *gp = sg_data_ptr(gc);
  double *sg = sums, *sgx = sums + C;
  for (int64_t b = 0; b < N; b++)
    for (int64_t ch = 0; ch < C; ch++) {
      int64_t base = (b * C + ch) * L;
      double m = c->mean[ch], is = c->invstd[ch];
      for (int64_t k = 0; k < L; k++) {
        double gv = SG_NN_LD(gp, f64, base + k);
        sg[ch] += gv;
        sgx[ch] += gv * (SG_NN_LD(xp, f64, base + k) - m) * is;
      }
    }
  if (n->needs[0]) {
    sg_tensor *gx = sg_empty(n->in_shape[0].ndim, n->in_shape[0].size, dt, SG_CPU);
    if (!gx) goto out;
    void *op = sg_data_ptr(gx);
    const double *wp = wc ? sg_data_ptr(wc) : NULL;
    double M = (double)(N * L);
    for (int64_t b = 0; b < N; b++)
      for (int64_t ch = 0; ch < C; ch++) {
        int64_t base = (b * C + ch) * L;
        double m = c->mean[ch], is = c->invstd[ch], scale = (wp ? wp[ch] : 1.0) * is;
        double a = sg[ch] / M, bb = sgx[ch] / M;
        for (int64_t k = 0; k < L; k++) {
          double gv = SG_NN_LD(gp, f64, base + k), v;
          if (c->training) v = scale * (gv - a - (SG_NN_LD(xp, f64, base + k) - m) * is * bb);
          else v = scale * gv;
          SG_NN_ST(op, f64, base + k, v);
        }
      }
    gin[0] = gx;
  }
  for (int k = 1; k <= 2; k++) {
    if (!n->needs[k]) continue;
    sg_tensor *t = sg_empty(1, &C, n->in_dtype[k], SG_CPU);
    if (!t) goto out;
    bool t64 = n->in_dtype[k] == SG_F64;
    for (int64_t ch = 0; ch < C; ch++) SG_NN_ST(sg_data_ptr(t), t64, ch, k == 1 ? sgx[ch] : sg[ch]);
    gin[k] = t;
  }
  rc = 0;
out:
  free(sums);
  sg_tensor_decref(xc); sg_tensor_decref(gc); sg_tensor_decref(wc);
  return rc;
}

static bool check_vec(const char *op, const char *arg, const sg_tensor *t, int64_t C, const sg_tensor *x) {
  if (!t) return true;
  if (!sg_nn_check_float_dev(op, arg, t)) return false;
  if (t->ndim != 1 || t->size[0] != C) {
    sg_error_set("%s: %s must have shape [%lld] for input %s (got %s)", op, arg, (long long)C, SG_SHAPE_STR(x),
                 SG_SHAPE_STR(t));
    return false;
  }
  return true;
}

/* t <- values (C doubles), in place through sg_copy_ (bumps its version) */
static int write_vec(sg_tensor *t, const double *v, int64_t C) {
  sg_tensor *tmp = sg_empty(1, &C, SG_F64, SG_CPU);
  if (!tmp) return -1;
  memcpy(sg_data_ptr(tmp), v, sizeof(double) * (size_t)C);
  bool prev = sg_set_grad_enabled(false);
  int rc = sg_copy_(t, tmp);
  sg_set_grad_enabled(prev);
  sg_tensor_decref(tmp);
  return rc;
}

static sg_tensor *batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                             bool training, double momentum, double eps, bool relu) {
  const char *op = relu ? "batch_norm_relu" : "batch_norm";
  if (!sg_nn_check_float_dev(op, "input", x)) return NULL;
  sg_tensor *all[5] = {x, rm, rv, weight, bias};
  if (!sg_same_device(op, 5, all)) return NULL;
  if (x->ndim < 2) {
    sg_error_set("%s: input must have at least 2 dims [N,C,...] (got %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  sg_shape xs = sg_shape_of(x);
  int64_t N, C, L;
  bn_dims(&xs, &N, &C, &L);
  if (!check_vec(op, "running_mean", rm, C, x) || !check_vec(op, "running_var", rv, C, x) ||
      !check_vec(op, "weight", weight, C, x) || !check_vec(op, "bias", bias, C, x))
    return NULL;
  if ((rm == NULL) != (rv == NULL)) {
    sg_error_set("%s: give both running_mean and running_var, or neither", op);
    return NULL;
  }
  if (!training && !rm) {
    sg_error_set("%s: evaluation mode needs running_mean and running_var", op);
    return NULL;
  }
  if (training && N * L <= 1) {
    sg_error_set("%s: expected more than 1 value per channel when training (input %s)", op, SG_SHAPE_STR(x));
    return NULL;
  }
  if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1)) {
    sg_error_set("%s: need eps >= 0 and momentum in [0, 1] (got eps %g, momentum %g)", op, eps, momentum);
    return NULL;
  }
  if (x->storage->device != SG_CPU) { /* sg_batch_norm_relu sends GPU tensors to the two ops */
    if (relu) { sg_error_set("%s: no fused GPU path", op); return NULL; }
    return bn_cuda(x, rm, rv, weight, bias, training, momentum, eps, C);
  }
  bool f64 = x->dtype == SG_F64, kernel = !f64;
  if (relu && !kernel) { /* f64: the two ops */
    sg_tensor *y = batch_norm(x, rm, rv, weight, bias, training, momentum, eps, false);
    sg_tensor *r = y ? sg_unary(SG_RELU, y) : NULL;
    sg_tensor_decref(y);
    return r;
  }
  bn_ctx *c = malloc(sizeof *c + sizeof(double) * 3 * (size_t)C + 1);
  if (!c) { sg_error_set("%s: out of memory", op); return NULL; }
  c->C = C; c->training = training; c->cuda = false; c->kernel = kernel; c->relu = relu; c->eps = eps;
  c->mean = (double *)(c + 1); c->invstd = c->mean + C; c->var = c->invstd + C;
  sg_tensor *xc = sg_nn_contig(x, x->dtype), *out = xc ? sg_empty(x->ndim, x->size, x->dtype, SG_CPU) : NULL;
  sg_dtype pdt = kernel ? SG_F32 : SG_F64; /* the kernels take f32 weight and bias, the loops f64 */
  sg_tensor *wc = out && weight ? sg_nn_contig(weight, pdt) : NULL, *bc = out && bias ? sg_nn_contig(bias, pdt) : NULL;
  if (!out || (weight && !wc) || (bias && !bc)) goto fail;
  const void *xp = sg_data_ptr(xc);
  sg_bn_note_path(kernel ? "kernel" : "loops");
  if (!training)
    for (int64_t ch = 0; ch < C; ch++) {
      c->mean[ch] = sg_get_flat(rm, ch);
      c->var[ch] = sg_get_flat(rv, ch);
    }
  if (kernel)
    sg_cpu_bn_fwd(training, N, C, L, eps, xp, sg_data_ptr(out), c->mean, c->var, wc ? sg_data_ptr(wc) : NULL,
                  bc ? sg_data_ptr(bc) : NULL, relu);
  if (training) {
    double M = (double)(N * L);
    double *tmp = malloc(sizeof(double) * 2 * (size_t)C + 1); /* new running mean, new running var */
    if (!tmp) { sg_error_set("%s: out of memory", op); goto fail; }
    double *var = c->var, *nm = tmp, *nv = tmp + C;
    for (int64_t ch = 0; ch < C && kernel; ch++) c->invstd[ch] = 1.0 / sqrt(var[ch] + eps);
    for (int64_t ch = 0; ch < C && !kernel; ch++) {
      double s = 0, q = 0;
      for (int64_t b = 0; b < N; b++)
        for (int64_t k = 0; k < L; k++) s += SG_NN_LD(xp, f64, (b * C + ch) * L + k);
      double m = s / M;
      for (int64_t b = 0; b < N; b++)
        for (int64_t k = 0; k < L; k++) { double d = SG_NN_LD(xp, f64, (b * C + ch) * L + k) - m; q += d * d; }
      c->mean[ch] = m;
      var[ch] = q / M;
      c->invstd[ch] = 1.0 / sqrt(var[ch] + eps);
    }
    int rc = 0;
    if (rm) {
      for (int64_t ch = 0; ch < C; ch++) {
        nm[ch] = (1 - momentum) * sg_get_flat(rm, ch) + momentum * c->mean[ch];
        nv[ch] = (1 - momentum) * sg_get_flat(rv, ch) + momentum * var[ch] * M / (M - 1);
      }
      rc = write_vec(rm, nm, C);
      if (!rc) rc = write_vec(rv, nv, C);
    }
    free(tmp);
    if (rc) goto fail;
  } else {
    for (int64_t ch = 0; ch < C; ch++) c->invstd[ch] = 1.0 / sqrt(c->var[ch] + eps);
  }
  if (!kernel) {
    void *op_ = sg_data_ptr(out);
    const double *wp = wc ? sg_data_ptr(wc) : NULL, *bp = bc ? sg_data_ptr(bc) : NULL;
    for (int64_t b = 0; b < N; b++)
      for (int64_t ch = 0; ch < C; ch++) {
        double sc = c->invstd[ch] * (wp ? wp[ch] : 1.0), sh = (bp ? bp[ch] : 0.0) - c->mean[ch] * sc;
        int64_t base = (b * C + ch) * L;
        for (int64_t k = 0; k < L; k++) SG_NN_ST(op_, f64, base + k, SG_NN_LD(xp, f64, base + k) * sc + sh);
      }
  }
  sg_tensor_decref(xc); sg_tensor_decref(wc); sg_tensor_decref(bc);
  sg_tensor *ins[3] = {x, weight, bias};
  sg_node *n = sg_record(op, bn_bw, out, 3, ins);
  if (n) {
    n->ctx = c;
    n->free_ctx = free;
    sg_node_save(n, x);
    sg_node_save(n, weight);
    if (relu) sg_node_save(n, out);
  } else {
    free(c);
  }
  return out;
fail:
  free(c);
  sg_tensor_decref(xc); sg_tensor_decref(out); sg_tensor_decref(wc); sg_tensor_decref(bc);
  return NULL;
}

sg_tensor *sg_batch_norm(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                         bool training, double momentum, double eps) {
  return batch_norm(x, rm, rv, weight, bias, training, momentum, eps, false);
}

sg_tensor *sg_batch_norm_relu(sg_tensor *x, sg_tensor *rm, sg_tensor *rv, sg_tensor *weight, sg_tensor *bias,
                              bool training, double momentum, double eps) {
  if (x->storage->device != SG_CPU) { /* other devices: the two ops */
    sg_tensor *y = sg_batch_norm(x, rm, rv, weight, bias, training, momentum, eps);
    sg_tensor *r = y ? sg_unary(SG_RELU, y) : NULL;
    sg_tensor_decref(y);
    return r;
  }
  return batch_norm(x, rm, rv, weight, bias, training, momentum, eps, true);
}
